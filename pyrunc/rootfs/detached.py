"""Mounts made through descriptors (open_tree, fsopen/fsmount, mount_setattr, move_mount).

A clone of a mount tree or a fresh filesystem is prepared while detached, then attached onto the
descriptor of an already resolved destination: no path is looked up again, and /proc is not needed
(these also work after the pivot, whatever the container's /proc is).
"""

from __future__ import annotations

import os

from .. import syscalls as s
from .options import MountOptions

_EMPTY = s.AT_EMPTY_PATH


def clone_tree(source_fd: int, *, recursive: bool) -> int:
    """A detached copy of the mount at `source_fd` (with its submounts when recursive)."""
    flags = s.OPEN_TREE_CLONE | s.OPEN_TREE_CLOEXEC | _EMPTY | (s.AT_RECURSIVE if recursive else 0)
    return s.open_tree(source_fd, "", flags)


def set_attributes(mount_fd: int, clear: int, set_: int, *, recursive: bool, userns_fd: int = 0) -> None:
    """mount_setattr on the mount of `mount_fd` (attached or not); nothing when there is nothing to do."""
    if clear or set_:
        s.mount_setattr(mount_fd, "", _EMPTY | (s.AT_RECURSIVE if recursive else 0), set_, clear, 0, userns_fd)


def set_propagation(mount_fd: int, flags: int) -> None:
    """Apply one propagation word's MS_* flags (MS_REC → the whole subtree) to the mount of `mount_fd`."""
    recursive = bool(flags & s.MS_REC)
    kind = flags & ~s.MS_REC
    s.mount_setattr(mount_fd, "", _EMPTY | (s.AT_RECURSIVE if recursive else 0), 0, 0, kind)


def finish(mount_fd: int, options: MountOptions) -> None:
    """The steps after a (non-bind) mount exists: its recursive `r*` attributes, then propagation."""
    set_attributes(mount_fd, options.rec_clear, options.rec_set, recursive=True)
    propagate(mount_fd, options)


def propagate(mount_fd: int, options: MountOptions) -> None:
    """Per-mount propagation words, applied once the mount is attached (in the container's namespace)."""
    for flags in options.propagation:
        set_propagation(mount_fd, flags)


def attach(mount_fd: int, dest_fd: int) -> None:
    s.move_mount(mount_fd, "", dest_fd, "", s.MOVE_MOUNT_F_EMPTY_PATH | s.MOVE_MOUNT_T_EMPTY_PATH)


def bind(source_fd: int, dest_fd: int, *, recursive: bool = False, clear: int = 0, set_: int = 0) -> int:
    """Bind the mount at `source_fd` onto `dest_fd` with these attributes; returns the new mount's fd."""
    tree = clone_tree(source_fd, recursive=recursive)
    try:
        set_attributes(tree, clear, set_, recursive=False)
        attach(tree, dest_fd)
    except BaseException:
        os.close(tree)
        raise
    return tree


def new_filesystem(fstype: str, dest_fd: int, *, flags: tuple[str, ...] = (), attributes: int = 0) -> None:
    """Mount a fresh `fstype` (with these superblock flags, e.g. "ro") onto `dest_fd`."""
    context = s.fsopen(fstype)
    try:
        s.fsconfig(context, s.FSCONFIG_SET_STRING, "source", fstype)
        for flag in flags:
            s.fsconfig(context, s.FSCONFIG_SET_FLAG, flag)
        s.fsconfig(context, s.FSCONFIG_CMD_CREATE)
        mount = s.fsmount(context, attributes)
    finally:
        os.close(context)
    try:
        attach(mount, dest_fd)
    finally:
        os.close(mount)
