"""Devices and /dev: mknod with modes and owners, defaults, symlinks, and host binds in a user namespace."""

from __future__ import annotations

import os
from pathlib import Path

import test_rootfs_sandbox as sb
from test_rootfs_sandbox import mountinfo, sandbox

from pyrunc import rootfs as rootfs_api
from pyrunc import syscalls
from pyrunc.rootfs import devices

config = sb.config
rootfs = sb.rootfs


def _ls(config: dict, rootfs: Path, *paths: str, **kwargs) -> dict[str, list[str]]:
    out = sandbox(config, rootfs, "/bin/ls", "-lnd", *paths, **kwargs).ok()
    entries = {}
    for line in out.splitlines():
        words = line.replace(",", " ").split()
        entries[words[words.index("->") - 1] if "->" in words else words[-1]] = words
    return entries


def test_linux_devices_modes_owners_types(config: dict, rootfs: Path) -> None:
    config["linux"]["devices"] = [
        {"path": "/dev/mychar", "type": "c", "major": 1, "minor": 5, "fileMode": 0o640, "uid": 7, "gid": 8},
        {"path": "/dev/a/b/myblock", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600},
        {"path": "/dev/myfifo", "type": "p", "fileMode": 0o620},
        {"path": "/dev/null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o600},
    ]
    entries = _ls(config, rootfs, "/dev/mychar", "/dev/a/b/myblock", "/dev/myfifo", "/dev/null", "/dev/zero")
    assert entries["/dev/mychar"][:6] == ["crw-r-----", "1", "7", "8", "1", "5"]
    assert entries["/dev/a/b/myblock"][0] == "brw-------" and entries["/dev/a/b/myblock"][4:6] == ["7", "200"]
    assert entries["/dev/myfifo"][0] == "prw--w----"
    assert entries["/dev/null"][0] == "crw-------", "linux.devices must override the default"
    assert entries["/dev/zero"][0] == "crw-rw-rw-"


def test_no_dev_setup_when_dev_is_a_bind(config: dict, rootfs: Path, tmp_path: Path) -> None:
    own_dev = tmp_path / "mydev"
    own_dev.mkdir()
    (own_dev / "marker").write_text("")
    config["mounts"] = [m for m in config["mounts"] if not m["destination"].startswith("/dev")]
    config["mounts"].append({"destination": "/dev", "type": "bind", "source": str(own_dev), "options": ["rbind"]})
    config["linux"]["maskedPaths"] = []
    assert devices.needs_dev_setup(config) is False
    assert sandbox(config, rootfs, "/bin/ls", "/dev").ok().split() == ["marker"]


def test_user_namespace_binds_host_devices_and_sys(config: dict, rootfs: Path) -> None:
    """Inside a user namespace: default devices are binds of the host's nodes; sysfs without a network
    namespace of its own is a bind of /sys (cgroup mounts too are binds)."""
    config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "network"]
    mounts = mountinfo(config, rootfs, in_userns=True, extra_flags=syscalls.CLONE_NEWIPC)
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        assert f"/dev/{name}" in mounts, name
    assert mounts["/sys"].fstype == "sysfs" and "ro" in mounts["/sys"].options
    entries = _ls(config, rootfs, "/dev/null", "/dev/tty", in_userns=True, extra_flags=syscalls.CLONE_NEWIPC)
    assert entries["/dev/null"][4:6] == ["1", "3"] and entries["/dev/tty"][4:6] == ["5", "0"]
    assert sandbox(config, rootfs, "/bin/sh", "-c", "echo x > /dev/null && echo ok", in_userns=True,
                   extra_flags=syscalls.CLONE_NEWIPC).ok() == "ok\n"


def test_user_namespace_with_network_namespace_mounts_sysfs(config: dict, rootfs: Path) -> None:
    mounts = mountinfo(config, rootfs, in_userns=True, extra_flags=syscalls.CLONE_NEWNET | syscalls.CLONE_NEWIPC)
    assert mounts["/sys"].fstype == "sysfs" and mounts["/sys"].root == "/"


def test_console_is_the_pty_slave(config: dict, rootfs: Path) -> None:
    def console() -> None:
        _, slave = os.openpty()  # the container's own devpts, through /dev/ptmx -> pts/ptmx
        rootfs_api.mount_console(slave)
        os.close(slave)

    out = sandbox(config, rootfs, "/bin/sh", "-c", "grep ' /dev/console ' /proc/self/mountinfo; ls -ln /dev/console",
                  after_pivot=console).ok()
    mount_line, ls_line = out.splitlines()
    assert " devpts " in mount_line and mount_line.split()[3].startswith("/")
    assert ls_line.startswith("c")
