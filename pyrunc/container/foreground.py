"""`run` and `exec` without --detach: forward signals to the process and wait for its exit status.

With a terminal and no console socket, the user's terminal is proxied to the process's pty meanwhile
(`terminal.ConsoleProxy`).
"""

from __future__ import annotations

import _signal
import os

#: Every signal a process may catch: the ones `run` forwards (SIGCHLD is for us).
_FORWARDED = _signal.valid_signals() - {_signal.SIGKILL, _signal.SIGSTOP}


def become_subreaper() -> None:
    """Orphans of our children (the init, once stage-1 exits) are reparented to us, so we can wait for it."""
    from .. import syscalls

    syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)


def reap(init_pid: int) -> int | None:
    """Reap exited children without blocking; runc's exit code (128+N for signal N) once `init_pid` is one."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return 1  # the init was never ours to wait for
        if pid == 0:
            return None
        if pid == init_pid:
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code


def forward(init_pid: int, sig: int) -> None:
    try:
        os.kill(init_pid, sig)
    except ProcessLookupError:
        pass


def wait_forwarding_signals(init_pid: int, console_master: int = -1) -> int:
    """Wait for the init, forwarding every signal we receive; return runc's exit code (128+N for signal N).

    With `console_master`, the user's terminal is proxied to that pty until the init exits.
    """
    if console_master >= 0:
        from ..terminal import ConsoleProxy

        return ConsoleProxy(console_master).run(lambda: reap(init_pid), lambda sig: forward(init_pid, sig))
    _signal.pthread_sigmask(_signal.SIG_BLOCK, _FORWARDED)
    try:
        while True:
            code = reap(init_pid)
            if code is not None:
                return code
            info = _signal.sigwaitinfo(_FORWARDED)
            if info.si_signo != _signal.SIGCHLD:
                forward(init_pid, info.si_signo)
    finally:
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, _FORWARDED)
