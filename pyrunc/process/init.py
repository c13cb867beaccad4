"""The container's init: runs in the forked child, from namespace entry to execve of the user process.

The order of the steps follows the runtime-spec and runc:
 1. stage-1: no dumping, die with the parent; join the cgroup; user namespace (+ id maps by the parent);
    become the namespace's root; the other namespaces; time offsets; fork when pid/time need it.
 2. init: new session; `lo` up; mounts and devices; console; prestart/createRuntime hooks (parent),
    createContainer hooks; pivot_root; hostname; sysctl; masked/readonly paths, read-only root.
 3. the process: cwd; executable lookup (a missing one fails create); rlimits and process attributes;
    seccomp early when it must precede the identity switch; user, groups and capabilities;
    no_new_privs; close descriptors; READY; block on exec.fifo until `start`; startContainer hooks;
    seccomp (as late as possible); execve.
Nothing here returns: the process execs or exits, reporting failures over the sync channel first.
"""

from __future__ import annotations

import _signal
import os

# Everything the init uses is imported here, by the parent before it forks: after pivot_root the
# package's files are out of reach, and pages loaded in the child would be charged to the container.
from .. import rootfs, syscalls
from ..errors import InitError, PyruncError
from ..hooks import has_hooks, run_hooks
from ..network import loopback_up
from ..security import identity, lsm, process_attrs, sysctl
from ..state import EXEC_FIFO
from . import execve
from .context import InitContext
from .protocol import Channel, Msg

TYPE_CHECKING = False  # typing costs milliseconds at start-up; NoReturn only annotates
if TYPE_CHECKING:
    from typing import NoReturn


def stage1_main(chan: Channel, ctx: InitContext) -> NoReturn:
    """Entered right after the fork; never returns."""
    try:
        import gc

        gc.disable()
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, _signal.SIGKILL)
        if ctx.cgroup is not None:
            ctx.cgroup.join(0)
        ns = ctx.namespaces
        if ns.enter_user():
            chan.send(Msg.USERNS_READY)
            chan.expect(Msg.MAPPED)
        # Not dumpable from here on: no process of the container may ptrace us or open our /proc files.
        # (Only now: an unprivileged parent must still open our uid_map, owned by root once undumpable.)
        syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)
        if ns.has("user"):
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        ns.enter_others()
        if "time" in ns.new:
            _write_time_offsets((ctx.config.get("linux") or {}).get("timeOffsets") or {})
        if ns.needs_fork:
            pid = os.fork()
            if pid:
                chan.send(Msg.INIT_PID, pid=pid)
                os._exit(0)
        else:  # 0 for the parent's own child: in a pid namespace it was born in, getpid() is 1
            chan.send(Msg.INIT_PID, pid=0 if ns.born_in else os.getpid())
        ctx.init_pid = chan.expect(Msg.CONTINUE)["pid"]
        container_init(chan, ctx)
    except BaseException as err:
        chan.send_error(execve.describe(err))
    os._exit(1)


def _write_time_offsets(offsets: dict) -> None:
    lines = "".join(f"{clock} {o.get('secs', 0)} {o.get('nanosecs', 0)}\n" for clock, o in offsets.items())
    if lines:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write(lines)


def container_init(chan: Channel, ctx: InitContext) -> NoReturn:
    config = ctx.config
    process = config["process"]
    linux = config.get("linux") or {}
    os.setsid()
    if not ctx.no_new_keyring:
        syscalls.join_new_session_keyring()
    if "network" in ctx.namespaces.new:
        loopback_up()
    _prepare_filesystem(chan, ctx)
    if "uts" in ctx.namespaces.new:
        if config.get("hostname"):
            syscalls.sethostname(config["hostname"])
        if config.get("domainname"):
            syscalls.setdomainname(config["domainname"])
    if linux.get("sysctl"):
        sysctl.apply_sysctls(linux["sysctl"])
    rootfs.finalize_rootfs(config)
    env = execve.with_home(list(process.get("env") or ()), (process.get("user") or {}).get("uid", 0))
    cwd = process.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as err:
        raise InitError(f"process.cwd {cwd!r}: {err.strerror}") from None
    executable = execve.find_executable(process["args"][0], env)
    _apply_process_attributes(chan, ctx, process, linux)
    fifo = _ready_and_wait(chan, ctx)
    _start_container_hooks(ctx, fifo)
    _exec(ctx, process, executable, env)


