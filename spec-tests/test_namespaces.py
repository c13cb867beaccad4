"""Namespaces, hostname and mounts (config-linux.md "Namespaces", config.md "Hostname", "Mounts")."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from helpers import Bundle, Runtime, run_ok

NS_FILES = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts", "mount": "mnt"}



def _container_namespaces(rt: Runtime, bundle: Bundle) -> dict[str, str]:
    script = "; ".join(f"echo {t} $(readlink /proc/self/ns/{f})" for t, f in NS_FILES.items())
    return dict(line.split(" ", 1) for line in run_ok(rt, bundle, "sh", "-c", script).splitlines())


def test_hostname(rt: Runtime, bundle: Bundle) -> None:
    """config.md "Hostname": "hostname (string, OPTIONAL) specifies the container's hostname as seen by
    processes running inside the container"."""
    bundle.config["hostname"] = "spec-host"
    assert run_ok(rt, bundle, "hostname").strip() == "spec-host"


def test_new_namespaces_differ_from_host(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Namespaces": "If a namespace type is specified without a path, the runtime MUST
    create a new namespace of that type"."""
    inside = _container_namespaces(rt, bundle)
    for ns_type, ns_file in NS_FILES.items():
        assert inside[ns_type] != os.readlink(f"/proc/self/ns/{ns_file}"), f"{ns_type} namespace is the host's"


def test_namespace_not_listed_is_inherited(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Namespaces": "If a namespace type is not specified in the namespaces array, the
    container MUST inherit the runtime namespace of that type"."""
    bundle.config["linux"]["namespaces"] = [
        ns for ns in bundle.config["linux"]["namespaces"] if ns["type"] not in ("network", "ipc")
    ]
    inside = _container_namespaces(rt, bundle)
    assert inside["network"] == os.readlink("/proc/self/ns/net")
    assert inside["ipc"] == os.readlink("/proc/self/ns/ipc")
    assert inside["uts"] != os.readlink("/proc/self/ns/uts")


@pytest.fixture
def netns_holder() -> Iterator[int]:
    """A helper process in its own network namespace (killed and reaped afterwards)."""
    host_net = os.readlink("/proc/self/ns/net")
    with subprocess.Popen(["unshare", "--net", "sleep", "300"]) as proc:
        try:
            deadline = time.monotonic() + 5
            while os.readlink(f"/proc/{proc.pid}/ns/net") == host_net:
                assert time.monotonic() < deadline, "unshare --net did not take effect"
                time.sleep(0.01)
            yield proc.pid
        finally:
            proc.kill()


def test_join_namespace_by_path(rt: Runtime, bundle: Bundle, netns_holder: int) -> None:
    """config-linux.md "Namespaces": "path (string, OPTIONAL) - namespace file. ... the runtime MUST place
    the container process in the namespace specified by that path"."""
    path = f"/proc/{netns_holder}/ns/net"
    for ns in bundle.config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = path
    inside = _container_namespaces(rt, bundle)
    assert inside["network"] == os.readlink(path)
    assert inside["uts"] != os.readlink("/proc/self/ns/uts")


def test_tmpfs_mount_with_options(rt: Runtime, bundle: Bundle) -> None:
    """config.md "Mounts": "The runtime MUST mount entries in the listed order"; destination, type and
    options (fstab-style) are honoured."""
    bundle.config["mounts"].append({
        "destination": "/mnt/scratch", "type": "tmpfs", "source": "tmpfs",
        "options": ["nosuid", "nodev", "noexec", "mode=0700", "size=1m"],
    })
    mountinfo = run_ok(rt, bundle, "cat", "/proc/self/mountinfo").splitlines()
    lines = [line.split() for line in mountinfo if line.split()[4] == "/mnt/scratch"]
    assert lines, "no mount at /mnt/scratch"
    fields = lines[-1]
    sep = fields.index("-")
    assert fields[sep + 1] == "tmpfs"
    assert {"nosuid", "nodev", "noexec"} <= set(fields[5].split(","))
    super_options = set(fields[sep + 3].split(","))
    assert {"size=1024k", "mode=700"} <= super_options


def test_bind_mount(rt: Runtime, bundle: Bundle, tmp_path) -> None:
    """config.md "Mounts": a bind mount makes the host source visible at destination; "ro" applies."""
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "hello").write_text("from host\n")
    bundle.add_bind(shared, "/data", readonly=True)
    out = run_ok(rt, bundle, "sh", "-c", "cat /data/hello; touch /data/x 2>/dev/null && echo writable || :")
    assert out == "from host\n"


def test_root_readonly(rt: Runtime, bundle: Bundle) -> None:
    """config.md "Root": "readonly (bool, OPTIONAL) If true then the root filesystem MUST be read-only"."""
    out = run_ok(rt, bundle, "sh", "-c", "touch /probe 2>/dev/null && echo writable || echo readonly")
    assert out.strip() == "readonly"
    bundle.config["root"]["readonly"] = False
    out = run_ok(rt, bundle, "sh", "-c", "touch /probe 2>/dev/null && echo writable || echo readonly")
    assert out.strip() == "writable"
