"""The three steps of the rootfs, in the order the init runs them."""

from __future__ import annotations

import os

from .. import syscalls as s
from ..errors import RootfsError
from ..inroot import Root
from . import detached, devices, masked, mounts, pivot, propagation
from .options import parse


def prepare_rootfs(config: dict, bundle: str, rootfs_path: str, *, in_userns: bool,
                   idmapped: dict[int, int] | None = None) -> None:
    """Before the pivot: propagation, the rootfs bound onto itself, every mount in order, then /dev.

    `idmapped`: what open_idmapped_mounts() returned in the runtime before the fork (needed when the
    container has a user namespace); without it, id-mapped binds are made here. Its fds are closed."""
    linux = config.get("linux") or {}
    prepared = dict(idmapped or {})
    try:
        propagation.prepare_tree(rootfs_path, linux.get("rootfsPropagation"))
    except OSError as err:
        for fd in prepared.values():
            os.close(fd)
        raise RootfsError(f"preparing the rootfs {rootfs_path}: {err}") from None
    with Root(rootfs_path) as root:
        mounts.mount_all(root, config, mounts.MountContext.from_config(config, bundle, in_userns), prepared)
        if devices.needs_dev_setup(config):
            devices.setup_dev(root, config, in_userns=in_userns)


def pivot_into(rootfs_path: str, *, no_pivot: bool) -> None:
    pivot.pivot_into(rootfs_path, no_pivot=no_pivot)


def finalize_rootfs(config: dict) -> None:
    """After the pivot: deferred read-only mounts, root.readonly, readonlyPaths, maskedPaths, and the
    propagation of `/`."""
    linux = config.get("linux") or {}
    with Root("/") as root:
        try:
            _remount_deferred_readonly(root, config)
            if (config.get("root") or {}).get("readonly"):
                detached.set_attributes(root.fd, 0, s.MOUNT_ATTR_RDONLY, recursive=False)
        except OSError as err:
            raise RootfsError(f"making mounts read-only: {err}") from None
        masked.readonly_paths(root, linux.get("readonlyPaths") or [])
        masked.mask_paths(root, linux.get("maskedPaths") or [])
    try:
        propagation.apply_to_root(linux.get("rootfsPropagation"))
    except OSError as err:
        raise RootfsError(f"linux.rootfsPropagation: {err}") from None


def _remount_deferred_readonly(root: Root, config: dict) -> None:
    for mount in config.get("mounts") or ():
        if mounts.defers_readonly(mount) and parse(mount.get("options")).flags & s.MS_RDONLY:
            with root.opened(mount["destination"]) as fd:
                detached.set_attributes(fd, 0, s.MOUNT_ATTR_RDONLY, recursive=False)


