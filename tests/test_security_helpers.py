"""Running one security step in a forked child, the way pyrunc's init does, and collecting what it saw.

`run_child(step, exec_argv)` forks; the child runs `step()` then either execs busybox with `exec_argv`
(stdout/stderr go to pipes) or writes `step()`'s JSON-able result to stdout. Other test_security_*
modules import it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

import pytest

BUSYBOX = "/bin/busybox"
CHILD_FAILED = 70


@dataclass
class ChildResult:
    status: int
    out: str
    err: str

    def json(self) -> object:
        assert self.status == 0, f"child failed ({self.status}): {self.err}"
        return json.loads(self.out)


def _child(step: Callable[[], object], exec_argv: list[str] | None, out_fd: int, err_fd: int) -> None:
    try:
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        result = step()
        if exec_argv:
            os.execv(BUSYBOX, exec_argv)
        os.write(1, json.dumps(result).encode())
        os._exit(0)
    except BaseException as e:  # the child must never return into pytest
        os.write(2, f"{type(e).__name__}: {e}\n{traceback.format_exc()}".encode())
    finally:
        os._exit(CHILD_FAILED)


def run_child(step: Callable[[], object], exec_argv: list[str] | None = None, timeout: float = 10.0) -> ChildResult:
    if not os.path.exists(BUSYBOX):
        pytest.skip("busybox-static is not installed")
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(out_r)
        os.close(err_r)
        _child(step, exec_argv, out_w, err_w)
    os.close(out_w)
    os.close(err_w)
    chunks: dict[int, bytes] = {out_r: b"", err_r: b""}
    open_fds = [out_r, err_r]
    deadline = time.monotonic() + timeout
    try:
        while open_fds:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select(open_fds, [], [], max(remaining, 0))
            if not ready:
                os.kill(pid, signal.SIGKILL)
                raise AssertionError(f"child {pid} still running after {timeout}s")
            for fd in ready:
                data = os.read(fd, 65536)
                if data:
                    chunks[fd] += data
                else:
                    open_fds.remove(fd)
    finally:
        os.close(out_r)
        os.close(err_r)
        _, status = os.waitpid(pid, 0)
    return ChildResult(os.waitstatus_to_exitcode(status), chunks[out_r].decode(), chunks[err_r].decode())


def status_fields(text: str) -> dict[str, str]:
    """/proc/PID/status text → {"CapEff": "0000...", ...}."""
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_child_failure_is_reported() -> None:
    def step() -> None:
        raise ValueError("boom")

    result = run_child(step)
    assert result.status == CHILD_FAILED
    assert "ValueError: boom" in result.err


def test_child_result_and_exec() -> None:
    assert run_child(lambda: os.getpid() != 1).json() is True
    result = run_child(lambda: None, ["busybox", "echo", "hello"])
    assert (result.status, result.out) == (0, "hello\n")
