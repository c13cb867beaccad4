"""Time `ctr run --rm`, `podman run --rm` and `docker run --rm` of `true` under each runtime given, with
daemons started as the client tests start them (for `make bench`).

Usage (as root): .venv/bin/python tests/integration/bench_clients.py [-n RUNS] RUNTIME...
Prints one line per client: the median wall time in ms under each runtime, side by side (nan: failed).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent.parent / "spec-tests")]

from harness import host  # noqa: E402
from harness.commands import Result  # noqa: E402
from harness.daemons import Containerd, Dockerd, Podman  # noqa: E402
from harness.images import BUSYBOX, ensure_images  # noqa: E402
from helpers import runtime_path  # noqa: E402


def median_ms(command: Callable[[], Result], runs: int) -> float:
    """Median of `runs` timed runs after one warm-up; NaN (and the error on stderr) if a run fails."""
    warm_up = command()
    if warm_up.returncode != 0:
        print(warm_up.describe(), file=sys.stderr)
        return math.nan
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        command().check()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def time_clients(runtime: str, base: Path, runs: int) -> dict[str, float]:
    images = ensure_images()
    containerd = Containerd(base / "containerd")
    dockerd = None
    try:
        containerd.import_image(images.busybox_docker)
        podman = Podman(base / "pm", runtime)
        podman("load", "-i", str(images.busybox_docker)).check()
        dockerd = Dockerd(base / "dk", containerd, runtime)
        dockerd("load", "-i", str(images.busybox_docker)).check()
        return {
            "ctr run --rm": median_ms(
                lambda: containerd.ctr("run", "--rm", "--runc-binary", runtime, BUSYBOX, "bench", "true"), runs),
            "podman run --rm": median_ms(lambda: podman("run", "--rm", BUSYBOX, "true"), runs),
            "docker run --rm": median_ms(lambda: dockerd("run", "--rm", BUSYBOX, "true"), runs),
        }
    finally:
        if dockerd is not None:
            dockerd.stop()
        containerd.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=10)
    parser.add_argument("runtimes", nargs="+", help="paths or command names (e.g. runc .venv/bin/pyrunc)")
    args = parser.parse_args()
    fixed, parents = host.FixedPaths(), host.cgroup_parents_present()
    results = {}
    try:
        for name in args.runtimes:
            with tempfile.TemporaryDirectory(prefix="prc-") as base:
                os.environ["RUNTIME"] = name  # resolved as the tests resolve it
                results[name] = time_clients(runtime_path(), Path(base), args.runs)
    finally:
        fixed.remove_created()
        host.remove_client_cgroup_parents(parents)
    print(f"{'median ms':<18}" + "".join(f"{Path(n).name:>12}" for n in args.runtimes))
    for client in next(iter(results.values())):
        print(f"{client:<18}" + "".join(f"{results[n][client]:>12.0f}" for n in args.runtimes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
