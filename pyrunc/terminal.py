"""Terminals: the container's pty, the console socket, and the foreground proxy.

With `process.terminal`, the process inside the container gets a new pty of the container's own devpts
instance: the slave becomes its stdin/stdout/stderr and controlling terminal (and, for the init, is bound
onto /dev/console), and the master goes to the runtime, which hands it to `--console-socket` the way
runc does (one SCM_RIGHTS descriptor, the payload being the master's name) or, in the foreground, copies
it to and from the user's terminal (`ConsoleProxy`).
"""

from __future__ import annotations

import _signal
import errno
import fcntl
import os
import struct
import termios

from . import unixsock
from .errors import PyruncError
from .inroot import Root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .process.context import InitContext
    from .process.protocol import Channel

#: ioctls of linux/tty.h not in the termios module: unlock the slave; open the slave from the master
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441
#: the name runc sends with the master (`console.NewPty` opens /dev/ptmx); receivers only log it
MASTER_NAME = b"/dev/ptmx"
_PTMX_PATHS = ("dev/ptmx", "dev/pts/ptmx")


class TerminalError(PyruncError):
    pass


def open_pty(root: str) -> tuple[int, int]:
    """A new pty of the devpts instance behind `<root>/dev/ptmx`: (master, slave), both close-on-exec.

    The ptmx path is resolved inside `root` (symlinks cannot lead out of it) and the slave is opened
    from the master itself (TIOCGPTPEER), never through a path the container could swap.
    """
    flags = os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC
    with Root(root) as container_root:
        master = -1
        for path in _PTMX_PATHS:
            try:
                master = container_root.open(path, flags)
                break
            except FileNotFoundError:
                continue
        if master < 0:
            raise TerminalError(f"cannot allocate a terminal: no /dev/ptmx nor /dev/pts/ptmx in {root}")
    try:
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))
        slave = fcntl.ioctl(master, TIOCGPTPEER, flags)
    except OSError as err:
        os.close(master)
        raise TerminalError(f"cannot allocate a terminal: {err.strerror}") from None
    return master, slave


def set_size(fd: int, size: dict | None) -> None:
    """Apply `process.consoleSize` ({"height": rows, "width": columns}) to a pty."""
    if size and size.get("height") and size.get("width"):
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size["height"], size["width"], 0, 0))


def become_console_owner(slave: int, uid: int) -> None:
    """Make the slave the stdio and controlling terminal of this process (a session leader, after setsid).

    Like runc, the slave is given to the process's user so it can control its terminal; a uid that the
    user namespace does not map (EINVAL) or a rootless runtime (EPERM) leaves the owner alone.
    """
    try:
        os.fchown(slave, uid, -1)
    except OSError as err:
        if err.errno not in (errno.EINVAL, errno.EPERM):
            raise
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    if slave > 2:
        os.close(slave)


def setup_console(chan: Channel, ctx: InitContext) -> None:
    """In the init, after the rootfs mounts and before pivot_root: pty, /dev/console, master to the parent."""
    from .process.protocol import Msg
    from .rootfs import mount_console  # imported by the parent already (process/init.py): no file access

    process = ctx.config["process"]
    master, slave = open_pty(ctx.rootfs)
    try:
        set_size(master, process.get("consoleSize"))
        mount_console(slave, ctx.rootfs)
        chan.send(Msg.CONSOLE, fds=[master])
    finally:
        os.close(master)
    become_console_owner(slave, (process.get("user") or {}).get("uid", 0))


def connect_console_socket(path: str) -> unixsock.Socket:
    """Connect to `--console-socket` (runc's wording when nobody listens there)."""
    try:
        return unixsock.connect(path)
    except OSError as err:
        reason = (err.strerror or str(err)).lower()
        raise TerminalError(f"dial unix {path}: connect: {reason}") from None


def send_master(sock: unixsock.Socket, master: int) -> None:
    """Send the pty master as containerd's and conmon's receivers expect: one fd, its name as payload."""
    try:
        unixsock.send_fds(sock, MASTER_NAME, [master])
    except OSError as err:
        raise TerminalError(f"sending the console to the console socket: {err.strerror or err}") from None


def send_console_master(path: str, master: int) -> None:
    """Connect to the console socket at `path` and hand it the pty master."""
    sock = connect_console_socket(path)
    try:
        send_master(sock, master)
    finally:
        sock.close()


#: the signals the foreground forwards: all that can be caught, except SIGCHLD (ours) and hardware faults
_FORWARDED = _signal.valid_signals() - {_signal.SIGKILL, _signal.SIGSTOP, _signal.SIGCHLD, _signal.SIGSEGV,
                                       _signal.SIGBUS, _signal.SIGILL, _signal.SIGFPE}


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


class ConsoleProxy:
    """Copy the user's terminal to and from the pty master until the process exits.

    The user's terminal (the first of stdin/stdout/stderr that is one) is put in raw mode, so keys such
    as ^C reach the container's terminal instead of signalling us, and restored at the end. Signals sent
    to us arrive through a wakeup pipe: SIGWINCH resizes the pty, the others are forwarded.
    """

    def __init__(self, master: int) -> None:
        self.master = master
        self.host_tty = next((fd for fd in (0, 1, 2) if os.isatty(fd)), -1)
        self.saved_mode: list | None = None

    def _resize(self) -> None:
        if self.host_tty >= 0:
            size = fcntl.ioctl(self.host_tty, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)

    def run(self, reap: Callable[[], int | None], forward: Callable[[int], None]) -> int:
        """Proxy until `reap()` returns the exit code of the process; `forward(sig)` passes signals on."""
        import select

        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        previous = {sig: _signal.signal(sig, lambda *_: None) for sig in (*_FORWARDED, _signal.SIGCHLD)}
        old_wakeup = _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, previous)
        if self.host_tty >= 0:
            import tty

            self.saved_mode = termios.tcgetattr(self.host_tty)
            tty.setraw(self.host_tty)
            self._resize()
        readers = [wake_r, self.master] + ([0] if _is_open(0) else [])
        try:
            while True:
                code = reap()
                if code is not None:
                    self._drain()
                    return code
                try:
                    ready, _, _ = select.select(readers, [], [])
                except InterruptedError:
                    continue
                if wake_r in ready:
                    for sig in os.read(wake_r, 512):
                        if sig == _signal.SIGWINCH:
                            self._resize()
                        elif sig != _signal.SIGCHLD:
                            forward(sig)
                if self.master in ready and not self._copy(self.master, 1):
                    readers.remove(self.master)
                if 0 in ready and not self._copy(0, self.master):
                    readers.remove(0)
        finally:
            if self.saved_mode is not None:
                termios.tcsetattr(self.host_tty, termios.TCSADRAIN, self.saved_mode)
            _signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                _signal.signal(sig, handler)
            os.close(wake_r)
            os.close(wake_w)

    @staticmethod
    def _copy(src: int, dst: int) -> bool:
        """Move one chunk; False at the end of `src` (EOF, or EIO once every slave is closed)."""
        try:
            data = os.read(src, 65536)
        except OSError:
            return False
        if not data:
            return False
        try:
            while data:
                data = data[os.write(dst, data):]
        except OSError:
            return False
        return True

    def _drain(self) -> None:
        """Output the process left in the pty after it exited (non-blocking: a daemon may hold the slave)."""
        os.set_blocking(self.master, False)
        try:
            while self._copy(self.master, 1):
                pass
        finally:
            os.set_blocking(self.master, True)
