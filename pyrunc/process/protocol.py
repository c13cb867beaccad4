"""The sync protocol between the runtime (parent) and the container's init, over a SOCK_SEQPACKET pair.

Every message is one datagram: a JSON object `{"type": ..., **payload}`, optionally carrying file
descriptors (SCM_RIGHTS). The sequence of `create`:

    parent (pyrunc create)                      stage-1 → init (forked, in the new namespaces)
    ──────────────────────                      ──────────────────────────────────────────────
    fork ─────────────────────────────────────▶ join cgroup; join/unshare the user namespace
                 ◀──────────────────────────── USERNS_READY          (only for a new user namespace)
    write uid_map, setgroups, gid_map
    MAPPED ───────────────────────────────────▶ join/unshare the other namespaces;
                                                fork the init when a pid/time namespace needs it
                 ◀──────────────────────────── INIT_PID {pid}        (host pid; stage-1 exits; 0: stage-1 is the
                                                                      init, born in its namespaces: clone.py)
    rlimits, oom_score_adj, initial CPU affinity of the init (with the host's privileges)
    CONTINUE ─────────────────────────────────▶ mounts, devices (rootfs.prepare_rootfs)
                 ◀──────────────────────────── CONSOLE [fd]          (only with process.terminal)
    hand the pty master to --console-socket
                 ◀──────────────────────────── RUN_HOOKS             (only with prestart/createRuntime hooks)
    run prestart + createRuntime hooks
    HOOKS_DONE ───────────────────────────────▶ createContainer hooks, pivot_root, hostname, sysctl,
                                                masked paths, user, capabilities, seccomp ...
                 ◀──────────────────────────── SECCOMP_LISTENER [fd]  (only with SCMP_ACT_NOTIFY)
    send fd + state to linux.seccomp.listenerPath
    SECCOMP_DONE ─────────────────────────────▶
                 ◀──────────────────────────── READY                 (init now blocks on exec.fifo)
    save state, write --pid-file, exit

Either side may instead send ERROR {message}; the init then exits 1 and the parent reports the message
as its own one-line error, after removing everything create made.

`exec` (process/exec_init.py) uses the same channel, in one direction:

    parent (pyrunc exec)                        stage-1 → process (forked, in the container)
    ────────────────────                        ────────────────────────────────────────────
    fork ─────────────────────────────────────▶ join the cgroup; setns user, then the others;
                                                fork the process (inside the pid namespace)
                 ◀──────────────────────────── INIT_PID {pid}        (host pid; stage-1 exits)
                                                chroot to the init's root, pty, identity, cwd ...
                 ◀──────────────────────────── CONSOLE [fd]          (only with a terminal)
                 ◀──────────────────────────── READY                 (execve follows)
    EOF (the socket is close-on-exec) ◀─────── execve succeeded, or ERROR {message} if it failed

INIT_PID and the process's messages come from two processes and may arrive in either order: the
parent is done at the end of the channel, once it has seen both INIT_PID and READY.
"""

from __future__ import annotations

import os

from .. import fastjson, unixsock
from ..errors import InitError


class Msg:
    """The message types (the `type` of each datagram). Plain strings: an enum costs milliseconds to import."""

    USERNS_READY = "userns_ready"
    MAPPED = "mapped"
    INIT_PID = "init_pid"
    CONTINUE = "continue"
    CONSOLE = "console"
    RUN_HOOKS = "run_hooks"
    SECCOMP_LISTENER = "seccomp_listener"
    SECCOMP_DONE = "seccomp_done"
    HOOKS_DONE = "hooks_done"
    READY = "ready"
    ERROR = "error"


_MAX_MESSAGE = 1 << 16


class Channel:
    """One end of the sync socket."""

    def __init__(self, sock: unixsock.Socket) -> None:
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, msg: str, fds: list[int] | None = None, **payload: object) -> None:
        data = fastjson.dumps({"type": msg, **payload}).encode()
        if fds:
            unixsock.send_fds(self.sock, data, fds)
        else:
            self.sock.send(data)

    def send_error(self, message: str) -> None:
        """Report a failure to the parent; after READY the channel is closed, so stderr hears it."""
        try:
            self.send(Msg.ERROR, message=message)
        except OSError:
            os.write(2, f"{message}\n".encode())

    def receive(self) -> tuple[str, dict, list[int]]:
        """The next message; an ERROR from the peer is raised as InitError, EOF as InitError too."""
        msg, payload, fds = self.receive_or_eof()
        if msg is None:
            raise InitError("container init exited before it was ready")
        return msg, payload, fds

    def expect(self, wanted: str) -> dict:
        msg, payload, _fds = self.receive()
        if msg != wanted:
            raise InitError(f"sync protocol: expected {wanted}, got {msg}")
        return payload

    def receive_or_eof(self) -> tuple[str | None, dict, list[int]]:
        """Like receive(), but the end of the channel is (None, {}, []) rather than an error."""
        data, fds = unixsock.recv_fds(self.sock, _MAX_MESSAGE, 4)
        if not data:
            return None, {}, fds
        payload = fastjson.loads(data)
        msg = payload.pop("type")
        if msg == Msg.ERROR:
            raise InitError(payload["message"])
        return msg, payload, fds

    def close(self) -> None:
        self.sock.close()
