"""The measured cases. Each returns `Case`s holding per-runtime samples; runtimes alternate every iteration.

A runtime that fails a case is dropped from that case with the reason (its stderr), never silently.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field

from harness import (
    Call,
    CallFailed,
    Runtime,
    Workspace,
    first_line,
    kill_cgroup_processes,
    reap_orphans,
    remove_cgroups,
    wait_for,
    wait_gone,
)


@dataclass
class Target:
    """`ratio`: pyrunc median ≤ value x runc median; `absolute`: pyrunc median ≤ value (in the case's unit)."""

    kind: str
    value: float

    def describe(self, unit: str) -> str:
        return f"≤ {self.value:g} x runc" if self.kind == "ratio" else f"≤ {self.value:g} {unit}"


@dataclass
class Case:
    key: str
    title: str
    unit: str
    target: Target | None = None
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # runtime → why it has no (or partial) samples
    timed: bool = True  # samples are durations (drawn in the chart)

    def add(self, runtime: str, value: float) -> None:
        self.samples.setdefault(runtime, []).append(value)

    def median(self, runtime: str) -> float | None:
        values = self.samples.get(runtime)
        return statistics.median(values) if values else None

    def p90(self, runtime: str) -> float | None:
        values = sorted(self.samples.get(runtime) or [])
        if not values:
            return None
        return values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]


def alternating(runtimes: list[Runtime], i: int) -> list[Runtime]:
    """Runtimes in turn: the first one of each iteration rotates, so none always runs on a warm cache."""
    k = i % len(runtimes)
    return runtimes[k:] + runtimes[:k]


def _ms(call: Call) -> float:
    return call.seconds * 1000


def _fail(case: Case, rt: Runtime, what: str, call: Call | None = None, err: Exception | None = None) -> None:
    reason = f"{what}: exit {call.status}: {first_line(call.stderr)}" if call else f"{what}: {err}"
    case.notes.setdefault(rt.name, reason)


def baselines(ws: Workspace, python: str, n: int) -> list[Case]:
    """What every runtime call pays anyway: our spawn+wait, and a bare venv Python start."""
    spawn = Case("spawn", "spawn+wait of /bin/true (harness overhead)", "ms")
    python_start = Case("python", "venv `python -c pass` (interpreter floor)", "ms")
    for _ in range(n):
        spawn.add("host", _ms(ws.spawner.call(["/bin/true"])))
        python_start.add("host", _ms(ws.spawner.call([python, "-c", "pass"])))
    return [spawn, python_start]


def run_true(ws: Workspace, runtimes: list[Runtime], n: int) -> Case:
    case = Case("run", "`run` of `true` (whole lifecycle)", "ms", Target("ratio", 1.5))
    for i in range(n):
        for rt in alternating(runtimes, i):
            if rt.name in case.notes:
                continue
            container_id, bundle = ws.bundle(rt, ["true"])
            call = rt.call("run", "--bundle", bundle, container_id)
            if call.ok:
                case.add(rt.name, _ms(call))
            else:
                _fail(case, rt, "run", call)
                rt.call("delete", "--force", container_id)
            ws.forget_bundle(bundle)
    return case


def lifecycle(ws: Workspace, runtimes: list[Runtime], n: int) -> list[Case]:
    """create, state (created and running), start, kill, delete, each timed on its own; create's peak RSS."""
    cases = {
        "create": Case("create", "`create`", "ms"),
        "start": Case("start", "`start`", "ms"),
        "state": Case("state", "`state`", "ms", Target("ratio", 4)),
        "kill": Case("kill", "`kill` (SIGKILL)", "ms", Target("ratio", 4)),
        "delete": Case("delete", "`delete` (stopped container)", "ms"),
        "rss": Case("rss", "peak RSS of the runtime process during `create`", "MiB", Target("absolute", 30),
                    timed=False),
    }
    broken: dict[str, str] = {}
    for i in range(n):
        for rt in alternating(runtimes, i):
            if rt.name in broken:
                continue
            container_id, bundle = ws.bundle(rt, ["sleep", "3600"])
            try:
                _one_lifecycle(rt, container_id, bundle, cases)
            except CallFailed as err:
                broken[rt.name] = str(err)
                rt.call("delete", "--force", container_id)
                reap_orphans()
            ws.forget_bundle(bundle)
    for case in cases.values():
        for name, reason in broken.items():
            case.notes.setdefault(name, f"stopped after a failure: {reason}")
    return list(cases.values())


