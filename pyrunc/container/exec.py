"""exec: run a new process inside a running container (the parent's side; the child is process/exec_init.py).

The process is described by `--process process.json` (taken as is, like runc) or by the container's own
`process` with the command line's arguments and flags applied. Descriptors of the init's namespaces and
root are opened before forking and the init is checked to still be the recorded one (its start time),
so a recycled pid cannot send the new process into another container.
"""

from __future__ import annotations

import _signal
import gc
import os

from .. import fastjson, unixsock
from ..errors import ConfigError, InitError, InvalidState, UsageError
from ..namespaces import PROC_NAMES
from ..state import CREATED, PAUSED, STOPPED, Container

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..process.exec_init import ExecContext

#: the order of joining: the user namespace first (it grants the right to join the others), mount last
_JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


class ExecOptions:
    """The flags of exec that are not part of the process itself."""

    def __init__(self, o: dict) -> None:
        self.console_socket: str = o.get("console_socket") or ""
        self.detach: bool = o.get("detach", False)
        self.pid_file: str = o.get("pid_file") or ""
        self.preserve_fds: int = o.get("preserve_fds") or 0
        self.ignore_paused: bool = o.get("ignore_paused", False)
        self.sub_cgroups = parse_sub_cgroups(o.get("cgroup") or [])


def parse_sub_cgroups(args: list[str]) -> dict[str, str]:
    """`--cgroup [<controller>[,<controller>...]:]<path>`, repeatable: sub-cgroup by controller, "" for a
    path without prefix (then the only --cgroup), as runc reads them."""
    subs: dict[str, str] = {}
    for arg in args:
        parts = arg.split(":")
        if len(parts) > 2:
            raise UsageError(f"invalid --cgroup argument: {arg}")
        if len(parts) == 1:
            if len(args) != 1:
                raise UsageError(f"invalid --cgroup argument: {arg} (missing <controller>: prefix)")
            subs[""] = arg
            continue
        for controller in parts[0].split(","):
            if not controller:
                raise UsageError(f"invalid --cgroup argument: {arg} (empty <controller> prefix)")
            if controller in subs:
                raise UsageError(f"invalid --cgroup argument(s): controller {controller} specified multiple times")
            subs[controller] = parts[1]
    return subs


def _parse_id(text: str, what: str) -> int:
    if not text.isdigit():
        raise UsageError(f"exec --user: {what} {text!r} is not a number (format: <uid>[:<gid>])")
    return int(text)


def process_from_flags(config: dict, o: dict) -> dict:
    """The container's process with runc's exec flags applied (runc's `getProcess` without --process)."""
    process = fastjson.loads(fastjson.dumps(config["process"]))  # a deep copy (`copy` costs a millisecond)
    process["args"] = list(o.get("command") or ())
    if not process["args"]:
        raise UsageError("process args cannot be empty")
    if o.get("cwd"):
        process["cwd"] = o["cwd"]
    if o.get("apparmor"):
        process["apparmorProfile"] = o["apparmor"]
    if o.get("process_label"):
        process["selinuxLabel"] = o["process_label"]
    if o.get("cap"):
        caps = process.setdefault("capabilities", {})
        for kind in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            caps[kind] = [*caps.get(kind, ()), *o["cap"]]
    process["env"] = [*process.get("env", ()), *(o.get("env") or ())]
    process["terminal"] = bool(o.get("tty"))
    if o.get("no_new_privs"):
        process["noNewPrivileges"] = True
    user = process.setdefault("user", {"uid": 0, "gid": 0})
    if o.get("user"):
        uid, _, gid = o["user"].partition(":")
        user["uid"] = _parse_id(uid, "uid")
        if gid:
            user["gid"] = _parse_id(gid, "gid")
    for gid in o.get("additional_gids") or ():
        user.setdefault("additionalGids", []).append(_parse_id(gid, "additional gid"))
    from ..config.validate import check_process

    check_process(process, "exec", "")
    return process


def process_from_file(path: str, o: dict) -> dict:
    """`--process FILE`: the whole process, checked against the spec's schema; no defaults from the container."""
    from ..config import load_process

    process = load_process(path)
    if not process.get("args"):
        raise ConfigError(f"{path}: args must not be empty")
    if o.get("tty"):
        process["terminal"] = True
    return process


def check_can_exec(container: Container, ignore_paused: bool) -> None:
    status = container.status()
    if status == STOPPED:
        raise InvalidState("cannot exec in a stopped container")
    if status == CREATED:
        raise InvalidState("cannot exec in a created container: start it first")
    if status == PAUSED and not ignore_paused:
        raise InvalidState("cannot exec in a paused container (use --ignore-paused to override)")


def _check_preserved(count: int) -> None:
    """The descriptors to pass must be open: otherwise one of ours could take their number."""
    import fcntl

    for fd in range(3, 3 + count):
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            raise UsageError(f"--preserve-fds {count}: descriptor {fd} is not open") from None


def _open_namespaces(pid: int) -> list[tuple[str, int]]:
    """Descriptors of the init's namespaces that are not already ours, in joining order."""
    opened: list[tuple[str, int]] = []
    try:
        for kind in _JOIN_ORDER:
            name = PROC_NAMES[kind]
            try:
                fd = os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # a namespace type this kernel lacks (or the init just exited: checked below)
            theirs, ours = os.fstat(fd), os.stat(f"/proc/self/ns/{name}")
            if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
                os.close(fd)
            else:
                opened.append((kind, fd))
    except BaseException:
        for _, fd in opened:
            os.close(fd)
        raise
    return opened


