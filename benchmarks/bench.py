"""pyrunc vs runc (and crun when it can run here), side by side, alternating every iteration.

    .venv/bin/python benchmarks/bench.py [--runtimes pyrunc,runc,crun] [--quick] [--out FILE] [--[no-]clients]

Prints the table (medians, p90, ratio, issue 8's targets) and writes it, with the machine facts, the
import cost of every command path and an SVG chart of the distributions, into the generated section
of `--out` (default docs/performance.md for a full run; a --quick run writes only when --out is given).
Must run as root. Everything it creates (state roots, bundles, the `pyrunc-bench-<pid>` cgroups) is
removed at the end, also after a failure or ^C.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cases
import clients
import importtime
import report
from harness import REPO, Runtime, Workspace, become_subreaper, last_line

PYRUNC = REPO / ".venv" / "bin" / "pyrunc"
FULL = {"base": 30, "run": 50, "life": 30, "seq": (100, 2), "par": (20, 8), "list": (200, 20), "exec": 40,
        "mem_step_kib": 256, "imports": 5, "charged": 10, "clients": 5}
QUICK = {"base": 8, "run": 10, "life": 6, "seq": (20, 1), "par": (10, 2), "list": (20, 5), "exec": 8,
         "mem_step_kib": 1024, "imports": 2, "charged": 3, "clients": 3}


def find_runtime(name: str) -> str | None:
    if name == "pyrunc":
        return str(PYRUNC) if PYRUNC.exists() else None
    return shutil.which(name)


def probe(ws: Workspace, rt: Runtime) -> str:
    """'' when the runtime can `run` a container here, else why not."""
    container_id, bundle = ws.bundle(rt, ["true"])
    call = rt.call("run", "--bundle", bundle, container_id)
    ws.forget_bundle(bundle)
    if call.ok:
        return ""
    rt.call("delete", "--force", container_id)
    return f"`run` of `true` fails: exit {call.status}: {last_line(call.stderr)}"


def precompile() -> None:
    """Write pyrunc's .pyc files: PYTHONDONTWRITEBYTECODE may be set here, and a package as installed
    has its bytecode; without it every start recompiles the changed modules."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "pyrunc")], check=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def machine_facts(paths: dict[str, str], load_before: str) -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    versions = []
    for name, path in paths.items():
        out = subprocess.run([path, "--version"], capture_output=True, text=True).stdout
        versions.append(f"{name} {out.split(chr(10))[0].split('version')[-1].strip()}")
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    return [
        f"date: {datetime.datetime.now(datetime.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"kernel: {platform.release()}; CPUs: {os.cpu_count()} x {cpu}; memory: {mem_kib // 1024} MiB",
        f"python: {platform.python_version()} ({sys.executable}); pyrunc tree: {commit or '?'}",
        "runtimes: " + ", ".join(versions),
        f"load average (1, 5, 15 min) before: {load_before}; after: {load_average()} (wall times grow with it, "
        "CPU times much less)",
    ]


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")


def measure(ws: Workspace, runtimes: list[Runtime], cfg: dict, with_clients: bool) -> list[cases.Case]:
    results = []
    log("run of true")
    results.append(cases.run_true(ws, runtimes, cfg["run"]))
    log("create/start/state/kill/delete")
    results += cases.lifecycle(ws, runtimes, cfg["life"])
    log("exec")
    results.append(cases.exec_true(ws, runtimes, cfg["exec"]))
    log("sequential")
    results.append(cases.sequential(ws, runtimes, *cfg["seq"]))
    log("concurrent")
    results.append(cases.concurrent(ws, runtimes, *cfg["par"]))
    log("list")
    results.append(cases.list_many(ws, runtimes, *cfg["list"]))
    log("peak RSS during create")
    results.append(cases.peak_rss(ws, runtimes, cfg["charged"]))
    log("memory charged to the container")
    results.append(cases.charged_memory(ws, runtimes, cfg["charged"]))
    log("smallest memory limit")
    results.append(cases.smallest_memory_limit(ws, runtimes, cfg["mem_step_kib"]))
    if with_clients:
        log("ctr / podman / docker run --rm (tests/integration/bench_clients.py)")
        results += clients.client_cases(runtimes, cfg["clients"])
    order = ["run", "seq", "par", "ctr", "podman", "docker", "create", "start", "state", "kill", "delete", "exec",
             "list", "rss", "charged", "memlimit"]
    return sorted(results, key=lambda c: order.index(c.key))


def document(facts: list[str], tables: tuple[list[list[str]], list[list[str]]], notes: list[str],
             costs: list[importtime.PathCost], base: list[cases.Case], svg_name: str, quick: bool) -> str:
    table, cpu_table = tables
    floor = "; ".join(f"{c.title}: {c.median('host'):.1f} ms" for c in base)
    parts = [
        "## Measured " + ("(--quick run: few iterations)" if quick else "(make bench)"),
        "\n".join(f"- {fact}" for fact in facts),
        f"- floors: {floor}",
        "",
        report.markdown_table(table),
        "",
        "Medians (p90 in brackets) of per-call wall time, each runtime spawned with `posix_spawn` and reaped with "
        "`wait4` by the benchmark (a subreaper, like a shim); runtimes alternate every iteration. Peak RSS is "
        "GNU time's `%M` of `create` (the runtime process and the children it reaped, i.e. pyrunc's stage-1 fork; "
        "not the container's init). Memory charged = `memory.max_usage_in_bytes` of the container's cgroup after "
        "`true` ran, before delete.",
        "",
        "CPU time (user + system) of the same calls, from `wait4`: the runtime process and the children it "
        "reaped (pyrunc's stage-1, runc's `runc init` parent stage), not the container's process:",
        "",
        report.markdown_table(cpu_table),
    ]
    if notes:
        parts += ["", "Notes:", *(f"- {note}" for note in notes)]
    parts += ["", f"![distributions](./{svg_name})", "", "### Import cost of each command path (ms, `-X importtime`, "
              "smallest self time per module over the runs)", "", importtime_note(), "", report.import_table(costs)]
    return "\n".join(parts)


def importtime_note() -> str:
    return ("Start-up = modules `site` imports before pyrunc runs; heavy modules = "
            + ", ".join(importtime.HEAVY) + " (must be none on hot paths).")


def probe_runtimes(ws: Workspace, names: list[str], pyrunc: Runtime) -> tuple[list[Runtime], dict[str, str], list[str]]:
    """(runtimes that can run a container here, path of every installed one, why the others are skipped)."""
    runtimes, found, skipped = [], {}, []
    for name in names:
        path = find_runtime(name)
        if path is None:
            skipped.append(f"{name}: not installed")
            continue
        found[name] = path
        rt = pyrunc if name == "pyrunc" else ws.runtime(name, path)
        reason = probe(ws, rt)
        if reason:
            skipped.append(f"{name}: {reason}")
            rt.delete_all()
        else:
            runtimes.append(rt)
    for line in skipped:
        log(f"skipping {line}")
    return runtimes, found, skipped


def print_results(tables: tuple[list[list[str]], list[list[str]]], notes: list[str],
                  costs: list[importtime.PathCost]) -> None:
    for table in tables:
        print(report.text_table(table))
    for note in notes:
        print(f"note: {note}")
    for cost in costs:
        groups = cost.group_ms()
        print(f"imports {cost.command:20s} " + " ".join(f"{k} {v:5.1f} ms" for k, v in groups.items())
              + f"  heavy: {','.join(cost.heavy()) or 'none'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runtimes", default="pyrunc,runc,crun")
    parser.add_argument("--quick", action="store_true", help="few iterations (a smoke run under a minute)")
    parser.add_argument("--out", default=None, help="markdown file to update (default docs/performance.md)")
    parser.add_argument("--clients", action=argparse.BooleanOptionalAction, default=None,
                        help="also time ctr/podman/docker run --rm (default: on for a full run, off with --quick)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: must run as root")
    out = args.out or (None if args.quick else str(REPO / "docs" / "performance.md"))
    cfg = QUICK if args.quick else FULL
    with_clients = args.clients if args.clients is not None else not args.quick
    load_before = load_average()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # like ^C: clean up on the way out
    become_subreaper()
    precompile()
    ws = Workspace()
    pyrunc = ws.runtime("pyrunc", str(PYRUNC))
    runtimes: list[Runtime] = []
    try:
        runtimes, found, skipped = probe_runtimes(ws, args.runtimes.split(","), pyrunc)
        base = cases.baselines(ws, str(PYRUNC.parent / "python"), cfg["base"])
        results = measure(ws, runtimes, cfg, with_clients) if runtimes else []
        log("import time per command path")
        precompile()  # sources edited while the cases ran would otherwise be compiled on every start
        costs = importtime.measure(ws, pyrunc, cfg["imports"])
    finally:
        for problem in ws.cleanup([*runtimes, pyrunc]):
            log(f"cleanup: {problem}")
    names = [name for name in found if name != "crun" or "crun" in {rt.name for rt in runtimes}]
    tables = (report.rows(results, names), report.cpu_rows(results, names))
    notes = [f"{line} (skipped)" for line in skipped] + report.notes(results)
    print_results(tables, notes, costs)
    if out:
        out_path = Path(out)
        svg_path = out_path.with_suffix(".svg")
        svg_path.write_text(report.svg_chart(results, names))
        text = document(machine_facts(found, load_before), tables, notes, costs, base, svg_path.name, args.quick)
        existing = out_path.read_text() if out_path.exists() else ""
        out_path.write_text(report.splice(existing, text))
        log(f"wrote {out_path} and {svg_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
