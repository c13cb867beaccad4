"""The config.json `pyrunc spec` writes: the same example as `runc spec` (and its --rootless variant)."""

from __future__ import annotations

import os

from pyrunc import SPEC_VERSION

_DEFAULT_CAPABILITIES = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
_NOSUID_NOEXEC_NODEV = ("nosuid", "noexec", "nodev")


def default_spec(rootless: bool) -> dict:
    """A fresh example config; `rootless` maps the caller's euid/egid to root in a new user namespace."""
    spec = {
        "ociVersion": SPEC_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {kind: list(_DEFAULT_CAPABILITIES)
                             for kind in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "runc",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": [*_NOSUID_NOEXEC_NODEV, "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": [*_NOSUID_NOEXEC_NODEV]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": [*_NOSUID_NOEXEC_NODEV, "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": [*_NOSUID_NOEXEC_NODEV, "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": kind} for kind in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }
    if _cgroup2_unified():
        spec["linux"]["namespaces"].append({"type": "cgroup"})
    if rootless:
        _make_rootless(spec)
    return spec


def _cgroup2_unified() -> bool:
    """True on a pure cgroup v2 host, where runc's example also asks for a cgroup namespace."""
    return os.path.exists("/sys/fs/cgroup/cgroup.controllers")


def _make_rootless(spec: dict) -> None:
    """runc's rootless conversion: no network namespace, a user namespace mapping the caller to root,
    /sys bind-mounted instead of a new sysfs, no uid=/gid= mount options, no cgroup resources."""
    linux = spec["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] not in ("network", "user")]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
    mounts = []
    for mount in spec["mounts"]:
        if mount["destination"] == "/sys":
            mount = {"destination": "/sys", "type": "none", "source": "/sys",
                     "options": ["rbind", *_NOSUID_NOEXEC_NODEV, "ro"]}
        elif "options" in mount:
            mount["options"] = [o for o in mount["options"] if not o.startswith(("uid=", "gid="))]
        mounts.append(mount)
    spec["mounts"] = mounts
    del linux["resources"]
