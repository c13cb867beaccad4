"""`cgroup`/`cgroup2` mounts that show the container its own cgroup.

On a v1 (or hybrid) host, as runc: a tmpfs at the destination with one directory per v1 hierarchy,
each a bind of the container's cgroup in that hierarchy (or, with a cgroup namespace, that hierarchy
mounted afresh, whose root then is the container's cgroup). On a unified v2 host, or for `cgroup2`,
a cgroup2 mount, falling back to a bind of the container's cgroup where mounting is not allowed.
The init has already joined the container's cgroups, so /proc/self/cgroup names them.
"""

from __future__ import annotations

import os

from .. import syscalls as s
from ..cgroups.paths import unescape_mountinfo
from ..inroot import Root, fd_path
from . import detached
from .options import MountOptions

TYPE_CHECKING = False  # importing typing costs milliseconds; the name serves annotations only
if TYPE_CHECKING:
    from .mounts import MountContext

UNIFIED_MARKER = "/sys/fs/cgroup/cgroup.controllers"
_TMPFS_FLAGS = s.MS_NOSUID | s.MS_NODEV | s.MS_NOEXEC


class Hierarchy:
    """A cgroup hierarchy mounted on the host (as seen in /proc/self/mountinfo)."""

    __slots__ = ("controllers", "fstype", "mountpoint", "root", "super_options")

    def __init__(self, mountpoint: str, root: str, fstype: str, controllers: frozenset[str],
                 super_options: str = "") -> None:
        self.mountpoint = mountpoint
        self.root = root
        self.fstype = fstype
        self.controllers = controllers
        #: the superblock's options ("rw,nsdelegate,memory_recursiveprot" for a cgroup2)
        self.super_options = super_options

    @property
    def name(self) -> str:
        return os.path.basename(self.mountpoint)


def own_cgroups() -> dict[frozenset[str], str]:
    """Controllers of each hierarchy → this process's cgroup path in it (v2: the empty set)."""
    result = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            result[frozenset(c for c in controllers.split(",") if c)] = path
    return result


def hierarchies(known: set[str], outside: str) -> list[Hierarchy]:
    """The cgroup mounts of this mount namespace not under `outside` (the rootfs, where a bound /sys
    may have brought copies), one per hierarchy; `known` are controller names (to sift super options)."""
    found: dict[tuple[str, frozenset[str]], Hierarchy] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            dash = fields.index("-")
            fstype = fields[dash + 1]
            if fstype not in ("cgroup", "cgroup2"):
                continue
            super_options = fields[dash + 3]
            controllers = frozenset(set(super_options.split(",")) & known) if fstype == "cgroup" else frozenset()
            mountpoint = unescape_mountinfo(fields[4])
            if mountpoint == outside or mountpoint.startswith(outside.rstrip("/") + "/"):
                continue
            found.setdefault((fstype, controllers),
                             Hierarchy(mountpoint, unescape_mountinfo(fields[3]), fstype, controllers, super_options))
    return list(found.values())


def _host_dir(hierarchy: Hierarchy, own_path: str) -> str:
    relative = os.path.relpath(own_path, hierarchy.root)
    return hierarchy.mountpoint if relative.startswith("..") else os.path.normpath(
        os.path.join(hierarchy.mountpoint, relative))


def mount_cgroup(root: Root, mount: dict, options: MountOptions, ctx: MountContext) -> None:
    if mount.get("type") == "cgroup2" or os.path.exists(UNIFIED_MARKER):
        _mount_v2(root, mount, options, ctx)
    else:
        _mount_v1(root, mount, options, ctx)


def _mount_v2(root: Root, mount: dict, options: MountOptions, ctx: MountContext) -> None:
    """A cgroup2 mount of the container's own cgroup.

    cgroup2 has one superblock for the whole machine: a new mount reconfigures it with the options it
    names (dropping the host's nsdelegate or memory_recursiveprot). So without a cgroup namespace the
    container's own cgroup is bound from the host's hierarchy, and with one the new mount repeats the
    host's superblock options.
    """
    unified = next((h for h in hierarchies(set(), root.real_path) if h.fstype == "cgroup2"), None)
    dest = root.make_dirs(mount["destination"])
    try:
        if unified is not None and not ctx.cgroupns:
            _bind_dir(_host_dir(unified, own_cgroups().get(frozenset(), "/")), dest, options)
        else:
            host_options = [o for o in (unified.super_options.split(",") if unified else ()) if o not in ("rw", "ro")]
            data = ",".join([*host_options, *([options.data_string] if options.data_string else [])]) or None
            s.mount("cgroup2", fd_path(dest), "cgroup2", options.flags, data)
    finally:
        os.close(dest)
    with root.opened(mount["destination"]) as new:
        detached.finish(new, options)


def _mount_v1(root: Root, mount: dict, options: MountOptions, ctx: MountContext) -> None:
    destination = mount["destination"]
    own = own_cgroups()
    known = set().union(*own)
    dest = root.make_dirs(destination)
    try:
        s.mount("tmpfs", fd_path(dest), "tmpfs", _TMPFS_FLAGS, "mode=755")
    finally:
        os.close(dest)
    for hierarchy in hierarchies(known, root.real_path):
        if hierarchy.fstype != "cgroup" or hierarchy.controllers not in own:
            continue
        sub = root.make_dirs(f"{destination}/{hierarchy.name}")
        try:
            if ctx.cgroupns:
                s.mount("cgroup", fd_path(sub), "cgroup", options.flags & ~s.MS_BIND,
                        ",".join(sorted(hierarchy.controllers)))
            else:
                _bind_dir(_host_dir(hierarchy, own[hierarchy.controllers]), sub, options)
        finally:
            os.close(sub)
        _link_comounted(root, destination, hierarchy.name)
    with root.opened(destination) as tmpfs:
        if options.flags & s.MS_RDONLY:
            detached.set_attributes(tmpfs, 0, s.MOUNT_ATTR_RDONLY, recursive=False)
        detached.finish(tmpfs, options)


def _bind_dir(host_dir: str, dest: int, options: MountOptions) -> None:
    source = os.open(host_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        clear, set_ = options.bind_attributes()
        os.close(detached.bind(source, dest, clear=clear, set_=set_))
    finally:
        os.close(source)


def _link_comounted(root: Root, destination: str, name: str) -> None:
    """`cpu,cpuacct` gets the symlinks `cpu` and `cpuacct`, as on the host."""
    if "," not in name:
        return
    with root.opened(destination) as parent:
        for controller in name.split(","):
            try:
                os.symlink(name, controller, dir_fd=parent)
            except FileExistsError:
                pass
