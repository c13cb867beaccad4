"""cgroup v1 (and the hybrid layout: v1 controllers plus a cgroup2 mount at /sys/fs/cgroup/unified)."""

from __future__ import annotations

import os
import time

from pyrunc.cgroups import fs
from pyrunc.cgroups.manager import Manager, below, check_usage
from pyrunc.errors import CgroupError

FREEZE_TIMEOUT = 5.0
PROCS_PREFERENCE = ("pids", "freezer", "devices", "memory", "cpu", "cpuacct", "name=systemd")


class V1Manager(Manager):
    """`paths` maps each controller (co-mounted ones share a directory) to the container's directory;
    `unified` is its directory in the hybrid cgroup2 hierarchy, if the host has one."""

    version = 1

    def __init__(self, paths: dict[str, str], unified: str | None = None, created: list[str] | None = None,
                 device_extras: list | None = None) -> None:
        super().__init__(created, device_extras)
        self.paths = paths
        self.unified = unified

    def dirs(self) -> list[str]:
        distinct = dict.fromkeys(self.paths.values())
        if self.unified:
            distinct[self.unified] = None
        return list(distinct)

    def main_dir(self) -> str | None:
        for controller in PROCS_PREFERENCE:
            if controller in self.paths:
                return self.paths[controller]
        return next(iter(self.dirs()), None)

    def _make_dirs(self) -> None:
        cpuset = self.paths.get("cpuset")
        for directory in self.dirs():
            self.created += fs.mkdirs(directory)
            if directory == cpuset:
                _inherit_cpuset(directory)

    def join(self, pid: int) -> None:
        """Move a process (0: the caller, which must be single-threaded) into the cgroup on every hierarchy.

        The caller moves itself through each v1 hierarchy's `tasks` file: migrating the current thread
        alone skips the kernel's global threadgroup lock, whose write side waits for an RCU grace period
        (5-20 ms on this kind of host) on every `cgroup.procs` write. A single-threaded caller is the
        whole process, so the result is the same."""
        if pid:
            super().join(pid)
            return
        for directory in dict.fromkeys(self.paths.values()):
            fs.write(os.path.join(directory, "tasks"), "0")
        if self.unified and not self.born_in_v2:
            fs.write(os.path.join(self.unified, "cgroup.procs"), "0")

    def v2_dir(self) -> str | None:
        return self.unified

    def sub_cgroups(self, subs: dict[str, str]) -> V1Manager:
        """`exec --cgroup`: a manager of existing sub-cgroups, by controller ("" for all, and the unified)."""
        paths = {c: below(d, subs.get(c, subs.get(""))) for c, d in self.paths.items()}
        unknown = sorted(set(subs) - set(paths) - {""})
        if unknown:
            raise CgroupError(f"exec --cgroup: no {unknown[0]} controller in the container's cgroups")
        return V1Manager(paths, below(self.unified, subs.get("")) if self.unified else None)

    def _disable(self) -> None:
        self.paths, self.unified = {}, None

    def _check_hierarchies(self, writes: list) -> None:
        """Every write has its hierarchy (checked before writing anything)."""
        for write in writes:
            if write.controller == "unified" and not self.unified:
                raise CgroupError(f"linux.resources.unified.{write.file}: this host has no cgroup v2 hierarchy")
            if write.controller != "unified" and write.controller not in self.paths:
                raise CgroupError(f"{write.file}: the {write.controller} controller is not mounted on this host")

    def _apply(self, resources: dict, updating: bool) -> None:
        from pyrunc.cgroups.resources import plan_v1

        memory = resources.get("memory") or {}
        current_limit = None
        if memory.get("limit") and memory.get("swap") and "memory" in self.paths:
            current_limit = fs.parse_uint(fs.read(self._file("memory", "memory.limit_in_bytes")))
        if updating and memory.get("limit") and memory.get("checkBeforeUpdate") and "memory" in self.paths:
            check_usage(memory["limit"], fs.read(self._file("memory", "memory.usage_in_bytes")))
        writes = plan_v1(resources, current_limit)  # planned (validated) in full before any write
        self._check_hierarchies(writes)
        for write in writes:
            fs.write(*write.target(self.unified if write.controller == "unified" else self.paths[write.controller]))

    def _file(self, controller: str, file: str) -> str:
        return os.path.join(self.paths[controller], file)

    def _apply_devices(self, rules: list) -> None:
        from pyrunc.cgroups.devices import effective

        if "devices" not in self.paths:
            raise CgroupError("devices.allow: the devices controller is not mounted on this host")
        default_allow, rest = effective(rules)
        fs.write(self._file("devices", "devices.allow" if default_allow else "devices.deny"), "a")
        for rule in rest:
            fs.write(self._file("devices", "devices.allow" if rule.allow else "devices.deny"), rule.v1_line())

    # -- freezer --------------------------------------------------------------------------------------
    def has_freezer(self) -> bool:
        return "freezer" in self.paths

    def is_frozen(self) -> bool:
        if "freezer" not in self.paths:
            return False
        return fs.read_optional(self._file("freezer", "freezer.state")) == "FROZEN"

    def freeze(self) -> None:
        """Write FROZEN and wait until the kernel reports FROZEN (FREEZING may need a nudge: write again)."""
        state_file = self._freezer_state()
        deadline = time.monotonic() + FREEZE_TIMEOUT
        delay = 0.0005
        while True:
            fs.write(state_file, "FROZEN")
            if fs.read(state_file) == "FROZEN":
                return
            if time.monotonic() > deadline:
                fs.write(state_file, "THAWED")
                raise CgroupError(f"{state_file}: the cgroup did not reach FROZEN in {FREEZE_TIMEOUT:g}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def thaw(self) -> None:
        fs.write(self._freezer_state(), "THAWED")

    def _freezer_state(self) -> str:
        if "freezer" not in self.paths:
            raise CgroupError("freezer.state: the freezer controller is not mounted on this host")
        return self._file("freezer", "freezer.state")

    # -- stats and events -----------------------------------------------------------------------------
    def stats(self) -> dict:
        from pyrunc.cgroups.stats import v1_stats

        return v1_stats(self.paths)

    def oom_watcher(self):
        """An object with fileno() and wait(timeout) -> bool (True once per OOM); see cgroups.oom."""
        from pyrunc.cgroups.oom import V1OomWatcher

        if "memory" not in self.paths:
            raise CgroupError("memory.oom_control: the memory controller is not mounted on this host")
        return V1OomWatcher(self.paths["memory"])

    def to_state(self) -> dict:
        state = super().to_state()
        state["paths"] = self.paths
        if self.unified:
            state["unified"] = self.unified
        return state


def _inherit_cpuset(directory: str) -> None:
    """A new v1 cpuset cgroup starts with no CPUs and no memory nodes: give it its parent's, filling the
    ancestors first. An ancestor may be empty too: another create (concurrent) may have just made it."""
    for file in ("cpuset.cpus", "cpuset.mems"):
        path = os.path.join(directory, file)
        if fs.read(path):
            continue
        parent = os.path.join(os.path.dirname(directory), file)
        inherited = fs.read_optional(parent)
        if inherited == "":
            _inherit_cpuset(os.path.dirname(directory))
            inherited = fs.read(parent)
        if inherited:
            fs.write(path, inherited)

