"""Time and cgroup namespaces (config-linux.md "Namespaces", "Offset for Time Namespace")."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import Bundle, Runtime, new_id, run_ok

DAY = 86400



def _with_namespace(bundle: Bundle, ns_type: str) -> None:
    bundle.config["linux"]["namespaces"].append({"type": ns_type})


def test_time_offsets(rt: Runtime, bundle: Bundle, xfail_runc) -> None:
    """config-linux.md "Offset for Time Namespace": "timeOffsets (object, OPTIONAL) sets the offset for
    Time Namespace" with "secs" and "nanosecs" per clock (monotonic, boottime)."""
    xfail_runc("time namespaces (runtime-spec 1.1) are newer than runc 1.1.5")
    _with_namespace(bundle, "time")
    bundle.config["linux"]["timeOffsets"] = {
        "monotonic": {"secs": DAY, "nanosecs": 0},
        "boottime": {"secs": 2 * DAY, "nanosecs": 500},
    }
    host_uptime = float(Path("/proc/uptime").read_text().split()[0])
    out = run_ok(rt, bundle, "sh", "-c", "cat /proc/self/timens_offsets; cut -d' ' -f1 /proc/uptime")
    lines = out.splitlines()
    offsets = {fields[0]: fields[1:] for fields in (line.split() for line in lines[:2])}
    assert offsets == {"monotonic": [str(DAY), "0"], "boottime": [str(2 * DAY), "500"]}
    # /proc/uptime follows CLOCK_BOOTTIME of the reader's time namespace.
    assert 2 * DAY <= float(lines[2]) - host_uptime < 2 * DAY + 60


def test_time_namespace_is_new(rt: Runtime, bundle: Bundle, xfail_runc) -> None:
    """config-linux.md "Namespaces": "time the container will be able to have its own clocks" (a new
    namespace without offsets: zero offsets)."""
    xfail_runc("time namespaces (runtime-spec 1.1) are newer than runc 1.1.5")
    _with_namespace(bundle, "time")
    out = run_ok(rt, bundle, "sh", "-c", "readlink /proc/self/ns/time; cat /proc/self/timens_offsets")
    lines = out.splitlines()
    assert lines[0] != os.readlink("/proc/self/ns/time")
    assert [line.split()[1:] for line in lines[1:]] == [["0", "0"], ["0", "0"]]


def test_cgroup_namespace_roots_at_own_cgroup(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Namespaces": "cgroup the container will have an isolated view of the cgroup
    hierarchy": the container's own cgroups are the roots ("/") of its view."""
    _with_namespace(bundle, "cgroup")
    out = run_ok(rt, bundle, "sh", "-c", "readlink /proc/self/ns/cgroup; cat /proc/self/cgroup")
    lines = out.splitlines()
    assert lines[0] != os.readlink("/proc/self/ns/cgroup")
    assert lines[1:], "no /proc/self/cgroup lines"
    for line in lines[1:]:
        assert line.split(":", 2)[2] == "/", line


def test_without_cgroup_namespace_the_host_path_shows(rt: Runtime, bundle: Bundle) -> None:
    """Without a cgroup namespace the container sees its full cgroup path (cgroupsPath)."""
    cid = new_id()
    bundle.set_args("cat", "/proc/self/cgroup")
    code, out, err = rt.run_container(bundle, cid)
    assert code == 0, err
    memory = next(line for line in out.splitlines() if line.split(":")[1] == "memory")
    assert memory.split(":", 2)[2].endswith(f"/{cid}")
