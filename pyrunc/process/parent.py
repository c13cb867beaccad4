"""The runtime's side of create: fork the init and answer its requests until it is ready.

See `protocol.py` for the message sequence.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
from collections.abc import Callable

from .context import InitContext
from .protocol import Channel, Msg


def write_id_maps(pid: int, linux: dict) -> None:
    """Write the container's uid/gid maps for the process that created the user namespace."""
    for name, key in (("uid_map", "uidMappings"), ("gid_map", "gidMappings")):
        lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in linux.get(key) or ())
        if name == "gid_map" and os.geteuid() != 0:
            # An unprivileged writer may only map its own gid, and only after disabling setgroups.
            with open(f"/proc/{pid}/setgroups", "w") as f:
                f.write("deny")
        with open(f"/proc/{pid}/{name}", "w") as f:
            f.write(lines)


def _kill_and_reap(pid: int, reap: bool) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if reap:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def start_init(ctx: InitContext, run_parent_hooks: Callable[[], None],
               send_console: Callable[[int], None]) -> int:
    """Fork the container's init and drive it until it waits on the exec fifo; return its host pid.

    On any failure the init (and stage-1) are killed before the exception propagates.
    """
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    # Objects moved to the permanent generation are never touched by the collector, so the
    # child does not copy (and charge to the container's memory cgroup) the pages they live on.
    gc.freeze()
    stage1 = os.fork()
    if stage1 == 0:
        parent_sock.close()
        from .init import stage1_main

        stage1_main(Channel(child_sock), ctx)
    child_sock.close()
    chan = Channel(parent_sock)
    stage1_reaped = False
    try:
        while True:
            msg, payload, fds = chan.receive()
            if msg is Msg.USERNS_READY:
                write_id_maps(stage1, ctx.config.get("linux") or {})
                chan.send(Msg.MAPPED)
            elif msg is Msg.INIT_PID:
                ctx.init_pid = payload["pid"]
                if ctx.init_pid != stage1:
                    os.waitpid(stage1, 0)
                    stage1_reaped = True
                chan.send(Msg.CONTINUE, pid=ctx.init_pid)
            elif msg is Msg.CONSOLE:
                try:
                    send_console(fds[0])
                finally:
                    for fd in fds:
                        os.close(fd)
            elif msg is Msg.RUN_HOOKS:
                run_parent_hooks()
                chan.send(Msg.HOOKS_DONE)
            elif msg is Msg.READY:
                return ctx.init_pid
    except BaseException:
        if ctx.init_pid and ctx.init_pid != stage1:
            _kill_and_reap(ctx.init_pid, reap=False)
        if not stage1_reaped:
            _kill_and_reap(stage1, reap=True)
        raise
    finally:
        chan.close()
