"""`ctr run --rm`, `podman run --rm`, `docker run --rm` of `true` under each runtime.

The client daemons and images are the integration tests' (tests/integration/bench_clients.py, issue 7);
this module runs that script once per runtime and turns its medians into cases. The script reports
medians only, so these cases hold one value per runtime, and runtimes are not alternated.
"""

from __future__ import annotations

import math
import subprocess
import sys

from cases import Case
from harness import REPO, Runtime, last_line

SCRIPT = REPO / "tests" / "integration" / "bench_clients.py"
CLIENTS = {"ctr run --rm": "ctr", "podman run --rm": "podman", "docker run --rm": "docker"}


def client_cases(runtimes: list[Runtime], runs: int) -> list[Case]:
    cases = {client: Case(key, f"`{client}` of `true` (median of {runs})", "ms") for client, key in CLIENTS.items()}
    for rt in runtimes:
        if not SCRIPT.exists():
            for case in cases.values():
                case.notes[rt.name] = f"skipped: {SCRIPT.relative_to(REPO)} is missing"
            continue
        try:
            proc = subprocess.run([sys.executable, str(SCRIPT), "-n", str(runs), rt.path], capture_output=True,
                                  text=True, timeout=300)
        except subprocess.TimeoutExpired:
            proc = subprocess.CompletedProcess([], 1, "", "timed out after 300 s")
        medians = _parse(proc.stdout) if proc.returncode == 0 else {}
        for client, case in cases.items():
            if client in medians:
                case.add(rt.name, medians[client])
            else:
                case.notes[rt.name] = f"bench_clients.py exit {proc.returncode}: {_client_error(proc.stderr)}"
    return list(cases.values())


def _client_error(stderr: str) -> str:
    """The failed client's own stderr line (bench_clients.py prints it as `stderr: ...`), else the last line."""
    quoted = [line for line in stderr.splitlines() if line.startswith("stderr: ") and line.strip() != "stderr:"]
    return quoted[-1][:300] if quoted else last_line(stderr)


def _parse(stdout: str) -> dict[str, float]:
    """Lines `<client>   <median ms>` after the header line (`nan` when that client failed)."""
    medians = {}
    for line in stdout.splitlines()[1:]:
        name, _, value = line.rpartition(" ")
        try:
            median = float(value)
        except ValueError:
            continue
        if not math.isnan(median):
            medians[name.strip()] = median
    return medians
