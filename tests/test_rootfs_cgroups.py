"""cgroup/cgroup2 mounts: the container sees its own cgroup (v1 binds, cgroup namespace, cgroup2)."""

from __future__ import annotations

from pathlib import Path

import test_rootfs_sandbox as sb
from test_rootfs_sandbox import mountinfo

from pyrunc import syscalls

config = sb.config
rootfs = sb.rootfs


def test_cgroup_namespace_mounts_hierarchies_afresh(config: dict, rootfs: Path) -> None:
    config["linux"]["namespaces"].append({"type": "cgroup"})
    mounts = mountinfo(config, rootfs, extra_flags=syscalls.CLONE_NEWCGROUP)
    cgroups = [m for m in mounts.values() if m.fstype == "cgroup"]
    assert cgroups and all(m.root == "/" and "ro" in m.options for m in cgroups)


def _cgroup2_config(config: dict) -> dict:
    for mount in config["mounts"]:
        if mount["destination"] == "/sys/fs/cgroup":
            mount["type"] = mount["source"] = "cgroup2"
    return config


def test_cgroup2_mount(config: dict, rootfs: Path) -> None:
    mount = mountinfo(_cgroup2_config(config), rootfs)["/sys/fs/cgroup"]
    assert mount.fstype == "cgroup2" and "ro" in mount.options


def test_cgroup2_in_user_namespace_binds_own_cgroup(config: dict, rootfs: Path) -> None:
    """Without a cgroup namespace, a user namespace cannot mount cgroup2: the own cgroup is bound."""
    config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "network"]
    own = next(line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines()
               if line.startswith("0::"))
    mount = mountinfo(_cgroup2_config(config), rootfs, in_userns=True,
                      extra_flags=syscalls.CLONE_NEWIPC)["/sys/fs/cgroup"]
    assert mount.fstype == "cgroup2" and mount.root == own and "ro" in mount.options
