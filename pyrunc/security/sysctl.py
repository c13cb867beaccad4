"""`linux.sysctl`: only namespaced keys, checked at create and written inside the container after pivot.

Keys use dots (`net.ipv4.ip_forward`) or slashes (`net/ipv4/conf/eth0.1/forwarding`, where a dot belongs
to a name). Which keys are namespaced follows runc's list.
"""

from __future__ import annotations

from pyrunc.errors import SecurityError
from pyrunc.security import os_reason

_IPC_KEYS = {
    "kernel/msgmax", "kernel/msgmnb", "kernel/msgmni", "kernel/sem",
    "kernel/shmall", "kernel/shmmax", "kernel/shmmni", "kernel/shm_rmid_forced",
}  # fmt: skip
_UTS_KEYS = {"kernel/hostname", "kernel/domainname"}


def key_path(key: str) -> str:
    """The key relative to /proc/sys."""
    return key if "/" in key else key.replace(".", "/")


def _required_namespace(key: str) -> str | None:
    path = key_path(key)
    if path in _IPC_KEYS or path.startswith("fs/mqueue/"):
        return "ipc"
    if path.startswith("net/"):
        return "network"
    if path in _UTS_KEYS:
        return "uts"
    return None


def check_sysctls(sysctl: dict | None, namespaces: set[str]) -> None:
    """At create: refuse a key that is not namespaced or whose namespace the container does not have.

    `namespaces` holds the spec's types ("ipc", "network", "uts") the container creates or joins.
    """
    for key in sysctl or {}:
        if ".." in key_path(key).split("/"):
            raise SecurityError(f"sysctl {key!r} is not a valid key")
        needed = _required_namespace(key)
        if needed is None:
            raise SecurityError(f"sysctl {key!r} is not in a separate kernel namespace")
        if needed not in namespaces:
            raise SecurityError(f"sysctl {key!r} needs the container's own {needed} namespace")


def apply_sysctls(sysctl: dict | None) -> None:
    """In the init, after pivot_root: write each value under /proc/sys."""
    for key, value in (sysctl or {}).items():
        path = "/proc/sys/" + key_path(key)
        try:
            with open(path, "w") as f:
                f.write(str(value))
        except OSError as e:
            raise SecurityError(f"cannot set sysctl {key} to {value!r}: {path}: {os_reason(e)}") from None
