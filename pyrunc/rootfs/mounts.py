"""Mounting each `mounts[]` entry inside the rootfs, in order, before the pivot.

Binds are clones of the source (open_tree) given their attributes while detached, then attached onto
the destination's descriptor. Other filesystems are mounted with mount(2) on `/proc/self/fd/N` of the
destination (the host's /proc: the container's own is not reachable yet). Recursive `r*` attributes
and propagation words are applied afterwards to the new mount.
"""

from __future__ import annotations

import errno
import os
import stat

from .. import syscalls as s
from ..errors import RootfsError
from ..inroot import Root, fd_path
from . import cgroupfs, detached, idmap
from .options import MountOptions, parse


class MountContext:
    """What a mount needs to know about the container beyond the entry itself."""

    __slots__ = ("bundle", "cgroupns", "gid_mappings", "in_userns", "new_netns", "uid_mappings")

    def __init__(self, bundle: str, in_userns: bool, new_netns: bool, cgroupns: bool,
                 uid_mappings: tuple[dict, ...] = (), gid_mappings: tuple[dict, ...] = ()) -> None:
        self.bundle = bundle
        self.in_userns = in_userns
        self.new_netns = new_netns
        self.cgroupns = cgroupns
        #: the container's uid/gid maps, for `idmap` options without mappings of their own
        self.uid_mappings = uid_mappings
        self.gid_mappings = gid_mappings

    @classmethod
    def from_config(cls, config: dict, bundle: str, in_userns: bool) -> MountContext:
        linux = config.get("linux") or {}
        namespaces = {ns.get("type"): ns for ns in linux.get("namespaces") or ()}
        network = namespaces.get("network")
        return cls(
            bundle=bundle,
            in_userns=in_userns,
            new_netns=network is not None and not network.get("path"),
            cgroupns="cgroup" in namespaces,
            uid_mappings=tuple(linux.get("uidMappings") or ()),
            gid_mappings=tuple(linux.get("gidMappings") or ()),
        )


def defers_readonly(mount: dict) -> bool:
    """tmpfs and /dev mounts are made writable and turned read-only after the pivot (as runc), so that
    devices and mount points can still be created in them."""
    return mount.get("type") == "tmpfs" or os.path.normpath(mount.get("destination", "")) == "/dev"


def bind_source(mount: dict, bundle: str) -> str:
    source = mount.get("source") or ""
    return source if os.path.isabs(source) else os.path.join(bundle, source)


def mount_all(root: Root, config: dict, ctx: MountContext, prepared: dict[int, int]) -> None:
    """Mount every entry in order; `prepared` holds bind clones made beforehand (open_idmapped_mounts),
    which are consumed (closed) like the rest."""
    try:
        for index, mount in enumerate(config.get("mounts") or ()):
            with _MountErrors(index, mount):
                mount_entry(root, mount, ctx, prepared.pop(index, None))
    finally:
        for fd in prepared.values():
            os.close(fd)


class _MountErrors:
    """Turn any failure into one RootfsError line naming mounts[index] and its destination."""

    def __init__(self, index: int, mount: dict) -> None:
        self.where = f"mounts[{index}] ({mount.get('destination')})"
        self.mount = mount

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, err: BaseException | None, _tb: object) -> None:
        if isinstance(err, OSError):
            raise RootfsError(f"{self.where}: {_describe(err, self.mount)}") from None
        if isinstance(err, RootfsError):
            raise RootfsError(f"{self.where}: {err}") from None


def _describe(err: OSError, mount: dict) -> str:
    if err.errno == errno.ENODEV:  # from mount(2): no such filesystem type
        return f"unknown filesystem type {mount.get('type')!r}"
    return f"mounting {mount.get('type') or 'bind'} from {mount.get('source')} failed: {os.strerror(err.errno)}"


def mount_entry(root: Root, mount: dict, ctx: MountContext, tree: int | None = None) -> None:
    kind = mount.get("type")
    options = parse(mount.get("options"), kind)
    if options.is_bind:
        _mount_bind(root, mount, options, bind_source(mount, ctx.bundle), ctx, tree)
    elif kind == "sysfs" and ctx.in_userns and not ctx.new_netns:
        _bind_host_sys(root, mount, options, ctx)
    elif kind in ("cgroup", "cgroup2"):
        cgroupfs.mount_cgroup(root, mount, options, ctx)
    else:
        try:
            new_mount(root, mount, options)
        except PermissionError:
            if kind != "sysfs" or not ctx.in_userns:
                raise
            _bind_host_sys(root, mount, options, ctx)


def _bind_host_sys(root: Root, mount: dict, options: MountOptions, ctx: MountContext) -> None:
    """sysfs cannot be mounted without owning the network namespace: show the host's, as runc does."""
    options.flags |= s.MS_BIND | s.MS_REC
    _mount_bind(root, mount, options, "/sys", ctx)


