"""cgroup v2 (the unified hierarchy mounted at /sys/fs/cgroup)."""

from __future__ import annotations

import _signal
import os
import select
import time

from pyrunc.cgroups import fs
from pyrunc.cgroups.manager import Manager, below, check_usage
from pyrunc.errors import CgroupError

FREEZE_TIMEOUT = 5.0


class V2Manager(Manager):
    """`path` is the container's cgroup; `root` the cgroup2 mount point it lives under."""

    version = 2

    def __init__(self, path: str, root: str = "/sys/fs/cgroup", created: list[str] | None = None,
                 device_extras: list | None = None) -> None:
        super().__init__(created, device_extras)
        self.path = path
        self.root = root

    def dirs(self) -> list[str]:
        return [self.path] if self.path else []

    def main_dir(self) -> str | None:
        return self.path or None

    def v2_dir(self) -> str | None:
        return self.path or None

    def sub_cgroups(self, subs: dict[str, str]) -> V2Manager:
        """`exec --cgroup`: a manager of an existing sub-cgroup (one path, no <controller>: prefix on v2)."""
        if set(subs) != {""}:
            raise CgroupError("exec --cgroup: cgroup v2 takes one path without a <controller>: prefix")
        return V2Manager(below(self.path, subs[""]), self.root)

    def _disable(self) -> None:
        self.path = ""

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    def _make_dirs(self) -> None:
        self.created += fs.mkdirs(self.path)
        # Hand every available controller down from the root to the container's cgroup.
        ancestor = self.path
        chain = []
        while ancestor != self.root and ancestor.startswith(self.root + "/"):
            ancestor = os.path.dirname(ancestor)
            chain.append(ancestor)
        for directory in reversed(chain):
            _enable_controllers(directory)

    def _apply(self, resources: dict, updating: bool) -> None:
        from pyrunc.cgroups.resources import plan_v2

        memory = dict(resources.get("memory") or {})
        if updating and memory.get("limit") and memory.get("checkBeforeUpdate"):
            check_usage(memory["limit"], fs.read(self._file("memory.current")))
        if updating and memory.get("swap") and not memory.get("limit"):
            # v2 stores swap alone: converting the spec's memory+swap needs the limit in force
            current = fs.read(self._file("memory.max"))
            memory["limit"] = -1 if current == "max" else int(current)
            resources = {**resources, "memory": memory}
        writes = plan_v2(resources)  # planned (validated) in full before any write
        self._check_unified(resources.get("unified") or {})
        for write in writes:
            fs.write(*write.target(self.path))

    def _check_unified(self, unified: dict) -> None:
        """A `unified` key must belong to a controller enabled for the cgroup (cgroup.* files always are)."""
        enabled: set[str] | None = None
        for key in unified:
            controller = key.split(".", 1)[0]
            if controller == "cgroup":
                continue
            if enabled is None:
                enabled = set(fs.read(self._file("cgroup.controllers")).split())
            if controller not in enabled:
                raise CgroupError(f"linux.resources.unified.{key}: the {controller} controller is not enabled "
                                  f"for {self.path}")

    def _apply_devices(self, rules: list) -> None:
        from pyrunc.cgroups import bpf
        from pyrunc.cgroups.devices import effective

        bpf.install(self.path, *effective(rules))

    # -- freezer --------------------------------------------------------------------------------------
    def has_freezer(self) -> bool:
        return True

    def is_frozen(self) -> bool:
        return fs.read_optional(self._file("cgroup.freeze")) == "1"

    def freeze(self) -> None:
        self._set_frozen(True)

    def thaw(self) -> None:
        self._set_frozen(False)

    def _set_frozen(self, frozen: bool) -> None:
        """Write cgroup.freeze and wait until cgroup.events reports the state (kernfs wakes poll on change)."""
        fs.write(self._file("cgroup.freeze"), "1" if frozen else "0")
        events = self._file("cgroup.events")
        want = f"frozen {int(frozen)}"
        deadline = time.monotonic() + FREEZE_TIMEOUT
        with open(events, "rb", buffering=0) as f:
            poller = select.poll()
            poller.register(f, select.POLLPRI | select.POLLERR)
            while True:
                f.seek(0)
                if want in f.read().decode().splitlines():
                    return
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if frozen:
                        fs.write(self._file("cgroup.freeze"), "0")
                    raise CgroupError(f"{events}: the cgroup did not report '{want}' in {FREEZE_TIMEOUT:g}s")
                poller.poll(min(remaining, 0.1) * 1000)

    def signal_all(self, sig: int) -> None:
        """SIGKILL goes through cgroup.kill where the kernel has it (5.14+): atomic, no freezing needed."""
        if sig == _signal.SIGKILL and os.path.exists(self._file("cgroup.kill")):
            fs.write(self._file("cgroup.kill"), "1")
            return
        super().signal_all(sig)

    # -- stats and events -----------------------------------------------------------------------------
    def stats(self) -> dict:
        from pyrunc.cgroups.stats import v2_stats

        return v2_stats(self.path)

    def oom_watcher(self):
        """An object with fileno() and wait(timeout) -> bool (True once per OOM kill); see cgroups.oom."""
        from pyrunc.cgroups.oom import V2OomWatcher

        return V2OomWatcher(self.path)

    def to_state(self) -> dict:
        state = super().to_state()
        state["path"] = self.path
        state["root"] = self.root
        return state


def _enable_controllers(directory: str) -> None:
    """Write +controller for each controller the directory has into its cgroup.subtree_control.

    All at once first; if the kernel refuses (one controller unavailable, e.g. threaded cpuset), one by
    one, keeping what works, like runc.
    """
    available = fs.read(os.path.join(directory, "cgroup.controllers")).split()
    subtree = os.path.join(directory, "cgroup.subtree_control")
    enabled = set(fs.read(subtree).split())
    wanted = [c for c in available if c not in enabled]
    if not wanted:
        return
    try:
        fs.write(subtree, " ".join(f"+{c}" for c in wanted))
    except CgroupError:
        for controller in wanted:
            try:
                fs.write(subtree, f"+{controller}")
            except CgroupError:
                continue
