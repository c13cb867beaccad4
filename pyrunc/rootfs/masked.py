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
from . import detached
from .paths import Root

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


def mask_paths(root: Root, paths: list[str]) -> None:
    null: int | None = None
    try:
        for path in paths:
            try:
                target = root.open(path)
            except FileNotFoundError:
                continue
            try:
                if stat.S_ISDIR(os.fstat(target).st_mode):
                    detached.new_filesystem("tmpfs", target, flags=("ro",), attributes=s.MOUNT_ATTR_RDONLY)
                else:
                    if null is None:
                        null = dev_null(root)
                    os.close(detached.bind(null, target))
            except OSError as err:
                raise RootfsError(f"linux.maskedPaths {path}: {err}") from None
            finally:
                os.close(target)
    finally:
        if null is not None:
            os.close(null)


def readonly_paths(root: Root, paths: list[str]) -> None:
    for path in paths:
        try:
            target = root.open(path)
        except FileNotFoundError:
            continue
        try:
            tree = detached.clone_tree(target, recursive=True)
            try:
                detached.set_attributes(tree, 0, s.MOUNT_ATTR_RDONLY, recursive=True)
                detached.attach(tree, target)
            finally:
                os.close(tree)
        except OSError as err:
            raise RootfsError(f"linux.readonlyPaths {path}: {err}") from None
        finally:
            os.close(target)
