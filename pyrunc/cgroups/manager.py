"""What the v1 and v2 managers share: creation with rollback, removal, process listing, signalling."""

from __future__ import annotations

import errno
import os

from pyrunc.cgroups import fs
from pyrunc.errors import CgroupError

DESTROY_BUSY_WAIT = 1.0  # seconds the container's cgroup may stay busy while its last tasks exit


class Manager:
    """One container's cgroup(s). `created` lists the directories pyrunc made (outermost first): only
    those are removed; a pre-existing cgroup (e.g. a pod's, shared) is joined and left in place."""

    version = 0

    def __init__(self, created: list[str] | None = None, device_extras: list | None = None) -> None:
        self.created = list(created or [])
        self.device_extras = [tuple(d) for d in device_extras or []]  # (type, major, minor) of linux.devices
        self.resources: dict = {}
        self.device_rules: list = []
        self.rootless = False
        self.born_in_v2 = False  # this process was born in v2_dir() (process/clone.py)

    # -- subclass hooks -------------------------------------------------------------------------------
    def dirs(self) -> list[str]:
        """Every distinct cgroup directory of the container (one per hierarchy)."""
        raise NotImplementedError

    def main_dir(self) -> str | None:
        """The directory whose cgroup.procs lists the container's processes."""
        raise NotImplementedError

    def _make_dirs(self) -> None:
        raise NotImplementedError

    def _apply(self, resources: dict, updating: bool) -> None:
        raise NotImplementedError

    def _apply_devices(self, rules: list) -> None:
        raise NotImplementedError

    def _disable(self) -> None:
        """Forget every hierarchy: the manager then joins, lists and removes nothing."""
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------------------------
    def configure(self, config: dict) -> Manager:
        """Take the resources and device rules of a config (for create)."""
        from pyrunc.cgroups.devices import container_rules, linux_device_rules

        self.resources = (config.get("linux") or {}).get("resources") or {}
        self.device_rules = container_rules(config)
        self.device_extras = [(r.type, r.major, r.minor) for r in linux_device_rules(config)]
        return self

    def create(self) -> None:
        """mkdir the cgroup(s), apply the resources and device rules; on failure remove what was made."""
        try:
            self._make_dirs()
            self._apply(self.resources, updating=False)
            self.apply_devices()
        except BaseException as e:
            fs.remove_dirs(self.created)
            self.created = []
            if isinstance(e, CgroupError) and self.rootless and not self.resources:
                self._disable()  # like runc: a rootless container without limits runs without cgroups
                return
            raise

    def apply_devices(self) -> None:
        if self.device_rules and not self.rootless:
            self._apply_devices(self.device_rules)

    def v2_dir(self) -> str | None:
        """The container's directory in a cgroup v2 hierarchy (pure v2, or the hybrid unified mount)."""
        raise NotImplementedError

    def sub_cgroups(self, subs: dict[str, str]) -> Manager:
        """`exec --cgroup`: a manager of existing sub-cgroups of this one (for joining only)."""
        raise NotImplementedError

    def join(self, pid: int) -> None:
        """Move a process (0: the caller) into the cgroup on every hierarchy."""
        placed = self.v2_dir() if pid == 0 and self.born_in_v2 else None
        for directory in self.dirs():
            if directory != placed:
                fs.write(os.path.join(directory, "cgroup.procs"), str(pid))

    def update(self, resources: dict) -> None:
        """`runc update`: apply the given resources (only the fields present); devices if given."""
        self._apply(resources, updating=True)
        if "devices" in resources:
            from pyrunc.cgroups.devices import Rule, container_rules

            extra = [Rule(True, t, major, minor, "rwm") for t, major, minor in self.device_extras]
            self._apply_devices(container_rules({"linux": {"resources": {"devices": resources["devices"]}}}, extra))

    def destroy(self) -> None:
        """rmdir the directories pyrunc created, deepest first; kill nothing."""
        leaves = frozenset(self.dirs())
        left = fs.remove_dirs(self.created, leaves, DESTROY_BUSY_WAIT)
        busy = [d for d in left if d in leaves]
        self.created = [d for d in self.created if d in left]
        if busy:
            raise CgroupError(f"rmdir {busy[0]}: the cgroup still has processes")

    # -- processes ------------------------------------------------------------------------------------
    def pids(self) -> list[int]:
        """Every pid in the cgroup and its descendants."""
        top = self.main_dir()
        if top is None:
            return []
        found: list[int] = []
        for directory, _, _ in os.walk(top):
            text = fs.read_optional(os.path.join(directory, "cgroup.procs"))
            found += [int(line) for line in (text or "").split()]
        return found

    def signal_all(self, sig: int) -> None:
        """Signal every process of the cgroup, frozen meanwhile so that none can fork away unseen."""
        frozen_before = self.is_frozen()
        can_freeze = self.has_freezer()
        if can_freeze and not frozen_before:
            self.freeze()
        try:
            for pid in self.pids():
                try:
                    os.kill(pid, sig)
                except OSError as e:
                    if e.errno != errno.ESRCH:
                        raise CgroupError(f"kill {pid} (signal {sig}): {e.strerror}") from None
        finally:
            if can_freeze and not frozen_before:
                self.thaw()

    def has_freezer(self) -> bool:
        raise NotImplementedError

    def is_frozen(self) -> bool:
        raise NotImplementedError

    def freeze(self) -> None:
        raise NotImplementedError

    def thaw(self) -> None:
        raise NotImplementedError

    def to_state(self) -> dict:
        state: dict = {"version": self.version, "created": self.created}
        if self.device_extras:
            state["devices"] = [list(d) for d in self.device_extras]
        return state


def below(directory: str, sub: str | None) -> str:
    """`exec --cgroup`: the existing sub-cgroup `sub` of `directory` (relative, even with a leading "/")."""
    if not sub:
        return directory
    path = os.path.normpath(os.path.join(directory, sub.lstrip("/")))
    if path != directory and not path.startswith(directory + "/"):
        raise CgroupError(f"exec --cgroup: {sub}: not below the container's cgroup {directory}")
    if not os.path.isdir(path):
        raise CgroupError(f"exec --cgroup: {sub}: no such sub-cgroup ({path})")
    return path


def check_usage(limit: int, usage_text: str) -> None:
    """checkBeforeUpdate: refuse a memory limit below what the container already uses."""
    usage = fs.parse_uint(usage_text)
    if 0 < limit < usage:
        raise CgroupError(f"linux.resources.memory.limit: {limit} is below the current usage {usage} "
                          "(checkBeforeUpdate)")