def exec_process(container: Container, process: dict, opts: ExecOptions) -> int:
    """Start `process` in the container; return its exit code, or 0 once it runs with --detach."""
    from ..config.validate import check_terminal_flags
    from ..terminal import connect_console_socket

    check_can_exec(container, opts.ignore_paused)
    terminal = bool(process.get("terminal"))
    check_terminal_flags(terminal, opts.console_socket, opts.detach)
    _check_preserved(opts.preserve_fds)
    # Like runc, an unreachable console socket fails before anything starts.
    console_sock = connect_console_socket(opts.console_socket) if opts.console_socket else None
    try:
        ctx = _prepare(container, process, opts)
        try:
            if not opts.detach:
                from .foreground import become_subreaper

                become_subreaper()
            pid, master = _launch(container, ctx, console_sock)
        finally:
            for _, fd in ctx.namespaces:
                os.close(fd)
            os.close(ctx.root_fd)
    finally:
        if console_sock is not None:
            console_sock.close()
    if opts.pid_file:
        from .create import write_pid_file

        write_pid_file(opts.pid_file, pid)
    if opts.detach:
        return 0
    from .foreground import wait_forwarding_signals

    try:
        return wait_forwarding_signals(pid, console_master=master)
    finally:
        if master >= 0:
            os.close(master)


def _prepare(container: Container, process: dict, opts: ExecOptions) -> ExecContext:
    """Validate the process's confinement and open the init's namespaces and root (checked not recycled)."""
    from ..process.exec_init import ExecContext
    from ..security import identity, lsm, rlimits

    config = container.config
    linux = config.get("linux") or {}
    capabilities = identity.parse_capabilities(
        process["capabilities"] if "capabilities" in process else config["process"].get("capabilities"))
    limits = process.get("rlimits") or config["process"].get("rlimits") or []
    rlimits.check_rlimits(limits)
    lsm.check(process, {})
    seccomp = None
    if linux.get("seccomp"):
        from ..security import seccomp as seccomp_module

        seccomp = seccomp_module.prepare(linux["seccomp"])
    cgroup = container.cgroup_manager()
    if cgroup is not None and opts.sub_cgroups:
        cgroup = cgroup.sub_cgroups(opts.sub_cgroups)
    namespaces = _open_namespaces(container.pid)
    try:
        root_fd = os.open(f"/proc/{container.pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        root_fd = -1
    # Opened first, checked second: if the start time still matches, the descriptors are the init's.
    if root_fd < 0 or not container.init_alive():
        for _, fd in namespaces:
            os.close(fd)
        if root_fd >= 0:
            os.close(root_fd)
        raise InvalidState("cannot exec in a stopped container")
    return ExecContext(process=process, namespaces=namespaces, root_fd=root_fd, cgroup=cgroup,
                       capabilities=capabilities, seccomp=seccomp, rlimits=limits, preserve_fds=opts.preserve_fds)


def _launch(container: Container, ctx: ExecContext, console_sock: unixsock.Socket | None) -> tuple[int, int]:
    """Fork stage-1 and follow the protocol until the process has exec'd: (host pid, pty master or -1)."""
    from ..process.clone import fork_stage1
    from ..process.exec_init import exec_stage1
    from ..process.protocol import Channel, Msg

    parent_sock, child_sock = unixsock.seqpacket_pair()
    gc.freeze()
    stage1, _ = fork_stage1(ctx.cgroup)
    if stage1 == 0:
        parent_sock.close()
        exec_stage1(Channel(child_sock), ctx)
    child_sock.close()
    chan = Channel(parent_sock)
    pid, master, stage1_reaped, ready = 0, -1, False, False
    try:
        while True:
            # Stage-1 (INIT_PID) and the process (READY) write concurrently, in either order; the end of
            # the channel comes once stage-1 has exited and the process has exec'd (close-on-exec).
            msg, payload, fds = chan.receive_or_eof()
            if msg is None:
                if ready and pid:
                    return pid, master
                raise InitError("the exec'd process exited before it was ready")
            if msg == Msg.INIT_PID:
                pid = payload["pid"]
                os.waitpid(stage1, 0)
                stage1_reaped = True
            elif msg == Msg.CONSOLE:
                master = fds[0]
                if console_sock is not None:
                    from ..terminal import send_master

                    send_master(console_sock, master)
                    os.close(master)
                    master = -1
            elif msg == Msg.SECCOMP_LISTENER:
                _send_seccomp_listener(container, fds)
                chan.send(Msg.SECCOMP_DONE)
            elif msg == Msg.READY:
                ready = True
    except BaseException:
        if master >= 0:
            os.close(master)
        _kill(pid)  # our child when we are its subreaper (foreground); else the host's init reaps it
        if not stage1_reaped:
            _kill(stage1)
        raise
    finally:
        chan.close()


def _send_seccomp_listener(container: Container, fds: list[int]) -> None:
    from ..security import seccomp

    spec = container.config["linux"]["seccomp"]
    try:
        seccomp.send_listener(spec["listenerPath"], fds[0], container.oci_state(), spec.get("listenerMetadata", ""))
    finally:
        for fd in fds:
            os.close(fd)


def _kill(pid: int) -> None:
    """SIGKILL a process we started, and reap it if it is our child."""
    if not pid:
        return
    try:
        os.kill(pid, _signal.SIGKILL)
    except ProcessLookupError:
        return
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
