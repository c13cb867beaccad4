"""Unix sockets with descriptor passing, through CPython's C module `_socket`.

The `socket` package wraps `_socket` in enums and imports `selectors` (and `array` imports `collections`):
milliseconds at every start of `create` and `exec`, which need only a socketpair, a connect and SCM_RIGHTS.
"""

from __future__ import annotations

import _socket
import _struct

Socket = _socket.socket
_INT_SIZE = _struct.calcsize("i")


def seqpacket_pair() -> tuple[Socket, Socket]:
    """A connected pair of close-on-exec SOCK_SEQPACKET sockets (message boundaries kept)."""
    return _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)


def connect(path: str) -> Socket:
    """A close-on-exec SOCK_STREAM socket connected to `path` (OSError as connect(2) fails)."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


def send_fds(sock: Socket, data: bytes, fds: list[int]) -> None:
    """One message carrying `fds` (SCM_RIGHTS)."""
    sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, _struct.pack(f"{len(fds)}i", *fds))])


def recv_fds(sock: Socket, size: int, max_fds: int) -> tuple[bytes, list[int]]:
    """One message and the descriptors it carried (each received close-on-exec)."""
    data, ancillary, _flags, _addr = sock.recvmsg(size, _socket.CMSG_SPACE(max_fds * _INT_SIZE),
                                                  _socket.MSG_CMSG_CLOEXEC)
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            fds += _struct.unpack(f"{len(payload) // _INT_SIZE}i", payload[:len(payload) - len(payload) % _INT_SIZE])
    return data, fds
