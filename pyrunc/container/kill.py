"""kill: signal the container's init (or every process of its cgroup), guarding against pid reuse."""

from __future__ import annotations

import os
import select

# The C modules: `signal` wraps `_signal` in enums whose import costs milliseconds at start-up, and the
# ctypes layer is not needed for pidfds, which os and _signal offer.
from _signal import SIGKILL, pidfd_send_signal

from ..errors import InvalidState
from ..state import PAUSED, STOPPED, Container


def _open_init(container: Container) -> int | None:
    """A pidfd of the container's init, or None when it is gone (or its pid now names another process)."""
    try:
        pidfd = os.pidfd_open(container.pid)
    except OSError:
        return None
    # Opened first, checked second: if the start time still matches, the pidfd is the init's.
    if not container.init_alive():
        os.close(pidfd)
        return None
    return pidfd


def signal_container(container: Container, sig: int, all_processes: bool = False) -> None:
    status = container.status()
    if status == STOPPED:
        raise InvalidState("container not running")
    cgroup = container.cgroup_manager()
    if all_processes and cgroup is not None:
        cgroup.signal_all(sig)
    else:
        pidfd = _open_init(container)
        if pidfd is None:
            raise InvalidState("container not running")
        try:
            pidfd_send_signal(pidfd, sig)
        finally:
            os.close(pidfd)
    if status == PAUSED and sig == SIGKILL and cgroup is not None:
        cgroup.thaw()  # a frozen process cannot die


def kill_and_wait(container: Container, timeout: float = 10.0) -> None:
    """SIGKILL the container (every process when it shares the host's pid namespace) and wait for the init."""
    pidfd = _open_init(container)
    cgroup = container.cgroup_manager()
    if cgroup is not None and not container.data.get("own_pid_namespace"):
        cgroup.signal_all(SIGKILL)
    if pidfd is None:
        return
    try:
        pidfd_send_signal(pidfd, SIGKILL)
        if cgroup is not None and cgroup.is_frozen():
            cgroup.thaw()
        # A pidfd polls readable once the process has exited (even while it stays an unreaped zombie).
        select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
