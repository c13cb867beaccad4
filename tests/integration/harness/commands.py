"""Running client commands: plainly, in the background, or on a pseudo-terminal (for `-t`/`-it`)."""

from __future__ import annotations

import os
import select
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

DEFAULT_TIMEOUT = 30.0
T = TypeVar("T")


@dataclass
class Result:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (f"$ {shlex.join(self.argv)}\nexit {self.returncode}\n"
                f"stdout: {self.stdout.strip()}\nstderr: {self.stderr.strip()}")

    def check(self) -> Result:
        if self.returncode != 0:
            raise AssertionError(self.describe())
        return self


class Background:
    """A client command started now whose result is collected by `wait()`. Output goes through files, not
    pipes, so a daemon or container that inherits stdout (a shim, conmon) cannot keep the caller waiting."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None, input: str | None = None) -> None:
        self.argv = list(argv)
        self._out = tempfile.TemporaryFile()  # noqa: SIM115  (closed by wait())
        self._err = tempfile.TemporaryFile()  # noqa: SIM115
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL if input is None else subprocess.PIPE,
                                     stdout=self._out, stderr=self._err, env=env)
        if input is not None:
            assert self.proc.stdin is not None
            self.proc.stdin.write(input.encode())
            self.proc.stdin.close()

    def wait(self, timeout: float = DEFAULT_TIMEOUT) -> Result:
        try:
            returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        finally:
            outputs = []
            for f in (self._out, self._err):
                f.seek(0)
                outputs.append(f.read().decode(errors="replace"))
                f.close()
        return Result(self.argv, returncode, *outputs)


def run(argv: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT, env: Mapping[str, str] | None = None,
        input: str | None = None) -> Result:
    """Run to completion (see Background)."""
    return Background(argv, env, input).wait(timeout)


def run_in_pty(argv: Sequence[str], *, send: str | None = None, after: str | None = None,
               timeout: float = DEFAULT_TIMEOUT, env: Mapping[str, str] | None = None) -> Result:
    """Run with stdin/stdout/stderr on a fresh pseudo-terminal, as a user at a terminal would.

    `send` is typed once `after` has appeared in the output (at once when `after` is None). Returns when
    the command exits; the terminal's output (both streams, with \\r\\n line ends) is in `stdout`."""
    master, slave = os.openpty()
    try:
        proc = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave, env=env,
                                start_new_session=True)
    finally:
        os.close(slave)
    output = b""
    pending = send.encode() if send is not None else None
    deadline = time.monotonic() + timeout
    try:
        while True:
            if pending is not None and (after is None or after.encode() in output):
                os.write(master, pending)
                pending = None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"$ {shlex.join(argv)} still running after {timeout}s; terminal: {output!r}")
            ready, _, _ = select.select([master], [], [], min(remaining, 0.2))
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every holder of the terminal is gone
                    chunk = b""
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        returncode = proc.wait(max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return Result(list(argv), returncode, output.decode(errors="replace"), "")


def wait_until(predicate: Callable[[], T], what: str, timeout: float = 10.0, interval: float = 0.05,
               raise_on_timeout: bool = True) -> T:
    """Poll `predicate` until it returns something truthy (returned); on timeout fail naming `what`, or
    return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            if not value and raise_on_timeout:
                raise AssertionError(f"timed out after {timeout}s waiting for {what}")
            return value
        time.sleep(interval)


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
