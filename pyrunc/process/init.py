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

import os
import signal
from typing import NoReturn

from .. import syscalls
from ..errors import InitError, PyruncError
from ..state import EXEC_FIFO
from .context import InitContext
from .protocol import Channel, Msg


def describe(err: BaseException) -> str:
    """One line for an exception raised inside the init."""
    if isinstance(err, PyruncError):
        return str(err)
    if isinstance(err, OSError):
        text = err.strerror or str(err)
        return f"{text}: {err.filename}" if err.filename else text
    return f"{type(err).__name__}: {err}"


def stage1_main(chan: Channel, ctx: InitContext) -> NoReturn:
    """Entered right after the fork; never returns."""
    try:
        import gc

        gc.disable()
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, signal.SIGKILL)
        syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)
        if ctx.cgroup is not None:
            ctx.cgroup.join(0)
        ns = ctx.namespaces
        if ns.enter_user():
            chan.send(Msg.USERNS_READY)
            chan.expect(Msg.MAPPED)
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
        else:
            chan.send(Msg.INIT_PID, pid=os.getpid())
        ctx.init_pid = chan.expect(Msg.CONTINUE)["pid"]
        container_init(chan, ctx)
    except BaseException as err:
        chan.send_error(describe(err))
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
    if "network" in ctx.namespaces.new:
        from ..network import loopback_up

        loopback_up()
    _prepare_filesystem(chan, ctx)
    if "uts" in ctx.namespaces.new:
        if config.get("hostname"):
            syscalls.sethostname(config["hostname"])
        if config.get("domainname"):
            syscalls.setdomainname(config["domainname"])
    if linux.get("sysctl"):
        from ..security.sysctl import apply_sysctls

        apply_sysctls(linux["sysctl"])
    from ..rootfs import finalize_rootfs

    finalize_rootfs(config)
    env = _with_home(list(process.get("env") or ()), (process.get("user") or {}).get("uid", 0))
    cwd = process.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as err:
        raise InitError(f"process.cwd {cwd!r}: {err.strerror}") from None
    executable = find_executable(process["args"][0], env)
    _apply_process_attributes(ctx, process, linux)
    _ready_and_wait(chan, ctx)
    _exec(ctx, process, executable, env)


def _prepare_filesystem(chan: Channel, ctx: InitContext) -> None:
    """Mounts, devices and hooks up to pivot_root: everything that still sees the host's filesystem."""
    from ..hooks import has_hooks, run_hooks
    from ..rootfs import pivot_into, prepare_rootfs

    config = ctx.config
    prepare_rootfs(config, ctx.bundle, ctx.rootfs, in_userns=ctx.namespaces.has("user"))
    if config["process"].get("terminal"):
        from ..terminal import setup_console

        setup_console(chan, ctx)
    if has_hooks(config, "prestart", "createRuntime"):
        chan.send(Msg.RUN_HOOKS)
        chan.expect(Msg.HOOKS_DONE)
    if has_hooks(config, "createContainer"):
        run_hooks(config, ctx.hook_state("creating"), "createContainer")
    pivot_into(ctx.rootfs, no_pivot=ctx.no_pivot)


def _with_home(env: list[str], uid: int) -> list[str]:
    """Like runc: when HOME is not set, take it from the container's /etc/passwd, else "/"."""
    if any(e.startswith("HOME=") for e in env):
        return env
    home = "/"
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) > 5 and fields[2] == str(uid):
                    home = fields[5] or "/"
                    break
    except OSError:
        pass
    return [*env, f"HOME={home}"]


def find_executable(name: str, env: list[str]) -> str:
    """Resolve args[0] like execvp, with the container's PATH (runc's error wording when missing)."""
    if "/" in name:
        candidates = [name]
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")), "/usr/local/bin:/usr/bin:/bin")
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    if "/" in name:
        raise InitError(f'exec: "{name}": stat {name}: no such file or directory')
    raise InitError(f'exec: "{name}": executable file not found in $PATH')


def _apply_process_attributes(ctx: InitContext, process: dict, linux: dict) -> None:
    """Limits, scheduling, identity and privileges, in the order the kernel requires."""
    from ..security import identity, process_attrs, rlimits

    if process.get("rlimits"):
        rlimits.apply_rlimits(process["rlimits"])
    if process.get("oomScoreAdj") is not None:
        process_attrs.apply_oom_score_adj(process["oomScoreAdj"])
    if linux.get("personality"):
        process_attrs.apply_personality(linux["personality"])
    if process.get("scheduler"):
        process_attrs.apply_scheduler(process["scheduler"])
    if process.get("ioPriority"):
        process_attrs.apply_io_priority(process["ioPriority"])
    affinity = process.get("execCPUAffinity") or {}
    if affinity.get("initial"):
        process_attrs.apply_cpu_affinity(affinity["initial"])
    if ctx.seccomp is not None and not process.get("noNewPrivileges"):
        _load_seccomp(ctx)
    identity.switch_identity(process.get("user") or {}, ctx.capabilities)
    if process.get("noNewPrivileges"):
        identity.set_no_new_privs()


def _load_seccomp(ctx: InitContext) -> None:
    from ..security import seccomp

    listener_fd = seccomp.load(ctx.seccomp)
    if listener_fd is not None:
        spec = ctx.config["linux"]["seccomp"]
        seccomp.send_listener(spec["listenerPath"], listener_fd, ctx.hook_state("creating"),
                              spec.get("listenerMetadata", ""))
        os.close(listener_fd)


def _ready_and_wait(chan: Channel, ctx: InitContext) -> None:
    """Tell the parent we are ready, then block until `start` opens the exec fifo for reading."""
    keep = sorted({chan.fileno(), ctx.state_dir_fd})
    first_free = 3 + ctx.preserve_fds + int(os.environ.get("LISTEN_FDS", "0") or 0)
    _close_fds_from(first_free, keep)
    syscalls.prctl(syscalls.PR_SET_PDEATHSIG, 0)
    chan.send(Msg.READY)
    chan.close()
    fd = os.open(EXEC_FIFO, os.O_WRONLY | os.O_CLOEXEC, dir_fd=ctx.state_dir_fd)
    os.write(fd, b"0")
    os.close(fd)
    os.close(ctx.state_dir_fd)


def _close_fds_from(first: int, keep: list[int]) -> None:
    """Close every descriptor >= first except `keep`: nothing of the host may reach the container."""
    low = first
    for fd in keep:
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 1 << 20)


def _exec(ctx: InitContext, process: dict, executable: str, env: list[str]) -> NoReturn:
    from ..hooks import has_hooks, run_hooks

    config = ctx.config
    if has_hooks(config, "startContainer"):
        run_hooks(config, ctx.hook_state("created"), "startContainer")
    if ctx.seccomp is not None and process.get("noNewPrivileges"):
        _load_seccomp(ctx)
    final = (process.get("execCPUAffinity") or {}).get("final")
    if final:
        from ..security.process_attrs import apply_cpu_affinity

        apply_cpu_affinity(final)
    # Python ignores SIGPIPE and SIGXFSZ; ignored signals survive execve, so restore the defaults.
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    try:
        os.execve(executable, process["args"], dict(e.split("=", 1) for e in env if "=" in e))
    except OSError as err:
        os.write(2, f"exec {executable}: {err.strerror}\n".encode())
    os._exit(127)
