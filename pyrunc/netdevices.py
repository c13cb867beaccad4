"""`linux.netDevices`: host network interfaces lent to the container (config-linux.md "Network Devices").

create: each named host interface is moved into the container's network namespace, renamed to `name`
when given, its permanent global-scope addresses (IPv4 and IPv6) re-added there (a move drops them)
and set up. A container's own (new) network namespace is pinned by a bind mount on
`<state dir>/netns`, so that delete can move the devices back under their original names, with their
addresses and link state, even after the container's processes exited; without the pin the kernel
would destroy virtual devices and hand physical ones back under the container's names.

A joined network namespace (`linux.namespaces` with a path) belongs to whoever made it: devices moved
there stay there, as runc does it.

Netlink goes through pyroute2, imported only here (its import alone costs 150-300 ms). A netlink
socket stays bound to the network namespace it was created in, so the runtime enters the container's
namespace just long enough to open one, then returns to its own.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from . import syscalls
from .errors import ConfigError, PyruncError
from .log import logger

NETNS_PIN = "netns"
RECORD = "netdevices.json"

_IFNAMSIZ = 16  # with the terminating NUL
_IFF_UP = 0x1
_RT_SCOPE_UNIVERSE = 0
_IFA_F_PERMANENT = 0x80
#: address flags a user may set (nodad, homeaddress, managetempaddr, noprefixroute, mcautojoin)
_IFA_USER_FLAGS = 0x02 | 0x10 | 0x100 | 0x200 | 0x400


class NetDeviceError(PyruncError):
    """A network device of linux.netDevices could not be moved or configured."""


def _network_namespace(linux: dict) -> dict | None:
    return next((ns for ns in linux.get("namespaces") or () if ns.get("type") == "network"), None)


def _name_problem(name: object) -> str:
    """Why the kernel would refuse `name` as an interface name (its dev_valid_name), or ''."""
    if not isinstance(name, str) or not name:
        return "is empty"
    if len(name.encode()) >= _IFNAMSIZ:
        return f"is longer than {_IFNAMSIZ - 1} bytes"
    if name in (".", ".."):
        return "is not a valid interface name"
    if any(c in "/:" or c.isspace() for c in name):
        return "contains '/', ':' or whitespace"
    return ""


def _same_file(a: str, b: str) -> bool:
    sa, sb = os.stat(a), os.stat(b)
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def check_net_devices(config: dict) -> None:
    """Refuse, before anything is made, a linux.netDevices the runtime cannot honour."""
    linux = config.get("linux") or {}
    devices = linux.get("netDevices")
    if not devices:
        return
    where = "config.json: linux.netDevices"
    netns = _network_namespace(linux)
    if netns is None:
        raise ConfigError(f"{where}: needs a network namespace of the container's own "
                          "(linux.namespaces has no network entry)")
    if netns.get("path") and os.path.exists(netns["path"]) and _same_file(netns["path"], "/proc/self/ns/net"):
        raise ConfigError(f"{where}: the network namespace {netns['path']} is the runtime's own")
    if os.geteuid() != 0:
        raise ConfigError(f"{where}: moving host network devices needs root")
    targets: dict[str, str] = {}
    for host_name, entry in devices.items():
        new_name = (entry or {}).get("name") or host_name
        for label, value in ((host_name, host_name), (f"{host_name}.name", new_name)):
            problem = _name_problem(value)
            if problem:
                raise ConfigError(f"{where}.{label}: {value!r} {problem}")
        try:
            socket.if_nametoindex(host_name)
        except OSError:
            raise ConfigError(f"{where}.{host_name}: no network device {host_name} on the host") from None
        if "%d" in new_name:
            continue  # a template: the kernel picks a free name
        if new_name in targets:
            raise ConfigError(f"{where}.{host_name}: name {new_name} is also given to {targets[new_name]}")
        if new_name == "lo" and not netns.get("path"):
            raise ConfigError(f"{where}.{host_name}: name lo is taken in the container's new network namespace")
        targets[new_name] = host_name


@contextmanager
def _netlink(ns_fd: int | None = None) -> Iterator[object]:
    """A pyroute2 IPRoute bound to the network namespace `ns_fd` (None: the runtime's own)."""
    from pyroute2 import IPRoute

    if ns_fd is None:
        ipr = IPRoute()
    else:
        own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            syscalls.setns(ns_fd, syscalls.CLONE_NEWNET, "the container's network namespace")
            try:
                ipr = IPRoute()
            finally:
                syscalls.setns(own, syscalls.CLONE_NEWNET, "the runtime's network namespace")
        finally:
            os.close(own)
    with ipr:
        yield ipr


@contextmanager
def _step(device: str, what: str) -> Iterator[None]:
    """Turn a netlink or OS failure into a one-line NetDeviceError naming the device and the step."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        yield
    except NetlinkError as err:
        raise NetDeviceError(f"linux.netDevices.{device}: {what}: {os.strerror(err.code)}") from None
    except OSError as err:
        raise NetDeviceError(f"linux.netDevices.{device}: {what}: {err.strerror or err}") from None


def _index(ipr: object, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _snapshot(ipr: object, index: int) -> tuple[list[dict], bool]:
    """The device's permanent global-scope addresses and whether it is up."""
    addresses = []
    for msg in ipr.get_addr(index=index):
        flags = msg.get_attr("IFA_FLAGS") or msg["flags"]
        if msg["scope"] != _RT_SCOPE_UNIVERSE or not flags & _IFA_F_PERMANENT:
            continue
        address = {"family": msg["family"], "prefixlen": msg["prefixlen"],
                   "address": msg.get_attr("IFA_ADDRESS"), "flags": flags & _IFA_USER_FLAGS}
        for key in ("local", "broadcast"):
            value = msg.get_attr(f"IFA_{key.upper()}")
            if value:
                address[key] = value
        addresses.append(address)
    up = bool(ipr.get_links(index)[0]["flags"] & _IFF_UP)
    return addresses, up


def _move(src: object, dst: object, dst_ns_fd: int, index: int, new_name: str) -> tuple[int, str]:
    """Move and rename in one request (no moment with a clashing name); return the index and name the
    device has in the destination. It is found there by its name or, for a `%d` template (the kernel
    picks the number), as the device that was not there before and has the same MAC address."""
    mac = src.get_links(index)[0].get_attr("IFLA_ADDRESS")
    before = {link["index"] for link in dst.get_links()}
    src.link("set", index=index, net_ns_fd=dst_ns_fd, ifname=new_name)
    for link in dst.get_links():
        name = link.get_attr("IFLA_IFNAME")
        if name == new_name or ("%d" in new_name and link["index"] not in before
                                and link.get_attr("IFLA_ADDRESS") == mac):
            return link["index"], name
    raise OSError(0, "the device did not arrive in the destination namespace")


def _configure(ipr: object, device: str, index: int, addresses: list[dict], up: bool) -> None:
    for address in addresses:
        with _step(device, f"adding address {address['address']}/{address['prefixlen']}"):
            ipr.addr("add", index=index, **address)
    if up:
        with _step(device, "setting the link up"):
            ipr.link("set", index=index, state="up")


def _save_record(state_dir: str, moved: list[dict]) -> None:
    path = os.path.join(state_dir, RECORD)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(moved, f)
    os.rename(tmp, path)


def _pin(init_pid: int, state_dir: str) -> str:
    """Bind-mount the init's network namespace on <state_dir>/netns, keeping it alive until delete."""
    pin = os.path.join(state_dir, NETNS_PIN)
    os.close(os.open(pin, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    try:
        syscalls.mount(f"/proc/{init_pid}/ns/net", pin, None, syscalls.MS_BIND)
    except OSError as err:
        os.unlink(pin)
        raise NetDeviceError(f"linux.netDevices: pinning the container's network namespace: {err.strerror}") from None
    return pin


def move_in(config: dict, init_pid: int, state_dir: str) -> None:
    """Move linux.netDevices into the network namespace of `init_pid` (called by the parent once the
    init exists there). What was moved is recorded as it happens, so that move_back can undo a move
    that fails half-way."""
    linux = config.get("linux") or {}
    devices = linux.get("netDevices")
    if not devices:
        return
    joined = bool((_network_namespace(linux) or {}).get("path"))
    ns_path = f"/proc/{init_pid}/ns/net" if joined else _pin(init_pid, state_dir)
    ns_fd = os.open(ns_path, os.O_RDONLY | os.O_CLOEXEC)
    moved: list[dict] = []
    try:
        with _netlink() as host, _netlink(ns_fd) as inside:
            for host_name, entry in devices.items():
                new_name = (entry or {}).get("name") or host_name
                with _step(host_name, "reading the host device"):
                    index = _index(host, host_name)
                    if index is None:
                        raise NetDeviceError(f"linux.netDevices.{host_name}: no network device {host_name} on the host")
                    addresses, up = _snapshot(host, index)
                if "%d" not in new_name and _index(inside, new_name) is not None:
                    raise NetDeviceError(f"linux.netDevices.{host_name}: a device named {new_name} already "
                                         "exists in the container's network namespace")
                with _step(host_name, f"moving into the container's network namespace as {new_name}"):
                    new_index, new_name = _move(host, inside, ns_fd, index, new_name)
                moved.append({"name": host_name, "inside": new_name, "addresses": addresses, "up": up})
                if not joined:
                    _save_record(state_dir, moved)
                # The spec: the device MUST be up in the container, whatever it was on the host.
                _configure(inside, host_name, new_index, addresses, up=True)
    finally:
        os.close(ns_fd)


def _move_out(inside: object, host: object, host_ns_fd: int, device: dict) -> None:
    name = device["name"]
    with _step(name, f"finding {device['inside']} in the container's network namespace"):
        index = _index(inside, device["inside"])
    if index is None:
        raise NetDeviceError(f"linux.netDevices.{name}: {device['inside']} is no longer in the container's "
                             "network namespace")
    with _step(name, f"looking for {name} on the host"):
        taken = _index(host, name) is not None
    if taken:
        raise NetDeviceError(f"linux.netDevices.{name}: the host has another device named {name} now")
    with _step(name, "moving back to the host"):
        host_index, _ = _move(inside, host, host_ns_fd, index, name)
    _configure(host, name, host_index, device["addresses"], device["up"])


def move_back(state_dir: str) -> None:
    """Return the devices recorded by move_in to the runtime's network namespace, then drop the pin.

    A device that cannot be returned (gone, its name taken on the host) is logged, never fatal: delete
    goes on, and the netns mount is removed whatever happens."""
    pin = os.path.join(state_dir, NETNS_PIN)
    record = os.path.join(state_dir, RECORD)
    if not os.path.exists(pin):
        return
    try:
        devices = []
        if os.path.exists(record):
            with open(record) as f:
                devices = json.load(f)
        if devices:
            _return_devices(pin, devices)
    except (PyruncError, OSError, ValueError) as err:  # ValueError: an unreadable record
        logger.warning(f"linux.netDevices: devices not moved back: {err}")
    finally:
        try:
            syscalls.umount2(pin, syscalls.MNT_DETACH)
        except OSError as err:
            if err.errno != errno.EINVAL:  # EINVAL: not a mount point (create died before mounting)
                logger.warning(f"linux.netDevices: unmounting {pin}: {err.strerror}")
        for path in (pin, record):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _return_devices(pin: str, devices: list[dict]) -> None:
    ns_fd = os.open(pin, os.O_RDONLY | os.O_CLOEXEC)
    host_ns_fd = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _netlink() as host, _netlink(ns_fd) as inside:
            for device in devices:
                try:
                    _move_out(inside, host, host_ns_fd, device)
                except PyruncError as err:
                    logger.warning(f"{err}; not moved back")
    finally:
        os.close(ns_fd)
        os.close(host_ns_fd)
