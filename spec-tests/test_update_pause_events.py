"""The runc commands that act through the cgroups: `update`, `pause`/`resume` and `events` (not in the
runtime-spec's operations: runc's CLI is the reference), read back from the container's cgroup files."""

from __future__ import annotations

import json
import select
import subprocess
import time
from pathlib import Path

import pytest
from helpers import Bundle, Runtime
from test_cgroups import (
    MIB,
    V2,
    ContainerCgroup,
    expected_io_weight,
    has_swap_accounting,
    io_weight_files,
    memory_limit,
    shares_to_weight,
    started,
    wait_until,
)

pytestmark = pytest.mark.cgroup


def _memory_limit(cg: ContainerCgroup) -> str | None:
    return cg.read("memory.max" if V2 else "memory.limit_in_bytes")


# -- update ----------------------------------------------------------------------------------------

def test_update_flags_change_running_limits(rt: Runtime, bundle: Bundle) -> None:
    """runc's per-value flags change a running container's cgroup files."""
    bundle.config["linux"]["resources"]["pids"] = {"limit": 100}
    cid, pid = started(rt, bundle, "sleep", "1000")
    rt("update", "--memory", "200m", "--memory-reservation", "100m", "--cpu-share", "256", "--cpu-quota", "30000",
       "--cpu-period", "100000", "--cpuset-cpus", "0", "--pids-limit", "50", cid, check=True)
    cg = ContainerCgroup(pid)
    assert _memory_limit(cg) == str(200 * MIB)
    assert cg.read("memory.low" if V2 else "memory.soft_limit_in_bytes") == str(100 * MIB)
    if V2:
        assert cg.read("cpu.weight") == str(shares_to_weight(256))
        assert cg.read("cpu.max") == "30000 100000"
    else:
        assert (cg.read("cpu.shares"), cg.read("cpu.cfs_quota_us")) == ("256", "30000")
    assert (cg.read("cpuset.cpus"), cg.read("pids.max")) == ("0", "50")
    assert rt.state(cid)["status"] == "running"


def test_update_memory_swap_and_blkio_weight(rt: Runtime, bundle: Bundle) -> None:
    """--memory-swap (memory+swap: v2 stores the swap alone) and --blkio-weight, where the host has them."""
    swap, weights = has_swap_accounting(), io_weight_files()
    if not swap and not weights:
        pytest.skip("this host has neither swap accounting nor an I/O weight file")
    cid, pid = started(rt, bundle, "sleep", "1000")
    flags = ["--memory", "100m", "--memory-swap", "300m"] if swap else []
    flags += ["--blkio-weight", "300"] if weights else []
    rt("update", *flags, cid, check=True)
    cg = ContainerCgroup(pid)
    if swap:
        expected = str(200 * MIB) if V2 else str(300 * MIB)
        assert cg.read("memory.swap.max" if V2 else "memory.memsw.limit_in_bytes") == expected
    if weights:
        assert cg.read(weights[0]) in expected_io_weight(weights[0], 300)


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_update_resources_document(rt: Runtime, bundle: Bundle, tmp_path: Path, source: str) -> None:
    """`update --resources FILE|-` applies a LinuxResources JSON document."""
    cid, pid = started(rt, bundle, "sleep", "1000")
    document = json.dumps({"memory": {"limit": 150 * MIB}, "pids": {"limit": 33}})
    if source == "file":
        (tmp_path / "resources.json").write_text(document)
        rt("update", "--resources", str(tmp_path / "resources.json"), cid, check=True)
    else:
        # (not through rt(): it cannot pass input, helpers.Runtime.__call__ sets stdin as well)
        result = subprocess.run([rt.path, "--root", str(rt.root), "update", "--resources", "-", cid],
                                input=document, capture_output=True, text=True, timeout=20)
        assert result.returncode == 0, result.stderr
    cg = ContainerCgroup(pid)
    assert (_memory_limit(cg), cg.read("pids.max")) == (str(150 * MIB), "33")


