"""`run` without --detach: forward signals to the container's init and wait for its exit status."""

from __future__ import annotations

import os
import signal

#: Every signal a process may catch: the ones `run` forwards (SIGCHLD is for us).
_FORWARDED = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}


def become_subreaper() -> None:
    """Orphans of our children (the init, once stage-1 exits) are reparented to us, so we can wait for it."""
    from .. import syscalls

    syscalls.prctl(syscalls.PR_SET_CHILD_SUBREAPER, 1)


def wait_forwarding_signals(init_pid: int) -> int:
    """Wait for the init, forwarding every signal we receive; return runc's exit code (128+N for signal N)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _FORWARDED)
    try:
        while True:
            while True:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return 1  # the init was never ours to wait for
                if pid == 0:
                    break
                if pid == init_pid:
                    code = os.waitstatus_to_exitcode(status)
                    return 128 - code if code < 0 else code
            info = signal.sigwaitinfo(_FORWARDED)
            if info.si_signo != signal.SIGCHLD:
                try:
                    os.kill(init_pid, info.si_signo)
                except ProcessLookupError:
                    pass
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORWARDED)
