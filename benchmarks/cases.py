"""The measured cases. Each returns `Case`s holding per-runtime samples; runtimes alternate every iteration.

A runtime that fails a case is dropped from that case with the reason (its stderr), never silently.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    Call,
    CallFailed,
    Runtime,
    Workspace,
    cpu_seconds,
    kill_cgroup_processes,
    last_line,
    reap_orphans,
    remove_cgroups,
    wait_for,
    wait_gone,
)

#: A `run` under a tight memory limit that has not finished by then is stuck (reclaim loop, a lost
#: message): it is killed and counts as a failure.
PROBE_TIMEOUT = 10.0


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
    cpu: dict[str, list[float]] = field(default_factory=dict)  # CPU ms of the same calls (timed cases)
    notes: dict[str, str] = field(default_factory=dict)  # runtime → why it has no (or partial) samples
    timed: bool = True  # samples are durations (drawn in the chart)

    def add(self, runtime: str, value: float, cpu_ms: float | None = None) -> None:
        self.samples.setdefault(runtime, []).append(value)
        if cpu_ms is not None:
            self.cpu.setdefault(runtime, []).append(cpu_ms)

    def add_call(self, runtime: str, call: Call) -> None:
        self.add(runtime, call.seconds * 1000, call.cpu_seconds * 1000)

    def median(self, runtime: str) -> float | None:
        values = self.samples.get(runtime)
        return statistics.median(values) if values else None

    def cpu_median(self, runtime: str) -> float | None:
        values = self.cpu.get(runtime)
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


def _fail(case: Case, rt: Runtime, what: str, call: Call) -> None:
    """Note the first failure of a runtime in a case (later iterations skip it)."""
    case.notes.setdefault(rt.name, f"{what}: exit {call.status}: {last_line(call.stderr)}")


def baselines(ws: Workspace, python: str, n: int) -> list[Case]:
    """What every runtime call pays anyway: our spawn+wait, and a bare venv Python start."""
    spawn = Case("spawn", "spawn+wait of /bin/true (harness overhead)", "ms")
    python_start = Case("python", "venv `python -c pass` (interpreter floor)", "ms")
    for _ in range(n):
        spawn.add_call("host", ws.spawner.call(["/bin/true"]))
        python_start.add_call("host", ws.spawner.call([python, "-c", "pass"]))
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
                case.add_call(rt.name, call)
            else:
                _fail(case, rt, "run", call)
                rt.call("delete", "--force", container_id)
            ws.forget_bundle(bundle)
    return case


def lifecycle(ws: Workspace, runtimes: list[Runtime], n: int) -> list[Case]:
    """create, state (created and running), start, kill, delete, each timed on its own."""
    cases = {
        "create": Case("create", "`create`", "ms"),
        "start": Case("start", "`start`", "ms"),
        "state": Case("state", "`state`", "ms", Target("ratio", 4)),
        "kill": Case("kill", "`kill` (SIGKILL)", "ms", Target("ratio", 4)),
        "delete": Case("delete", "`delete` (stopped container)", "ms"),
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
    cases["create"].add_call(rt.name, create)
    state = rt.must("state", container_id)
    cases["state"].add_call(rt.name, state)
    pid = _state_pid(rt, state)
    cases["start"].add_call(rt.name, rt.must("start", container_id))
    cases["state"].add_call(rt.name, rt.must("state", container_id))
    cases["kill"].add_call(rt.name, rt.must("kill", container_id, "KILL"))
    wait_gone(pid)
    cases["delete"].add_call(rt.name, rt.must("delete", container_id))


def _state_pid(rt: Runtime, call: Call) -> int:
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
            total = cpu = 0.0
            for container_id, bundle in bundles:
                call = rt.call("run", "--bundle", bundle, container_id)
                if not call.ok:
                    _fail(case, rt, "run", call)
                    rt.delete_all()
                    break
                total += call.seconds
                cpu += call.cpu_seconds
            else:
                case.add(rt.name, total * 1000, cpu * 1000)
            for _, bundle in bundles:
                ws.forget_bundle(bundle)
    return case


def concurrent(ws: Workspace, runtimes: list[Runtime], count: int, reps: int) -> Case:
    case = Case("par", f"{count} containers run at once (wall time until all exited)", "ms")
    for i in range(reps):
        for rt in alternating(runtimes, i):
            if rt.name in case.notes:
                continue
            bundles = [ws.bundle(rt, ["true"]) for _ in range(count)]
            errs = [str(ws.dir / f"stderr.{k}") for k in range(count)]
            t0 = time.perf_counter()
            pids = [ws.spawner.start(rt.argv("run", "--bundle", b, c), capture=False, stderr_path=err)
                    for (c, b), err in zip(bundles, errs, strict=True)]
            results = wait_for(set(pids))
            elapsed = time.perf_counter() - t0
            failed = [err for p, err in zip(pids, errs, strict=True) if os.waitstatus_to_exitcode(results[p][0])]
            if failed:
                case.notes[rt.name] = (f"{len(failed)} of {count} concurrent runs failed, e.g.: "
                                       f"{last_line(Path(failed[0]).read_text(errors='replace'))}")
                rt.delete_all()
            else:
                case.add(rt.name, elapsed * 1000, sum(cpu_seconds(r) for _, r in results.values()) * 1000)
            for _, bundle in bundles:
                ws.forget_bundle(bundle)
    return case


def _parallel(ws: Workspace, argvs: list[list[str]], width: int = 8) -> list[tuple[list[str], str]]:
    """Run the calls `width` at a time (untimed set-up work); return the failed ones with their stderr."""
    failed = []
    for k in range(0, len(argvs), width):
        batch = {}
        for j, argv in enumerate(argvs[k:k + width]):
            err = str(ws.dir / f"stderr.{j}")
            batch[ws.spawner.start(argv, capture=False, stderr_path=err)] = (argv, err)
        for pid, (status, _) in wait_for(set(batch)).items():
            if status != 0:
                argv, err = batch[pid]
                failed.append((argv, last_line(Path(err).read_text(errors="replace"))))
    return failed


def list_many(ws: Workspace, runtimes: list[Runtime], count: int, n: int) -> Case:
    case = Case("list", f"`list` with {count} created containers", "ms")
    ready = []
    for rt in runtimes:
        bundles = [ws.bundle(rt, ["sleep", "3600"]) for _ in range(count)]
        failed = _parallel(ws, [rt.argv("create", "--bundle", b, c) for c, b in bundles])
        if failed:  # a create that fails side by side with others is noted, then retried alone
            case.notes[rt.name] = f"{len(failed)} of {count} concurrent creates failed, e.g.: {failed[0][1]}"
            for argv, _ in failed:
                rt.call("delete", "--force", argv[-1])
                ws.spawner.call(argv)
        if len(rt.ids()) == count:
            ready.append(rt)
        else:
            case.notes[rt.name] = f"only {len(rt.ids())} of {count} containers could be created"
    try:
        for i in range(n):
            for rt in alternating(ready, i):
                call = rt.call("list")
                if call.ok and call.stdout.count("\n") == count + 1:
                    case.add_call(rt.name, call)
                else:
                    _fail(case, rt, "list", call)
    finally:
        for rt in runtimes:
            _parallel(ws, [rt.argv("delete", "--force", c) for c in rt.ids()])
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
                    case.add_call(rt.name, call)
                else:
                    _fail(case, rt, "exec", call)
    finally:
        for rt in runtimes:
            if rt.name in running:
                rt.call("delete", "--force", running[rt.name])
        reap_orphans()
    return case


def peak_rss(ws: Workspace, runtimes: list[Runtime], n: int) -> Case:
    """Peak RSS of the runtime process during `create`, through /usr/bin/time (a small C parent).

    Not the wait4 of our own spawns: posix_spawn's vfork child shares our address space until exec, so
    its ru_maxrss starts at the benchmark's own RSS. GNU time forks from its own small image; its %M is the
    larger of the runtime's peak and that of the children the runtime reaped (pyrunc's stage-1)."""
    case = Case("rss", "peak RSS of the runtime process during `create`", "MiB", Target("absolute", 30), timed=False)
    time_bin = "/usr/bin/time"
    if not os.access(time_bin, os.X_OK):
        case.notes["all"] = "skipped: /usr/bin/time is missing (apt-get install time)"
        return case
    out = ws.dir / "maxrss"
    for i in range(n):
        for rt in alternating(runtimes, i):
            container_id, bundle = ws.bundle(rt, ["sleep", "3600"])
            call = ws.spawner.call([time_bin, "-f", "%M", "-o", str(out), *rt.argv("create", "--bundle", bundle,
                                                                                    container_id)])
            if call.ok:
                case.add(rt.name, int(out.read_text().split()[-1]) / 1024)
            else:
                _fail(case, rt, "create", call)
            rt.call("delete", "--force", container_id)
            reap_orphans()
            ws.forget_bundle(bundle)
    return case


def charged_memory(ws: Workspace, runtimes: list[Runtime], n: int) -> Case:
    """Peak memory charged to the container's memory cgroup by create + start of `true` (the pages the
    runtime's init side copies or allocates once it has joined the cgroup), read before delete."""
    case = Case("charged", "peak memory charged to the container's cgroup (`true`)", "MiB", timed=False)
    for i in range(n):
        for rt in alternating(runtimes, i):
            if rt.name in case.notes:
                continue
            container_id, bundle = ws.bundle(rt, ["true"])
            try:
                rt.must("create", "--bundle", bundle, container_id)
                pid = _state_pid(rt, rt.must("state", container_id))
                rt.must("start", container_id)
                wait_gone(pid)
                case.add(rt.name, _peak_charged(f"{rt.cgroup_parent}/{container_id}") / 1024 / 1024)
            except (CallFailed, OSError) as err:
                case.notes[rt.name] = str(err)
            rt.call("delete", "--force", container_id)
            ws.forget_bundle(bundle)
    return case


