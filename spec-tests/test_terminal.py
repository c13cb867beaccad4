"""`process.terminal`: the pty master handed to `--console-socket`, the pty as the process's terminal.

runtime-spec config.md: "terminal (bool, OPTIONAL) specifies whether a terminal is attached to the
process"; "consoleSize (object, OPTIONAL) specifies the console size in characters of the terminal".
The console socket is runc's interface (used by containerd and conmon): one SCM_RIGHTS descriptor.
"""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Bundle, Runtime, new_id


class ConsoleSocket:
    """What containerd's shim does: listen on an AF_UNIX socket, receive one descriptor (the pty master)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(1)
        self.sock.settimeout(10)

    def receive(self) -> tuple[bytes, int]:
        conn, _ = self.sock.accept()
        with conn:
            name, fds, _flags, _addr = socket.recv_fds(conn, 4096, 4)
        assert len(fds) == 1, fds
        return name, fds[0]

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleSocket]:
    receiver = ConsoleSocket(tmp_path / "console.sock")
    yield receiver
    receiver.close()


def read_until(fd: int, wanted: bytes, timeout: float = 10.0) -> bytes:
    """Everything read from the pty master until `wanted` appears."""
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{wanted!r} never came; got {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    assert wanted in seen, seen
    return seen


def terminal_bundle(bundle: Bundle, *args: str) -> Bundle:
    bundle.config["process"]["terminal"] = True
    bundle.set_args(*(args or ("sh",)))
    return bundle


def test_console_master_echoes_what_is_typed(rt: Runtime, bundle: Bundle, console: ConsoleSocket) -> None:
    cid = new_id()
    rt.create(cid, terminal_bundle(bundle), "--console-socket", str(console.path))
    _name, master = console.receive()
    try:
        rt.start(cid)
        os.write(master, b"echo typed-$((6*7)); tty; ls -l /dev/console; echo end-$((1+1))\n")
        out = read_until(master, b"end-2")
        assert b"typed-42" in out
        assert b"/dev/pts/" in out
        assert b"136," in out  # /dev/console is a bind of the pty slave (a pts device, major 136)
        os.write(master, b"exit 3\n")
        rt.wait_status(cid, "stopped")
    finally:
        os.close(master)


def test_console_size(rt: Runtime, bundle: Bundle, console: ConsoleSocket) -> None:
    terminal_bundle(bundle, "sh", "-c", "stty size; sleep 1")
    bundle.config["process"]["consoleSize"] = {"height": 21, "width": 67}
    cid = new_id()
    rt.create(cid, bundle, "--console-socket", str(console.path))
    _name, master = console.receive()
    try:
        rt.start(cid)
        assert b"21 67" in read_until(master, b"21 67")
    finally:
        os.close(master)


def test_exec_with_a_terminal(rt: Runtime, bundle: Bundle, console: ConsoleSocket) -> None:
    bundle.set_args("sleep", "1000")
    cid = new_id()
    rt.create(cid, bundle)
    rt.start(cid)
    rt("exec", "--tty", "--detach", "--console-socket", str(console.path), cid, "sh", check=True)
    _name, master = console.receive()
    try:
        os.write(master, b"tty; id -u\n")
        assert b"/dev/pts/" in read_until(master, b"/dev/pts/")
        os.write(master, b"exit\n")
    finally:
        os.close(master)


def test_create_terminal_without_console_socket_fails(rt: Runtime, bundle: Bundle) -> None:
    cid = new_id()
    result = rt.create(cid, terminal_bundle(bundle), check=False)
    assert result.returncode != 0
    assert "console socket" in result.stderr
    assert cid not in rt.container_ids()


def test_console_socket_without_terminal_fails(rt: Runtime, bundle: Bundle, console: ConsoleSocket) -> None:
    cid = new_id()
    result = rt.create(cid, bundle, "--console-socket", str(console.path), check=False)
    assert result.returncode != 0
    assert "console socket" in result.stderr
    assert cid not in rt.container_ids()


def test_console_socket_pointing_nowhere(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    cid = new_id()
    result = rt.create(cid, terminal_bundle(bundle), "--console-socket", str(tmp_path / "nobody"), check=False)
    assert result.returncode != 0
    assert "nobody" in result.stderr
    if not rt.is_runc:
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert cid not in rt.container_ids()


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a terminal")
def test_run_in_the_foreground_proxies_the_terminal(rt: Runtime, bundle: Bundle) -> None:
    """`run` with a terminal and no console socket attaches the user's terminal (as `runc run` does)."""
    cid = new_id()
    terminal_bundle(bundle).write(cid)
    command = f"{rt.path} --root {rt.root} run --bundle {bundle.path} {cid}; echo rc=$?"
    typed = b"echo typed-$((6*7))\rexit 5\r"
    with subprocess.Popen(["script", "-qec", command, "/dev/null"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        time.sleep(1.5)
        out, _ = proc.communicate(typed, timeout=20)
    assert b"typed-42" in out
    assert b"rc=5" in out