def _prepare_filesystem(chan: Channel, ctx: InitContext) -> None:
    """Mounts, devices and hooks up to pivot_root: everything that still sees the host's filesystem."""
    config = ctx.config
    rootfs.prepare_rootfs(config, ctx.bundle, ctx.rootfs, in_userns=ctx.namespaces.has("user"),
                          idmapped=ctx.idmapped)
    if config["process"].get("terminal"):
        from ..terminal import setup_console

        setup_console(chan, ctx)
    if has_hooks(config, "prestart", "createRuntime"):
        chan.send(Msg.RUN_HOOKS)
        chan.expect(Msg.HOOKS_DONE)
    if has_hooks(config, "createContainer"):
        run_hooks(config, ctx.hook_state("creating"), "createContainer")
    rootfs.pivot_into(ctx.rootfs, no_pivot=ctx.no_pivot)


def _apply_process_attributes(chan: Channel, ctx: InitContext, process: dict, linux: dict) -> None:
    """Scheduling, identity and privileges, in the order the kernel requires.

    rlimits, oom_score_adj and the initial CPU affinity were set by the parent (it holds the host's
    privileges); a filter is loaded before the identity switch only when it could not be loaded after it.
    """
    if linux.get("personality"):
        process_attrs.apply_personality(linux["personality"])
    process_attrs.apply_scheduling(process)
    early_seccomp = execve.load_seccomp_before_identity(chan, ctx.seccomp, process)
    identity.switch_identity(process.get("user") or {}, ctx.capabilities)
    if process.get("noNewPrivileges"):
        identity.set_no_new_privs()
    lsm.apply_exec_labels(process)
    final = (process.get("execCPUAffinity") or {}).get("final")
    if final:
        process_attrs.apply_cpu_affinity(final)
    if ctx.seccomp is not None and not early_seccomp:
        execve.load_seccomp(chan, ctx.seccomp)


def _ready_and_wait(chan: Channel, ctx: InitContext) -> int:
    """Tell the parent we are ready, then block until `start` opens the exec fifo for reading; return it."""
    keep = sorted({chan.fileno(), ctx.state_dir_fd})
    first_free = 3 + ctx.preserve_fds + int(os.environ.get("LISTEN_FDS", "0") or 0)
    execve.close_fds_from(first_free, keep)
    syscalls.prctl(syscalls.PR_SET_PDEATHSIG, 0)
    chan.send(Msg.READY)
    chan.close()
    fd = os.open(EXEC_FIFO, os.O_WRONLY | os.O_CLOEXEC, dir_fd=ctx.state_dir_fd)
    os.close(ctx.state_dir_fd)
    return fd


def _start_container_hooks(ctx: InitContext, fifo: int) -> None:
    """Run the startContainer hooks, then tell `start` (reading the fifo) "0", or "1" and why they failed."""
    try:
        if has_hooks(ctx.config, "startContainer"):
            run_hooks(ctx.config, ctx.hook_state("created"), "startContainer")
    except PyruncError as err:
        os.write(fifo, b"1" + execve.describe(err).encode()[:4000])
        os._exit(1)
    os.write(fifo, b"0")
    os.close(fifo)


def _exec(ctx: InitContext, process: dict, executable: str, env: list[str]) -> NoReturn:
    try:
        execve.execve_clean(executable, process["args"], env)
    except OSError as err:
        os.write(2, f"exec {executable}: {err.strerror}\n".encode())
    os._exit(127)
