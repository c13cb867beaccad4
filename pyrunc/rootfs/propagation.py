"""Mount propagation of the container's mount tree (linux.rootfsPropagation).

Before anything is mounted, the whole tree is made `rslave` (or private, when rootfsPropagation asks for
a private root) so no container mount reaches the host, and the mount holding the rootfs is made private
when shared (a bind under a shared parent would propagate, and pivot_root refuses a shared parent).
rootfsPropagation itself is applied to the container's `/` after the pivot: a shared or unbindable host
tree before it would either leak the container's mounts or forbid binding the rootfs out of it.
"""

from __future__ import annotations

import os

from .. import syscalls as s
from ..errors import RootfsError
from .options import PROPAGATION

DEFAULT = s.MS_SLAVE | s.MS_REC


def flags_of(word: str | None) -> int | None:
    if not word:
        return None
    if word not in PROPAGATION:
        raise RootfsError(f"linux.rootfsPropagation: invalid value {word!r}")
    return PROPAGATION[word]


def prepare_tree(rootfs: str, word: str | None) -> None:
    """Set the tree's propagation, privatise the rootfs's parent mount, bind the rootfs onto itself."""
    flags = flags_of(word)
    s.mount(None, "/", None, flags if flags is not None and flags & s.MS_PRIVATE else DEFAULT)
    parent = parent_mount(rootfs)
    if parent is not None and parent[1]:
        s.mount(None, parent[0], None, s.MS_PRIVATE)
    s.mount(rootfs, rootfs, None, s.MS_BIND | s.MS_REC)


def parent_mount(path: str) -> tuple[str, bool] | None:
    """(mount point, is shared) of the mount that holds `path`, from /proc/self/mountinfo."""
    path = os.path.realpath(path)
    best: tuple[str, bool] | None = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mountpoint = fields[4]
            inside = path == mountpoint or path.startswith(mountpoint.rstrip("/") + "/")
            if inside and (best is None or len(mountpoint) >= len(best[0])):
                shared = any(field.startswith("shared:") for field in fields[6:fields.index("-")])
                best = (mountpoint, shared)
    return best


def apply_to_root(word: str | None) -> None:
    """After the pivot: the new `/` gets the propagation rootfsPropagation asks for."""
    flags = flags_of(word)
    if flags is not None:
        s.mount(None, "/", None, flags)
