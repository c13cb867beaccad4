"""Checks of mounts, devices and propagation that can be made on the host before forking the init."""

from __future__ import annotations

import os

from ..errors import RootfsError
from .devices import DEVICE_TYPES
from .mounts import bind_source
from .options import parse
from .propagation import flags_of


def check_mounts(config: dict, bundle: str | None = None) -> None:
    """Raise RootfsError naming the first bad entry; `bundle` resolves relative bind sources."""
    linux = config.get("linux") or {}
    flags_of(linux.get("rootfsPropagation"))
    for index, mount in enumerate(config.get("mounts") or ()):
        _check_mount(f"mounts[{index}]", mount, bundle)
    for index, device in enumerate(linux.get("devices") or ()):
        _check_device(f"linux.devices[{index}]", device)


def _check_mount(where: str, mount: dict, bundle: str | None) -> None:
    destination = mount.get("destination")
    if not isinstance(destination, str) or not os.path.isabs(destination):
        raise RootfsError(f"{where}.destination: must be an absolute path, got {destination!r}")
    options = parse(mount.get("options"), mount.get("type"))
    has_mappings = bool(mount.get("uidMappings") or mount.get("gidMappings"))
    if (options.idmap or has_mappings) and not options.is_bind:
        raise RootfsError(f"{where}: id-mapped mounts are only supported for bind mounts")
    if has_mappings and not (mount.get("uidMappings") and mount.get("gidMappings")):
        raise RootfsError(f"{where}: uidMappings and gidMappings must be given together")
    if options.is_bind:
        source = mount.get("source")
        if not source:
            raise RootfsError(f"{where}.source: a bind mount needs a source")
        if (os.path.isabs(source) or bundle is not None) and not os.path.lexists(bind_source(mount, bundle or "")):
            raise RootfsError(f"{where}.source: bind source {source} does not exist")


def _check_device(where: str, device: dict) -> None:
    kind = device.get("type")
    if kind not in DEVICE_TYPES:
        raise RootfsError(f"{where}.type: unknown device type {kind!r} (want one of c, b, u, p)")
    path = device.get("path")
    if not isinstance(path, str) or not os.path.isabs(path):
        raise RootfsError(f"{where}.path: must be an absolute path, got {path!r}")
    if kind != "p" and not (isinstance(device.get("major"), int) and isinstance(device.get("minor"), int)):
        raise RootfsError(f"{where}: a {kind!r} device needs major and minor numbers")
