"""Container cgroups on v1 (with the hybrid unified mount) and v2. Importing this reads nothing.

    m = manager_for(config, container_id)   # placement decided here; m.create() makes it real
    m.join(0)                                # stage-1 of the init joins on every hierarchy
    m = from_state(state["cgroup"])          # hot path: no I/O
    pause/resume: m.freeze() / m.thaw(); state: m.is_frozen(); ps: m.pids(); kill --all: m.signal_all(sig)
    update: m.update(resources); events --stats: m.stats(); OOM: w = m.oom_watcher(); w.wait(timeout)
    delete: m.destroy() removes only the directories pyrunc created
"""

from __future__ import annotations

import os

from pyrunc.errors import CgroupError

TYPE_CHECKING = False  # importing typing costs milliseconds; the name serves annotations only
if TYPE_CHECKING:
    from pyrunc.cgroups.manager import Manager


def manager_for(config: dict, container_id: str, *, systemd: bool = False, rootless: bool = False) -> Manager:
    """The manager for a new container: mode and hierarchies probed once, paths resolved (nothing created)."""
    from pyrunc.cgroups import paths

    linux = config.get("linux") or {}
    if systemd:
        if not os.path.isdir("/run/systemd/system"):
            raise CgroupError("systemd cgroup driver requested but systemd is not running (no /run/systemd/system)")
        from pyrunc.cgroups.systemd import systemd_manager

        return systemd_manager(config, container_id, rootless)
    inner = paths.inner_path(linux.get("cgroupsPath"), container_id)
    if not inner or inner == "/":
        raise CgroupError(f"linux.cgroupsPath: {linux.get('cgroupsPath')!r} names the root cgroup")
    own = paths.parse_proc_cgroup(paths.read_text("/proc/self/cgroup"))
    if paths.is_pure_v2():
        from pyrunc.cgroups.v2 import V2Manager

        root = paths.Mount(paths.CGROUP_ROOT, "/")
        manager: Manager = V2Manager(paths.hierarchy_dir(root, own.get(""), inner, parent_of_own=True))
    else:
        from pyrunc.cgroups.v1 import V1Manager

        v1_mounts, v2_mount = paths.parse_mountinfo(paths.read_text("/proc/self/mountinfo"))
        dirs = {name: paths.hierarchy_dir(mount, own.get(name), inner) for name, mount in v1_mounts.items()}
        unified = paths.hierarchy_dir(v2_mount, own.get(""), inner) if v2_mount else None
        manager = V1Manager(dirs, unified)
    manager.rootless = rootless
    return manager.configure(config)


def from_state(state: dict) -> Manager:
    """Rebuild the manager recorded by Manager.to_state() without reading config.json or probing the host."""
    if state.get("systemd"):
        from pyrunc.cgroups.systemd import from_state as systemd_from_state

        return systemd_from_state(state)
    if state.get("version") == 2:
        from pyrunc.cgroups.v2 import V2Manager

        return V2Manager(state["path"], state["root"], state.get("created"), state.get("devices"))
    from pyrunc.cgroups.v1 import V1Manager

    return V1Manager(state.get("paths") or {}, state.get("unified"), state.get("created"), state.get("devices"))
