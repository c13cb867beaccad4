"""maskedPaths and readonlyPaths, applied after the pivot inside the container's `/`.

A masked directory gets an empty read-only tmpfs, a masked file a bind of /dev/null (checked to be the
character device 1:3, so a rootfs cannot make a mask expose or alias something); a read-only path is a
read-only bind of itself. A path that does not exist is skipped.
"""

from __future__ import annotations

import os
import stat

from .. import syscalls as s
from ..errors import RootfsError
from ..inroot import Root
from . import detached

TYPE_CHECKING = False  # collections.abc costs milliseconds at start-up; Callable only annotates
if TYPE_CHECKING:
    from collections.abc import Callable

_NULL = os.makedev(1, 3)


def dev_null(root: Root) -> int:
    """The container's /dev/null, if it really is the null device (a rootfs may have put anything there)."""
    try:
        fd = root.open("/dev/null")
    except OSError as err:
        raise RootfsError(f"/dev/null in the container is not the character device 1:3: {err}") from None
    info = os.fstat(fd)
    if not stat.S_ISCHR(info.st_mode) or info.st_rdev != _NULL:
        os.close(fd)
        raise RootfsError("/dev/null in the container is not the character device 1:3")
    return fd


def _for_each_existing(root: Root, paths: list[str], field: str, apply: Callable[[int], None]) -> None:
    """apply(descriptor) to each path that exists inside the root (a missing one is skipped, as the spec
    says); an OSError becomes a RootfsError naming `field` and the path."""
    for path in paths:
        try:
            target = root.open(path)
        except FileNotFoundError:
            continue
        try:
            apply(target)
        except OSError as err:
            raise RootfsError(f"{field} {path}: {err}") from None
        finally:
            os.close(target)


def mask_paths(root: Root, paths: list[str]) -> None:
    null: list[int] = []

    def mask(target: int) -> None:
        if stat.S_ISDIR(os.fstat(target).st_mode):
            detached.new_filesystem("tmpfs", target, flags=("ro",), attributes=s.MOUNT_ATTR_RDONLY)
            return
        if not null:
            null.append(dev_null(root))
        os.close(detached.bind(null[0], target))

    try:
        _for_each_existing(root, paths, "linux.maskedPaths", mask)
    finally:
        for fd in null:
            os.close(fd)


def readonly_paths(root: Root, paths: list[str]) -> None:
    def make_readonly(target: int) -> None:
        tree = detached.clone_tree(target, recursive=True)
        try:
            detached.set_attributes(tree, 0, s.MOUNT_ATTR_RDONLY, recursive=True)
            detached.attach(tree, target)
        finally:
            os.close(tree)

    _for_each_existing(root, paths, "linux.readonlyPaths", make_readonly)
