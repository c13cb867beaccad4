"""Devices (config-linux.md "Devices", "Default Devices", "/dev symbolic links")."""

from __future__ import annotations

import pytest
from helpers import Bundle, Runtime, new_id
from test_mounts import run_ok


def _ls(rt: Runtime, bundle: Bundle, *paths: str) -> dict[str, list[str]]:
    """`ls -lnd` of each path → its words (mode, links, uid, gid, [major, minor | size] ...)."""
    out = run_ok(rt, bundle, "ls", "-lnd", *paths)
    result = {}
    for line in out.splitlines():
        words = line.replace(",", " ").split()
        name = words[words.index("->") - 1] if "->" in words else words[-1]
        result[name] = words
    return result


def test_default_devices(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Default Devices": "the runtime MUST supply" null zero full random urandom tty, and
    the /dev symbolic links fd stdin stdout stderr."""
    expected = {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7), "/dev/random": (1, 8),
                "/dev/urandom": (1, 9), "/dev/tty": (5, 0)}
    entries = _ls(rt, bundle, *expected, "/dev/ptmx", "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr")
    for path, (major, minor) in expected.items():
        words = entries[path]
        assert words[0] == "crw-rw-rw-" and (int(words[4]), int(words[5])) == (major, minor), words
    assert entries["/dev/ptmx"][-1] == "pts/ptmx"
    assert entries["/dev/fd"][-1] == "/proc/self/fd"
    for index, name in enumerate(("stdin", "stdout", "stderr")):
        assert entries[f"/dev/{name}"][-1] == f"/proc/self/fd/{index}"


def test_devices_work(rt: Runtime, bundle: Bundle) -> None:
    out = run_ok(rt, bundle, "sh", "-c", "echo x > /dev/null && head -c 4 /dev/zero | wc -c && "
                 "head -c 4 /dev/urandom | wc -c")
    assert out.split() == ["4", "4"]


def test_linux_devices(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Devices": type c/b/u/p, major, minor, fileMode, uid, gid."""
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/mychar", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640, "uid": 7, "gid": 8},
        {"path": "/dev/sub/dir/myblock", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o620},
        {"path": "/dev/myunbuffered", "type": "u", "major": 1, "minor": 7},
    ]
    entries = _ls(rt, bundle, "/dev/mychar", "/dev/sub/dir/myblock", "/dev/myfifo", "/dev/myunbuffered")
    assert entries["/dev/mychar"][:6] == ["crw-r-----", "1", "7", "8", "1", "5"]
    assert entries["/dev/sub/dir/myblock"][0] == "brw-------"
    assert entries["/dev/sub/dir/myblock"][4:6] == ["7", "200"]
    assert entries["/dev/myfifo"][0] == "prw--w----"
    assert entries["/dev/myunbuffered"][0].startswith("c") and entries["/dev/myunbuffered"][4:6] == ["1", "7"]


def test_device_overrides_default(rt: Runtime, bundle: Bundle) -> None:
    """A linux.devices entry at a default device's path replaces it (here: /dev/null with mode 0600)."""
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600}]
    # a listed device is not in the default device-cgroup allow list (runc): allow it explicitly
    bundle.config["linux"]["resources"]["devices"].append(
        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"})
    assert _ls(rt, bundle, "/dev/null")["/dev/null"][0] == "crw-------"


def test_dev_console_only_with_terminal(rt: Runtime, bundle: Bundle) -> None:
    """/dev/console exists only for a container with a terminal (runtime.md, config.md "terminal")."""
    assert run_ok(rt, bundle, "sh", "-c", "test -e /dev/console && echo yes || echo no").strip() == "no"


@pytest.mark.parametrize("kind", ["x", "char", ""])
def test_unknown_device_type_fails_cleanly(rt: Runtime, bundle: Bundle, kind: str) -> None:
    bundle.config["linux"]["devices"] = [{"path": "/dev/bad", "type": kind, "major": 1, "minor": 3}]
    cid = new_id()
    result = rt.create(cid, bundle, check=False)
    assert result.returncode == 1 and result.stderr.strip()
    assert cid not in rt.container_ids()
    if not rt.is_runc:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "devices[0]" in lines[0], lines


def test_devices_in_user_namespace_are_host_binds(rt: Runtime, bundle: Bundle) -> None:
    """Inside a user namespace mknod is not allowed: the host's nodes are bind-mounted (same numbers)."""
    linux = bundle.config["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    out = run_ok(rt, bundle, "sh", "-c", "ls -ln /dev/null /dev/zero; grep -c ' /dev/null ' /proc/self/mountinfo; "
                 "echo x > /dev/null && echo wrote")
    lines = out.splitlines()
    assert lines[0].replace(",", " ").split()[4:6] == ["1", "3"]
    assert lines[2] == "1" and lines[3] == "wrote"
