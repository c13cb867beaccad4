"""pyrunc run [--detach] [--keep] ...: create + start, and in the foreground wait and delete.

In the foreground with `process.terminal` and no `--console-socket`, create keeps the pty master and the
user's terminal is proxied to it until the container exits (like `runc run`).
"""

from __future__ import annotations

import os


def run(g: object, o: dict) -> int:
    from ..container.create import CreateOptions, create_container
    from ..container.delete import delete_container
    from ..container.foreground import become_subreaper, wait_forwarding_signals
    from ..container.start import start_container

    detach = o["detach"]
    if not detach:
        become_subreaper()
    container = create_container(g, o["container_id"], CreateOptions(o), foreground=not detach)
    master = container.console_master
    try:
        start_container(container)
        container.unlock()
        if detach:
            return 0
        code = wait_forwarding_signals(container.pid, console_master=master)
    except BaseException:
        delete_container(container, force=True)
        raise
    finally:
        if master >= 0:
            os.close(master)
    if not o["keep"]:
        delete_container(container, force=True)
    return code