def new_mount(root: Root, mount: dict, options: MountOptions) -> None:
    """mount(2) of a filesystem (not a bind) on the destination, then its recursive attributes."""
    destination = mount["destination"]
    kind = mount.get("type")
    if kind in ("proc", "sysfs") and root.is_symlink(destination):
        # a /proc elsewhere would escape maskedPaths and readonlyPaths
        raise RootfsError(f"{kind} must be mounted on an ordinary directory, not a symlink")
    flags = options.flags & ~s.MS_RDONLY if defers_readonly(mount) else options.flags
    dest = root.make_dirs(destination)
    original = None  # tmpcopyup: a clone of the directory, to read what the new mount covers
    try:
        refuse_inside_proc(root, dest, kind)
        if options.tmpcopyup:
            original = detached.clone_tree(dest, recursive=False)
        s.mount(mount.get("source") or kind, fd_path(dest), kind, flags, options.data_string)
        with root.opened(destination) as new:
            if original is not None:
                _copy_tree(fd_path(original), fd_path(new))
            detached.finish(new, options)
    finally:
        os.close(dest)
        if original is not None:
            os.close(original)


def _copy_tree(source: str, target: str) -> None:
    """`tmpcopyup`: what the destination held before the tmpfs covered it, with modes and owners."""
    import shutil

    shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
    shutil.copystat(source, target)
    for directory, dirs, files in os.walk(source):
        for name in ["", *dirs, *files]:
            path = os.path.join(directory, name) if name else directory
            info = os.lstat(path)
            os.lchown(os.path.join(target, os.path.relpath(path, source)), info.st_uid, info.st_gid)


#: the only files under /proc something may be mounted over (what LXCFS emulates), as runc allows
PROC_FILES_ALLOWED = frozenset({
    "cpuinfo", "diskstats", "meminfo", "stat", "swaps", "uptime", "loadavg", "slabinfo", "net/dev",
    "sys/kernel/ns_last_pid",
})


def refuse_inside_proc(root: Root, dest_fd: int, kind: str | None) -> None:
    """Only `proc` goes on /proc, and nothing inside /proc except the emulated files: a mount over
    /proc/self/attr or /proc/sys would defeat the container's confinement. Checked on the resolved path."""
    where = os.path.relpath(os.readlink(fd_path(dest_fd)), os.path.join(root.real_path, "proc"))
    if where.startswith(".."):
        return
    if where == ".":
        if kind != "proc":
            raise RootfsError(f"only a proc filesystem may be mounted on /proc, not {kind!r}")
    elif where not in PROC_FILES_ALLOWED:
        raise RootfsError(f"/proc/{where} is inside /proc: mounting over it is not allowed")


def bind_tree(mount: dict, options: MountOptions, source: str, ctx: MountContext) -> int:
    """A detached clone of the bind source carrying the mount's attributes and id mapping.

    Everything here works on the detached tree only, so it can also be done by the runtime on the host
    before the init exists (open_idmapped_mounts): inside a user namespace the init may not id-map."""
    try:
        source_fd = os.open(source, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        raise RootfsError(f"bind source {source} does not exist") from None
    try:
        tree = detached.clone_tree(source_fd, recursive=options.recursive_bind)
    finally:
        os.close(source_fd)
    try:
        clear, set_ = options.bind_attributes()
        detached.set_attributes(tree, clear, set_, recursive=False)
        detached.set_attributes(tree, options.rec_clear, options.rec_set, recursive=True)
        idmap.apply(tree, mount, options, ctx.uid_mappings, ctx.gid_mappings)
    except BaseException:
        os.close(tree)
        raise
    return tree


def _mount_bind(root: Root, mount: dict, options: MountOptions, source: str, ctx: MountContext,
                tree: int | None = None) -> None:
    """Attach the clone (made now, or beforehand by the runtime) onto the destination, created as a file
    or a directory like the source."""
    if tree is None:
        tree = bind_tree(mount, options, source, ctx)
    try:
        is_dir = stat.S_ISDIR(os.fstat(tree).st_mode)
        dest = root.make_dirs(mount["destination"]) if is_dir else root.make_file(mount["destination"])
        try:
            refuse_inside_proc(root, dest, "bind")
            detached.attach(tree, dest)
        finally:
            os.close(dest)
        detached.propagate(tree, options)
    finally:
        os.close(tree)


def open_idmapped_mounts(config: dict, bundle: str) -> dict[int, int]:
    """Detached, id-mapped clones of every bind mount asking for an id mapping: mounts index → fd.

    Made by the runtime before it forks the init (in the host's user and mount namespaces), because the
    kernel lets only the owner of the source filesystem id-map it; the init attaches them."""
    ctx = MountContext.from_config(config, bundle, in_userns=False)
    prepared: dict[int, int] = {}
    try:
        for index, mount in enumerate(config.get("mounts") or ()):
            options = parse(mount.get("options"), mount.get("type"))
            if options.is_bind and idmap.wanted(mount, options):
                with _MountErrors(index, mount):
                    prepared[index] = bind_tree(mount, options, bind_source(mount, bundle), ctx)
    except BaseException:
        for fd in prepared.values():
            os.close(fd)
        raise
    return prepared