def _one_lifecycle(rt: Runtime, container_id: str, bundle: str, cases: dict[str, Case]) -> None:
    create = rt.must("create", "--bundle", bundle, container_id)
    cases["create"].add(rt.name, _ms(create))
    cases["rss"].add(rt.name, create.maxrss_kib / 1024)
    state = rt.must("state", container_id)
    cases["state"].add(rt.name, _ms(state))
    pid = _state_pid(rt, state)
    cases["start"].add(rt.name, _ms(rt.must("start", container_id)))
    cases["state"].add(rt.name, _ms(rt.must("state", container_id)))
    cases["kill"].add(rt.name, _ms(rt.must("kill", container_id, "KILL")))
    wait_gone(pid)
    cases["delete"].add(rt.name, _ms(rt.must("delete", container_id)))


def _state_pid(rt: Runtime, call: Call) -> int:
    import json

    try:
        return int(json.loads(call.stdout)["pid"])
    except (ValueError, KeyError, TypeError) as err:
        raise CallFailed(f"{rt.name} state: unreadable output: {call.stdout[:100]!r}") from err


def sequential(ws: Workspace, runtimes: list[Runtime], count: int, reps: int) -> Case:
    case = Case("seq", f"{count} containers run one after another (total)", "ms", Target("ratio", 1.5))
    for i in range(reps):
        for rt in alternating(runtimes, i):
            if rt.name in case.notes:
                continue
            bundles = [ws.bundle(rt, ["true"]) for _ in range(count)]
            total = 0.0
            for container_id, bundle in bundles:
                call = rt.call("run", "--bundle", bundle, container_id)
                if not call.ok:
                    _fail(case, rt, "run", call)
                    rt.delete_all()
                    break
                total += call.seconds
            else:
                case.add(rt.name, total * 1000)
            for _, bundle in bundles:
                ws.forget_bundle(bundle)
    return case


def concurrent(ws: Workspace, runtimes: list[Runtime], count: int, reps: int) -> Case:
    import time

    case = Case("par", f"{count} containers run at once (wall time until all exited)", "ms")
    for i in range(reps):
        for rt in alternating(runtimes, i):
            if rt.name in case.notes:
                continue
            bundles = [ws.bundle(rt, ["true"]) for _ in range(count)]
            t0 = time.perf_counter()
            pids = [ws.spawner.start(rt.argv("run", "--bundle", b, c), capture=False) for c, b in bundles]
            results = wait_for(set(pids))
            elapsed = time.perf_counter() - t0
            failed = [p for p in pids if os.waitstatus_to_exitcode(results[p][0]) != 0]
            if failed:
                case.notes[rt.name] = f"{len(failed)} of {count} concurrent runs failed"
                rt.delete_all()
            else:
                case.add(rt.name, elapsed * 1000)
            for _, bundle in bundles:
                ws.forget_bundle(bundle)
    return case


def _parallel(rt: Runtime, argvs: list[list[str]], width: int = 8) -> int:
    """Run the calls `width` at a time (untimed set-up work); return how many failed."""
    failed = 0
    for k in range(0, len(argvs), width):
        pids = [rt.spawner.start(argv, capture=False) for argv in argvs[k:k + width]]
        results = wait_for(set(pids))
        failed += sum(1 for _, (status, _) in results.items() if status != 0)
    return failed