def test_update_pids_limit_is_enforced(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """A limit lowered by update is the one the kernel enforces: a fork beyond it fails."""
    out = tmp_path / "out"
    out.mkdir()
    bundle.add_bind(out, "/out")
    cid, _ = started(rt, bundle, "sh", "-c", "while [ ! -e /out/go ]; do sleep 0.05; done; "
                     "sleep 1000 & sleep 1000 & echo forked >/out/result; sleep 1000")
    rt("update", "--pids-limit", "2", cid, check=True)
    (out / "go").touch()
    wait_until(lambda: rt.state(cid)["status"] == "stopped" or (out / "result").exists(), what="the forks")
    time.sleep(0.2)
    assert not (out / "result").exists(), "three forks succeeded under pids.max 2"


def test_update_stopped_container_fails(rt: Runtime, bundle: Bundle) -> None:
    cid, _ = started(rt, bundle, "true")
    rt.wait_status(cid, "stopped")
    result = rt("update", "--pids-limit", "10", cid)
    assert result.returncode == 1 and result.stderr.strip(), result


@pytest.mark.parametrize("flags", [
    ("--memory", "-2"),  # negative, other than -1 (unlimited)
    ("--cpuset-cpus", "0-4095"),  # CPUs this host does not have
    ("--cpu-share", "lots"),
], ids=["negative-memory", "missing-cpus", "not-a-number"])
def test_update_bad_value_fails_and_changes_nothing(rt: Runtime, bundle: Bundle, flags: tuple[str, str]) -> None:
    bundle.config["linux"]["resources"].update({"memory": {"limit": 100 * MIB}, "cpu": {"cpus": "0", "shares": 512}})
    cid, pid = started(rt, bundle, "sleep", "1000")
    cg = ContainerCgroup(pid)
    files = ("cpuset.cpus", "memory.max" if V2 else "memory.limit_in_bytes", "cpu.weight" if V2 else "cpu.shares")
    before = {f: cg.read(f) for f in files}
    result = rt("update", *flags, cid)
    assert result.returncode == 1 and result.stderr.strip(), result
    assert {f: cg.read(f) for f in files} == before
    assert rt.state(cid)["status"] == "running"


# -- pause / resume --------------------------------------------------------------------------------

def _ticks(path: Path) -> int:
    return len(path.read_text()) if path.exists() else 0


def test_pause_freezes_and_resume_thaws(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """pause → status paused, the processes stop (a counter stops advancing); resume → running, it advances."""
    out = tmp_path / "out"
    out.mkdir()
    bundle.add_bind(out, "/out")
    ticks = out / "ticks"
    cid, _ = started(rt, bundle, "sh", "-c", "while :; do echo -n x >>/out/ticks; sleep 0.02; done")
    wait_until(lambda: _ticks(ticks) > 0, what="the counter to start")
    rt("pause", cid, check=True)
    assert rt.state(cid)["status"] == "paused"
    frozen_at = _ticks(ticks)
    time.sleep(0.5)
    assert _ticks(ticks) == frozen_at, "the counter advanced while paused"
    rt("resume", cid, check=True)
    assert rt.state(cid)["status"] == "running"
    wait_until(lambda: _ticks(ticks) > frozen_at, what="the counter to advance after resume")


def test_paused_container_can_be_killed_and_deleted(rt: Runtime, bundle: Bundle) -> None:
    cid, _ = started(rt, bundle, "sleep", "1000")
    rt("pause", cid, check=True)
    rt.delete(cid, force=True)
    assert cid not in rt.container_ids()


def test_pause_stopped_container_fails(rt: Runtime, bundle: Bundle) -> None:
    cid, _ = started(rt, bundle, "true")
    rt.wait_status(cid, "stopped")
    result = rt("pause", cid)
    assert result.returncode == 1 and result.stderr.strip(), result
    assert rt.state(cid)["status"] == "stopped"


def test_resume_not_paused_container_fails(rt: Runtime, bundle: Bundle) -> None:
    cid, _ = started(rt, bundle, "sleep", "1000")
    result = rt("resume", cid)
    assert result.returncode == 1 and result.stderr.strip(), result
    assert rt.state(cid)["status"] == "running"


# -- events ----------------------------------------------------------------------------------------

def test_events_stats(rt: Runtime, bundle: Bundle) -> None:
    """`events --stats` prints one JSON object with runc's field names."""
    bundle.config["linux"]["resources"]["pids"] = {"limit": 20}
    cid, _ = started(rt, bundle, "sh", "-c", "sleep 1000 & i=0; while [ $i -lt 2000 ]; do i=$((i+1)); done; wait")
    result = rt("events", "--stats", cid, check=True)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    event = json.loads(lines[0])
    assert (event["type"], event["id"]) == ("stats", cid)
    data = event["data"]
    assert data["cpu"]["usage"]["total"] > 0
    assert data["memory"]["usage"]["usage"] > 0
    assert data["pids"]["current"] == 2 and data["pids"]["limit"] == 20


def test_events_stats_of_stopped_container_fails(rt: Runtime, bundle: Bundle) -> None:
    cid, _ = started(rt, bundle, "true")
    rt.wait_status(cid, "stopped")
    result = rt("events", "--stats", cid)
    assert result.returncode == 1 and result.stderr.strip(), result


def _read_events(proc: subprocess.Popen, until: str, timeout: float) -> list[dict]:
    """Events read from `events` until one of type `until` arrives (AssertionError after timeout)."""
    events: list[dict] = []
    buffer = b""
    deadline = time.monotonic() + timeout
    while not any(e["type"] == until for e in events):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (proc.poll() is not None and not select.select([proc.stdout], [], [], 0)[0]):
            raise AssertionError(f"no {until!r} event; got {events}, exit {proc.poll()}")
        if select.select([proc.stdout], [], [], min(remaining, 0.2))[0]:
            chunk = proc.stdout.read1(65536)
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            events += [json.loads(line) for line in lines if line.strip()]
    return events


def test_events_reports_oom(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """Streaming `events` reports {"type": "oom"} when a process of the container is OOM-killed.

    Which process the kernel kills is its choice (the allocating shell, `tr`, or the waiting shell), so
    only the event is checked here; test_cgroups.py checks that the allocating process dies with 137."""
    out = tmp_path / "out"
    out.mkdir()
    bundle.add_bind(out, "/out")
    bundle.config["linux"]["resources"].update(memory_limit(32 * MIB))
    allocate = 'x=$(head -c 200000000 /dev/zero | tr "\\0" x)'
    cid, _ = started(rt, bundle, "sh", "-c", f"while [ ! -e /out/go ]; do sleep 0.05; done; sh -c '{allocate}'; "
                     "sleep 1000")
    proc = subprocess.Popen([rt.path, "--root", str(rt.root), "events", "--interval", "1s", cid],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        _read_events(proc, "stats", timeout=30)  # listening: the first stats arrive
        (out / "go").touch()
        events = _read_events(proc, "oom", timeout=30)
        oom = next(e for e in events if e["type"] == "oom")
        assert oom["id"] == cid
    finally:
        proc.kill()
        proc.wait()
