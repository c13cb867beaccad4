"""OOM notifications for `events`: v1 through an eventfd on memory.oom_control, v2 by polling memory.events.

Both watchers offer fileno() (for a select/poll loop) and wait(timeout) -> bool, True once per OOM.
"""

from __future__ import annotations

import os
import select

from pyrunc.cgroups import fs


class V1OomWatcher:
    def __init__(self, memory_dir: str) -> None:
        self.memory_dir = memory_dir
        self._efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        control = os.path.join(memory_dir, "memory.oom_control")
        try:
            self._control_fd = os.open(control, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            os.close(self._efd)
            raise
        try:
            fs.write(os.path.join(memory_dir, "cgroup.event_control"), f"{self._efd} {self._control_fd}")
        except BaseException:
            self.close()
            raise

    def fileno(self) -> int:
        return self._efd

    def wait(self, timeout: float | None = None) -> bool:
        """True when an OOM happened; False on timeout or when the cgroup is gone (that also wakes it)."""
        readable, _, _ = select.select([self._efd], [], [], timeout)
        if not readable:
            return False
        try:
            os.eventfd_read(self._efd)
        except BlockingIOError:
            return False
        return os.path.isdir(self.memory_dir)

    def close(self) -> None:
        for fd in (self._efd, self._control_fd):
            try:
                os.close(fd)
            except OSError:
                continue


class V2OomWatcher:
    def __init__(self, cgroup_dir: str) -> None:
        self._file = open(os.path.join(cgroup_dir, "memory.events"), "rb", buffering=0)  # noqa: SIM115
        self._kills = self._count()

    def _count(self) -> int:
        self._file.seek(0)
        for line in self._file.read().decode().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def fileno(self) -> int:
        return self._file.fileno()

    def wait(self, timeout: float | None = None) -> bool:
        """True when memory.events' oom_kill grew since the last call."""
        poller = select.poll()
        poller.register(self._file, select.POLLPRI | select.POLLERR)
        if not poller.poll(None if timeout is None else timeout * 1000):
            return False
        kills = self._count()
        grew, self._kills = kills > self._kills, kills
        return grew

    def close(self) -> None:
        self._file.close()