def _peak_charged(cgroup: str) -> int:
    for path in (f"/sys/fs/cgroup/memory{cgroup}/memory.max_usage_in_bytes", f"/sys/fs/cgroup{cgroup}/memory.peak"):
        if os.path.exists(path):
            return int(Path(path).read_text())
    raise OSError(f"no memory peak file for cgroup {cgroup}")


def smallest_memory_limit(ws: Workspace, runtimes: list[Runtime], step_kib: int) -> Case:
    """Bisect the smallest linux.resources.memory.limit (1..64 MiB, `step_kib` resolution) under which
    `run` of `true` exits 0."""
    case = Case("memlimit", "smallest memory limit under which `true` starts", "MiB", Target("ratio", 1.0),
                timed=False)
    lo, hi = 1024 // step_kib, 64 * 1024 // step_kib  # in steps
    for rt in runtimes:
        hung: list[str] = []

        def starts(steps: int, rt: Runtime = rt, hung: list[str] = hung) -> bool:
            call = _run_under(ws, rt, steps * step_kib * 1024)
            if call.status == -9 and call.seconds >= PROBE_TIMEOUT:
                hung.append(f"{steps * step_kib / 1024:g} MiB")
            return call.ok

        if not starts(hi):
            case.notes[rt.name] = "does not start even under 64 MiB"
            continue
        low, high = lo, hi  # invariant: high works; low is assumed (then checked) to fail
        if starts(low):
            case.add(rt.name, low * step_kib / 1024)
            case.notes[rt.name] = "starts under 1 MiB already"
            continue
        while high - low > 1:
            mid = (low + high) // 2
            if starts(mid):
                high = mid
            else:
                low = mid
        case.add(rt.name, high * step_kib / 1024)
        stuck = f"; hung (killed after {PROBE_TIMEOUT:g} s) under {', '.join(hung)}" if hung else ""
        case.notes.setdefault(rt.name, f"fails at {low * step_kib / 1024:g} MiB{stuck}")
    return case


def _run_under(ws: Workspace, rt: Runtime, limit: int) -> Call:
    """`run` of `true` under a memory limit; whatever a failure left behind is removed."""
    container_id, bundle = ws.bundle(rt, ["true"], memory_limit=limit)
    call = rt.call("run", "--bundle", bundle, container_id, timeout=PROBE_TIMEOUT)
    if not call.ok:
        rt.call("delete", "--force", container_id)
        cgroup = f"{rt.cgroup_parent}/{container_id}".lstrip("/")
        kill_cgroup_processes(cgroup)
        reap_orphans()
        remove_cgroups(cgroup)
    ws.forget_bundle(bundle)
    return call
