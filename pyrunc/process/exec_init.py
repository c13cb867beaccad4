"""The "setns init" of `exec`: a new process joins a running container, then execs the user's program.

Stage-1 (forked from pyrunc exec) joins the container's cgroup and limits while it still holds the host's
privileges, then the container's namespaces from descriptors the parent opened (user first, so it owns
the right to enter the others), and forks the process, which is then inside the pid namespace too.
The process takes the init's root directory (a descriptor of /proc/<init>/root, so a container without
pivot_root is joined correctly too), its terminal, identity and privileges, checks that its working
directory is inside the container, keeps no descriptor of the host, and execs.

Nothing of the host may reach the container: both stages are non-dumpable from the start (so container
processes cannot ptrace them or open /proc/<pid>/fd of them), every descriptor other than stdio and
`--preserve-fds` is closed, and the working directory is verified after the chdir (CVE-2024-21626).
"""

from __future__ import annotations

import _signal
import os

# Everything the process needs is imported here, before the fork: after the chroot into the container,
# the host's Python packages are out of reach.
from .. import syscalls, terminal
from ..errors import InitError
from ..namespaces import CLONE_FLAGS
from ..security import identity, lsm, process_attrs
from ..security.rlimits import apply_rlimits
from . import execve
from .protocol import Channel, Msg

TYPE_CHECKING = False  # typing costs milliseconds at start-up; NoReturn only annotates
if TYPE_CHECKING:
    from typing import NoReturn


class ExecContext:
    """Everything the exec'd process needs, resolved and validated by the parent before it forks."""

    def __init__(self, *, process: dict, namespaces: list[tuple[str, int]], root_fd: int, cgroup: object | None,
                 capabilities: object, seccomp: object, rlimits: list, preserve_fds: int) -> None:
        #: the process to run (process.json, or the container's process with the command-line flags)
        self.process = process
        #: (type, descriptor) of the init's namespaces that differ from ours, the user namespace first
        self.namespaces = namespaces
        #: O_PATH descriptor of /proc/<init>/root
        self.root_fd = root_fd
        self.cgroup = cgroup
        self.capabilities = capabilities
        #: the container's prepared seccomp filter (or None)
        self.seccomp = seccomp
        self.rlimits = rlimits
        self.preserve_fds = preserve_fds


def exec_stage1(chan: Channel, ctx: ExecContext) -> NoReturn:
    """Entered right after the fork; never returns (the process execs, everything else exits)."""
    try:
        import gc

        gc.disable()
        syscalls.prctl(syscalls.PR_SET_DUMPABLE, 0)
        syscalls.prctl(syscalls.PR_SET_PDEATHSIG, _signal.SIGKILL)
        if ctx.cgroup is not None:
            ctx.cgroup.join(0)
        if ctx.rlimits:
            apply_rlimits(ctx.rlimits)
        _enter_namespaces(ctx.namespaces)
        pid = os.fork()
        if pid:
            chan.send(Msg.INIT_PID, pid=pid)
            os._exit(0)
        _exec_process(chan, ctx)
    except BaseException as err:
        chan.send_error(execve.describe(err))
    os._exit(1)


def _enter_namespaces(namespaces: list[tuple[str, int]]) -> None:
    for kind, fd in namespaces:
        syscalls.setns(fd, CLONE_FLAGS[kind], f"the container's {kind} namespace")
        if kind == "user":
            # Until then our host uid (unmapped in the container) would own whatever we create.
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)


def _exec_process(chan: Channel, ctx: ExecContext) -> NoReturn:
    """In the forked process, inside every namespace: become the container's process and exec."""
    process = ctx.process
    user = process.get("user") or {}
    os.setsid()
    os.fchdir(ctx.root_fd)
    os.chroot(".")
    os.close(ctx.root_fd)
    if process.get("terminal"):
        _setup_terminal(chan, process, user.get("uid", 0))
    env = execve.with_home(list(process.get("env") or ()), user.get("uid", 0))
    affinity = process.get("execCPUAffinity") or {}
    if affinity.get("initial"):
        process_attrs.apply_cpu_affinity(affinity["initial"])
    process_attrs.apply_scheduling(process)
    early_seccomp = execve.load_seccomp_before_identity(chan, ctx.seccomp, process)
    # Like runc: the cwd is entered while still root, and again as the user if root was refused
    # (a directory only the container's user may enter, e.g. on a root-squashing filesystem).
    in_cwd = _enter_cwd(process["cwd"], may_retry=True)
    identity.switch_identity(user, ctx.capabilities)
    if process.get("noNewPrivileges"):
        identity.set_no_new_privs()
    lsm.apply_exec_labels(process)
    if not in_cwd:
        _enter_cwd(process["cwd"], may_retry=False)
    executable = execve.find_executable(process["args"][0], env)
    if affinity.get("final"):
        process_attrs.apply_cpu_affinity(affinity["final"])
    _keep_only_stdio_and_preserved(chan, ctx.preserve_fds)
    if ctx.seccomp is not None and not early_seccomp:
        execve.load_seccomp(chan, ctx.seccomp)
    chan.send(Msg.READY)
    try:
        execve.execve_clean(executable, process["args"], env)
    except OSError as err:
        raise InitError(f'exec: "{process["args"][0]}": {(err.strerror or str(err)).lower()}') from None


def _setup_terminal(chan: Channel, process: dict, uid: int) -> None:
    master, slave = terminal.open_pty("/")
    try:
        terminal.set_size(master, process.get("consoleSize"))
        chan.send(Msg.CONSOLE, fds=[master])
    finally:
        os.close(master)
    terminal.become_console_owner(slave, uid)


def _enter_cwd(cwd: str, *, may_retry: bool) -> bool:
    """chdir to `cwd` and make sure it is inside the container's root (never a host directory).

    False when permission was refused and `may_retry` (the caller tries again as the process's user).
    """
    try:
        os.chdir(cwd)
    except PermissionError:
        if may_retry:
            return False
        raise InitError(f'chdir to cwd ("{cwd}") set in process failed: permission denied') from None
    except OSError as err:
        raise InitError(f'chdir to cwd ("{cwd}") set in process failed: {(err.strerror or "").lower()}') from None
    try:
        os.getcwd()  # glibc refuses ("(unreachable)") a directory outside our root with ENOENT
    except FileNotFoundError:
        raise InitError(f"cwd {cwd!r} is outside the container's root") from None
    return True


def _keep_only_stdio_and_preserved(chan: Channel, preserve_fds: int) -> None:
    """Close everything but stdio, the preserved descriptors (made inheritable) and the close-on-exec channel."""
    first_free = 3 + preserve_fds
    execve.close_fds_from(first_free, [chan.fileno()])
    for fd in range(3, first_free):
        if fd != chan.fileno():
            os.set_inheritable(fd, True)