def list_many(ws: Workspace, runtimes: list[Runtime], count: int, n: int) -> Case:
    case = Case("list", f"`list` with {count} created containers", "ms")
    ready = []
    for rt in runtimes:
        bundles = [ws.bundle(rt, ["sleep", "3600"]) for _ in range(count)]
        failed = _parallel(rt, [rt.argv("create", "--bundle", b, c) for c, b in bundles])
        if failed or len(rt.ids()) != count:
            case.notes[rt.name] = f"{failed} of {count} creates failed"
        else:
            ready.append(rt)
    try:
        for i in range(n):
            for rt in alternating(ready, i):
                call = rt.call("list")
                if call.ok and call.stdout.count("\n") == count + 1:
                    case.add(rt.name, _ms(call))
                else:
                    _fail(case, rt, "list", call)
    finally:
        for rt in runtimes:
            _parallel(rt, [rt.argv("delete", "--force", c) for c in rt.ids()])
            reap_orphans()
    return case


def exec_true(ws: Workspace, runtimes: list[Runtime], n: int) -> Case:
    case = Case("exec", "`exec` of `true` into a running container", "ms", Target("ratio", 1.5))
    running = {}
    for rt in runtimes:
        container_id, bundle = ws.bundle(rt, ["sleep", "3600"])
        try:
            rt.must("create", "--bundle", bundle, container_id)
            rt.must("start", container_id)
            rt.must("exec", container_id, "true")
            running[rt.name] = container_id
        except CallFailed as err:
            case.notes[rt.name] = f"skipped: {err}"
            rt.call("delete", "--force", container_id)
    try:
        ready = [rt for rt in runtimes if rt.name in running]
        for i in range(n):
            for rt in alternating(ready, i):
                call = rt.call("exec", running[rt.name], "true")
                if call.ok:
                    case.add(rt.name, _ms(call))
                else:
                    _fail(case, rt, "exec", call)
    finally:
        for rt in runtimes:
            if rt.name in running:
                rt.call("delete", "--force", running[rt.name])
        reap_orphans()
    return case


def smallest_memory_limit(ws: Workspace, runtimes: list[Runtime], step_kib: int) -> Case:
    """Bisect the smallest linux.resources.memory.limit (1..64 MiB, `step_kib` resolution) under which
    `run` of `true` exits 0."""
    case = Case("memlimit", "smallest memory limit under which `true` starts", "MiB", Target("ratio", 1.0),
                timed=False)
    lo, hi = 1024 // step_kib, 64 * 1024 // step_kib  # in steps
    for rt in runtimes:
        if not _starts_under(ws, rt, hi * step_kib * 1024):
            case.notes[rt.name] = "does not start even under 64 MiB"
            continue
        low, high = lo, hi  # invariant: high works; low is assumed (then checked) to fail
        if _starts_under(ws, rt, low * step_kib * 1024):
            case.add(rt.name, low * step_kib / 1024)
            case.notes[rt.name] = "starts under 1 MiB already"
            continue
        while high - low > 1:
            mid = (low + high) // 2
            if _starts_under(ws, rt, mid * step_kib * 1024):
                high = mid
            else:
                low = mid
        case.add(rt.name, high * step_kib / 1024)
        case.notes.setdefault(rt.name, f"fails at {low * step_kib / 1024:g} MiB")
    return case


def _starts_under(ws: Workspace, rt: Runtime, limit: int) -> bool:
    container_id, bundle = ws.bundle(rt, ["true"], memory_limit=limit)
    call = rt.call("run", "--bundle", bundle, container_id)
    if not call.ok:
        rt.call("delete", "--force", container_id)
        cgroup = f"{rt.cgroup_parent}/{container_id}".lstrip("/")
        kill_cgroup_processes(cgroup)
        reap_orphans()
        remove_cgroups(cgroup)
    ws.forget_bundle(bundle)
    return call.ok
