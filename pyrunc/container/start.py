"""start: release the init blocked on the exec fifo, then run the poststart hooks."""

from __future__ import annotations

import os
import select

from ..errors import HookError, InvalidState
from ..state import CREATED, EXEC_FIFO, STOPPED, Container


def start_container(container: Container) -> None:
    status = container.status()
    if status != CREATED:
        if status == STOPPED:
            raise InvalidState("cannot start a container that has stopped")
        raise InvalidState("cannot start an already running container")
    fifo = os.path.join(container.dir, EXEC_FIFO)
    # Non-blocking open: it succeeds at once and wakes the init blocked in its open for writing;
    # a dead init never writes, which the poll loop notices instead of hanging forever.
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while not poller.poll(100):
            if not container.init_alive():
                raise InvalidState("cannot start a container whose init has exited")
        answer = os.read(fd, 4096)
        if not answer:
            raise InvalidState("cannot start a container whose init has exited")
        if answer[:1] != b"0":  # a startContainer hook failed: the init has exited, the container is stopped
            raise HookError(answer[1:].decode(errors="replace"))
    finally:
        os.close(fd)
    os.unlink(fifo)
    _poststart(container)


def _poststart(container: Container) -> None:
    from ..hooks import has_hooks, run_hooks

    if has_hooks(container.config, "poststart"):  # a failure is logged: the container keeps running
        run_hooks(container.config, container.oci_state("running"), "poststart")
