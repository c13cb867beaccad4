"""pyrunc.terminal without containers: pty allocation, console socket hand-over, the foreground proxy."""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import termios
from pathlib import Path

import pytest

from pyrunc import terminal
from pyrunc.config.validate import check_terminal_flags
from pyrunc.errors import ConfigError


@pytest.mark.parametrize(("terminal_on", "sock", "detach", "message"), [
    (True, "", True, "cannot allocate tty if runc will detach without setting console socket"),
    (False, "/s", True, "cannot use console socket if runc will not detach or allocate tty"),
    (True, "/s", False, "cannot use console socket if runc will not detach or allocate tty"),
])
def test_terminal_flag_errors(terminal_on: bool, sock: str, detach: bool, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_terminal_flags(terminal_on, sock, detach)


@pytest.mark.parametrize(("terminal_on", "sock", "detach"), [(True, "/s", True), (True, "", False),
                                                             (False, "", True), (False, "", False)])
def test_terminal_flags_accepted(terminal_on: bool, sock: str, detach: bool) -> None:
    check_terminal_flags(terminal_on, sock, detach)


def test_open_pty_pair_talks_and_takes_the_size() -> None:
    master, slave = terminal.open_pty("/")
    try:
        terminal.set_size(master, {"height": 12, "width": 34})
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(slave, termios.TIOCGWINSZ, b"\0" * 8))
        assert (rows, cols) == (12, 34)
        os.write(master, b"ping\n")
        assert os.read(slave, 100) == b"ping\n"
        assert not os.get_inheritable(master) and not os.get_inheritable(slave)
    finally:
        os.close(master)
        os.close(slave)


def test_open_pty_without_ptmx(tmp_path: Path) -> None:
    with pytest.raises(terminal.TerminalError, match="no /dev/ptmx"):
        terminal.open_pty(str(tmp_path))


def test_master_arrives_on_the_console_socket_with_runc_payload(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "console.sock"))
    listener.listen(1)
    master, slave = terminal.open_pty("/")
    try:
        terminal.send_console_master(str(tmp_path / "console.sock"), master)
        conn, _ = listener.accept()
        with conn:
            name, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
        assert name == b"/dev/ptmx" and len(fds) == 1
        assert os.fstat(fds[0]).st_rdev == os.fstat(master).st_rdev
        os.write(fds[0], b"x\n")
        assert os.read(slave, 10) == b"x\n"
        os.close(fds[0])
    finally:
        os.close(master)
        os.close(slave)
        listener.close()


def test_console_socket_pointing_nowhere(tmp_path: Path) -> None:
    with pytest.raises(terminal.TerminalError, match=f"dial unix {tmp_path}/none: connect: no such file"):
        terminal.connect_console_socket(str(tmp_path / "none"))


def test_proxy_copies_output_and_returns_the_exit_code() -> None:
    """In a child with stdin /dev/null and stdout a pipe: the pty's output reaches stdout, the code returns."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        code = 99
        try:
            os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
            os.dup2(write_end, 1)
            master, slave = terminal.open_pty("/")
            writer = os.fork()
            if writer == 0:
                os.write(slave, b"from the container\n")
                os._exit(3)
            os.close(slave)

            def reap() -> int | None:
                pid, status = os.waitpid(writer, os.WNOHANG)
                return os.waitstatus_to_exitcode(status) if pid else None

            code = terminal.ConsoleProxy(master).run(reap, lambda sig: None)
        finally:
            os._exit(code)
    os.close(write_end)
    output = b""
    while chunk := os.read(read_end, 4096):
        output += chunk
    os.close(read_end)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 3
    assert b"from the container" in output
