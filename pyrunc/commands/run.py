"""pyrunc run [--detach] [--keep] ...: create + start, and in the foreground wait and delete."""

from __future__ import annotations


def run(g: object, o: dict) -> int:
    from ..container.create import CreateOptions, create_container
    from ..container.delete import delete_container
    from ..container.foreground import become_subreaper, wait_forwarding_signals
    from ..container.start import start_container

    detach = o["detach"]
    if not detach:
        become_subreaper()
    container = create_container(g, o["container_id"], CreateOptions(o), foreground=not detach)
    try:
        start_container(container)
    except BaseException:
        delete_container(container, force=True)
        raise
    container.unlock()
    if detach:
        return 0
    code = wait_forwarding_signals(container.pid)
    if not o["keep"]:
        delete_container(container, force=True)
    return code
