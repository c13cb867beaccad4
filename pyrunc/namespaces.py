"""Which namespaces a container creates and which it joins, and entering them in the right order.

The user namespace comes first (joined or created), because it owns every namespace created after it;
pid and time namespaces only apply to children, so the init is forked after entering them.
"""

from __future__ import annotations

import os

from . import syscalls
from .errors import ConfigError

CLONE_FLAGS = {
    "pid": syscalls.CLONE_NEWPID,
    "network": syscalls.CLONE_NEWNET,
    "mount": syscalls.CLONE_NEWNS,
    "ipc": syscalls.CLONE_NEWIPC,
    "uts": syscalls.CLONE_NEWUTS,
    "user": syscalls.CLONE_NEWUSER,
    "cgroup": syscalls.CLONE_NEWCGROUP,
    "time": syscalls.CLONE_NEWTIME,
}

#: /proc/PID/ns/<name> for each spec namespace type.
PROC_NAMES = {"pid": "pid", "network": "net", "mount": "mnt", "ipc": "ipc", "uts": "uts", "user": "user",
              "cgroup": "cgroup", "time": "time"}


class NamespacePlan:
    """The namespaces of `linux.namespaces`: types to create, and descriptors of those to join."""

    def __init__(self, namespaces: list[dict]) -> None:
        self.new: set[str] = set()
        self.join: dict[str, int] = {}
        #: CLONE_NEW* flags of the namespaces the process was born in (process/clone.py): not to unshare again
        self.born_in = 0
        #: type → (path, index in linux.namespaces) of the namespaces to join
        self._paths: dict[str, tuple[str, int]] = {}
        for index, ns in enumerate(namespaces):
            kind = ns["type"]
            if ns.get("path"):
                self._paths[kind] = (ns["path"], index)
            else:
                self.new.add(kind)

    def has(self, kind: str) -> bool:
        return kind in self.new or kind in self._paths

    def open_joined(self) -> None:
        """Open the namespaces to join, in the runtime's mount namespace, before anything is entered."""
        for kind, (path, index) in self._paths.items():
            try:
                self.join[kind] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as err:
                self.close()
                raise ConfigError(f"config.json: linux.namespaces[{index}].path: {path}: {err.strerror}") from None

    def close(self) -> None:
        for fd in self.join.values():
            os.close(fd)
        self.join = {}

    @property
    def needs_fork(self) -> bool:
        """pid and time namespaces apply to children only: the init must be a child of the entering process
        (unless it was born in them)."""
        return any(self.has(kind) for kind in ("pid", "time")) and not self.born_in & syscalls.CLONE_NEWPID

    def clone_flags(self) -> int:
        """The flags to create the namespaces at the fork of stage-1, which is then the init: only when all
        are new and there is a pid namespace (else no fork is saved), no user namespace (its id maps must be
        written before the others are made) and no time namespace (its offsets must be set before any
        process is in it). 0 otherwise: stage-1 enters them one by one, then forks the init.
        A cgroup namespace is left to stage-1 in any case: its root is the cgroup of its creator, so it
        must be made once stage-1 has joined the container's cgroups."""
        if self._paths or "pid" not in self.new or {"user", "time"} & self.new:
            return 0
        flags = 0
        for kind in self.new - {"cgroup"}:
            flags |= CLONE_FLAGS[kind]
        return flags

    def enter_user(self) -> bool:
        """Join or create the user namespace; True when a new one was created (it then needs id maps)."""
        if "user" in self.join:
            syscalls.setns(self.join["user"], syscalls.CLONE_NEWUSER, "user namespace")
        elif "user" in self.new:
            syscalls.unshare(syscalls.CLONE_NEWUSER)
            return True
        return False

    def enter_others(self) -> None:
        """Join the namespaces given by path, then create the new ones (all but user)."""
        for kind, fd in self.join.items():
            if kind != "user":
                syscalls.setns(fd, CLONE_FLAGS[kind], f"{kind} namespace {self._paths[kind][0]}")
        flags = 0
        for kind in self.new - {"user"}:
            flags |= CLONE_FLAGS[kind]
        flags &= ~self.born_in
        if flags:
            syscalls.unshare(flags)
