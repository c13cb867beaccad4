"""Making the rootfs the container's `/`: pivot_root, or MS_MOVE + chroot with --no-pivot."""

from __future__ import annotations

import errno
import os

from .. import syscalls as s
from ..errors import RootfsError


def pivot_into(rootfs: str, *, no_pivot: bool) -> None:
    try:
        if no_pivot:
            _move_root(rootfs)
        else:
            _pivot_root(rootfs)
        os.chdir("/")
    except OSError as err:
        raise RootfsError(f"entering the rootfs {rootfs}: {err}") from None


def _pivot_root(rootfs: str) -> None:
    """pivot_root(".", ".") stacks the old root on the new one; unmounting `.` then drops it, with no
    directory needed inside the rootfs. The old root is made rslave first so the detach cannot
    propagate to the host."""
    old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
    try:
        new_root = os.open(rootfs, os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fchdir(new_root)
        finally:
            os.close(new_root)
        s.pivot_root(".", ".")
        os.fchdir(old_root)
    finally:
        os.close(old_root)
    s.mount(None, ".", None, s.MS_SLAVE | s.MS_REC)
    s.umount2(".", s.MNT_DETACH)


def _move_root(rootfs: str) -> None:
    """For roots pivot_root refuses (an initramfs): move the rootfs mount over `/` and chroot into it.

    The host's mounts stay in the namespace underneath, so the full proc and sysfs mounts outside the
    rootfs are removed first (or covered where they cannot be), as runc does."""
    for mountpoint in _host_proc_and_sys(os.path.realpath(rootfs)):
        try:
            s.mount(None, mountpoint, None, s.MS_SLAVE | s.MS_REC)
            s.umount2(mountpoint, s.MNT_DETACH)
        except OSError as err:
            if err.errno == errno.ENOENT:
                continue
            if err.errno not in (errno.EINVAL, errno.EPERM):
                raise
            s.mount("tmpfs", mountpoint, "tmpfs", 0)
    os.chdir(rootfs)
    s.mount(rootfs, "/", None, s.MS_MOVE)
    os.chroot(".")


def _host_proc_and_sys(rootfs: str) -> list[str]:
    """Mount points of whole (root "/") proc and sysfs filesystems outside `rootfs`, deepest first."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            mountpoint = fields[4]
            inside = mountpoint == rootfs or mountpoint.startswith(rootfs.rstrip("/") + "/")
            if fstype in ("proc", "sysfs") and fields[3] == "/" and not inside:
                found.append(mountpoint)
    return sorted(found, key=lambda path: -path.count("/"))
