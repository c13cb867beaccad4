"""Networking inside the container's network namespace.

Bringing `lo` up is on every create's path, so it is two ioctls rather than netlink (pyroute2's import
alone costs ~100 ms); `linux.netDevices` needs netlink and imports pyroute2 only when present.
"""

from __future__ import annotations

import _socket
import fcntl
import struct

_SIOCGIFFLAGS = 0x8913
_SIOCSIFFLAGS = 0x8914
_IFF_UP = 0x1


def loopback_up() -> None:
    """Set IFF_UP on `lo` in the current network namespace."""
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(sock, _SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, _SIOCSIFFLAGS, struct.pack("16sh", b"lo", flags | _IFF_UP))
    finally:
        sock.close()
