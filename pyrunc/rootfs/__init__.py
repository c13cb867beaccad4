"""The container's filesystem: mounts, devices, pivot, masked and read-only paths.

`process/init.py` calls, inside the container's new mount namespace:
    check_mounts(config, bundle)                          at create, before forking (host-side checks)
    open_idmapped_mounts(config, bundle) -> {index: fd}   the runtime, before forking (id-mapped binds)
    prepare_rootfs(config, bundle, rootfs, in_userns=..., idmapped=...)
                                                          every mount and /dev, before the pivot
    pivot_into(rootfs, no_pivot=...)                       the rootfs becomes `/`
    mount_console(pty_slave_fd)                            with process.terminal, after the pivot
    finalize_rootfs(config)                                read-only remounts, readonlyPaths, maskedPaths
"""

from __future__ import annotations

from .checks import check_mounts
from .devices import mount_console
from .mounts import open_idmapped_mounts
from .setup import finalize_rootfs, pivot_into, prepare_rootfs

__all__ = ["check_mounts", "finalize_rootfs", "mount_console", "open_idmapped_mounts", "pivot_into",
           "prepare_rootfs"]
