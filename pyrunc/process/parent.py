"""The runtime's side of create: fork the init and answer its requests until it is ready.

See `protocol.py` for the message sequence.
"""

from __future__ import annotations

import _signal
import gc
import os
import select

from .. import unixsock
from ..errors import InitError
from .clone import fork_stage1
from .context import InitContext
from .init import stage1_main
from .protocol import Channel, Msg

TYPE_CHECKING = False  # collections.abc costs milliseconds at start-up; Callable only annotates
if TYPE_CHECKING:
    from collections.abc import Callable


def _only_own_id(mappings: list[dict], own_id: int) -> bool:
    return len(mappings) == 1 and mappings[0]["hostID"] == own_id and mappings[0]["size"] == 1


def write_id_maps(pid: int, linux: dict) -> None:
    """Write the container's uid/gid maps for the process that created the user namespace.

    root writes any mapping itself. An unprivileged user may write a map of its own id only (after
    disabling setgroups for the gid map); other ranges go through the setuid helpers newuidmap and
    newgidmap, which check them against /etc/subuid and /etc/subgid.
    """
    for name, key, own_id, helper in (("uid_map", "uidMappings", os.geteuid(), "newuidmap"),
                                      ("gid_map", "gidMappings", os.getegid(), "newgidmap")):
        mappings = linux.get(key) or []
        if os.geteuid() != 0 and not _only_own_id(mappings, own_id):
            import subprocess

            argv = [helper, str(pid)] + [str(m[k]) for m in mappings for k in ("containerID", "hostID", "size")]
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                detail = " ".join(done.stderr.split()) or f"{helper}: exit status {done.returncode}"
                raise InitError(f"linux.{key}: {detail}")
            continue
        if name == "gid_map" and os.geteuid() != 0:
            with open(f"/proc/{pid}/setgroups", "w") as f:
                f.write("deny")
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write("".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings))
        except OSError as err:
            raise InitError(f"writing {name} ({key} {mappings}): {err.strerror}") from None


def _kill_and_reap(pid: int, reap: bool) -> None:
    try:
        os.kill(pid, _signal.SIGKILL)
    except ProcessLookupError:
        return
    if reap:
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def _set_init_attributes(ctx: InitContext) -> None:
    """What needs the host's privileges is set on the init from outside (it may be in a user namespace),
    and the host's network devices named in linux.netDevices move into its network namespace."""
    from ..security import process_attrs, rlimits

    process = ctx.config["process"]
    if process.get("rlimits"):
        rlimits.apply_rlimits(process["rlimits"], pid=ctx.init_pid)
    if process.get("oomScoreAdj") is not None:
        process_attrs.apply_oom_score_adj(process["oomScoreAdj"], pid=ctx.init_pid)
    initial = (process.get("execCPUAffinity") or {}).get("initial")
    if initial:
        process_attrs.apply_cpu_affinity(initial, pid=ctx.init_pid)
    if (ctx.config.get("linux") or {}).get("netDevices"):
        from ..netdevices import move_in

        move_in(ctx.config, ctx.init_pid, ctx.state_dir)


def _send_seccomp_listener(ctx: InitContext, listener_fd: int) -> None:
    from ..security import seccomp

    spec = ctx.config["linux"]["seccomp"]
    seccomp.send_listener(spec["listenerPath"], listener_fd, ctx.hook_state("creating"),
                          spec.get("listenerMetadata", ""))


def _hand_over(fds: list[int], use: Callable[[int], None]) -> None:
    """Pass a received descriptor on, then close our copies whatever happens."""
    try:
        use(fds[0])
    finally:
        for fd in fds:
            os.close(fd)


def _wait_for_message_from(chan: Channel, stage1_fd: int) -> None:
    """Wait for the next message while stage-1 lives. If stage-1 dies before it reported the init (the
    OOM killer, under a tiny memory limit), the init it forked still holds the socket and waits for us:
    no end-of-file would ever come, so its death is the error."""
    readable, _, _ = select.select([chan.fileno(), stage1_fd], [], [])
    if chan.fileno() not in readable:
        raise InitError("container init exited before it was ready (killed during set-up)")


def start_init(ctx: InitContext, run_parent_hooks: Callable[[], None],
               send_console: Callable[[int], None]) -> int:
    """Fork the container's init and drive it until it waits on the exec fifo; return its host pid.

    On any failure the init (and stage-1) are killed before the exception propagates.
    """
    parent_sock, child_sock = unixsock.seqpacket_pair()
    # Objects moved to the permanent generation are never touched by the collector, so the
    # child does not copy (and charge to the container's memory cgroup) the pages they live on.
    gc.freeze()
    stage1, born_in = fork_stage1(ctx.cgroup, ctx.namespaces.clone_flags())
    if stage1 == 0:
        parent_sock.close()
        ctx.namespaces.born_in = born_in
        stage1_main(Channel(child_sock), ctx)
    child_sock.close()
    chan = Channel(parent_sock)
    stage1_reaped = False
    stage1_fd = os.pidfd_open(stage1)
    try:
        while True:
            if not ctx.init_pid:
                _wait_for_message_from(chan, stage1_fd)
            msg, payload, fds = chan.receive()
            if msg == Msg.USERNS_READY:
                write_id_maps(stage1, ctx.config.get("linux") or {})
                chan.send(Msg.MAPPED)
            elif msg == Msg.INIT_PID:
                ctx.init_pid = payload["pid"] or stage1  # 0: stage-1 itself, born in a new pid namespace
                if ctx.init_pid != stage1:
                    os.waitpid(stage1, 0)
                    stage1_reaped = True
                _set_init_attributes(ctx)
                chan.send(Msg.CONTINUE, pid=ctx.init_pid)
            elif msg == Msg.CONSOLE:
                _hand_over(fds, send_console)
            elif msg == Msg.SECCOMP_LISTENER:
                _hand_over(fds, lambda fd: _send_seccomp_listener(ctx, fd))
                chan.send(Msg.SECCOMP_DONE)
            elif msg == Msg.RUN_HOOKS:
                run_parent_hooks()
                chan.send(Msg.HOOKS_DONE)
            elif msg == Msg.READY:
                return ctx.init_pid
    except BaseException:
        if ctx.init_pid and ctx.init_pid != stage1:
            _kill_and_reap(ctx.init_pid, reap=False)
        if not stage1_reaped:
            _kill_and_reap(stage1, reap=True)
        raise
    finally:
        os.close(stage1_fd)
        chan.close()
