"""start: release the init blocked on the exec fifo, then run the poststart hooks."""

from __future__ import annotations

import os
import select

from ..errors import InvalidState
from ..log import logger
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
        if not os.read(fd, 1):
            raise InvalidState("cannot start a container whose init has exited")
    finally:
        os.close(fd)
    os.unlink(fifo)
    _poststart(container)


def _poststart(container: Container) -> None:
    from ..hooks import has_hooks, run_hooks

    if has_hooks(container.config, "poststart"):
        try:
            run_hooks(container.config, container.oci_state("running"), "poststart")
        except Exception as err:  # the spec: a poststart failure is logged, the container keeps running
            logger.warning(f"poststart hook failed: {err}")
