"""pyrunc run [--detach] [--keep] ...: create + start, and in the foreground wait and delete.

In the foreground with `process.terminal` and no `--console-socket`, the pty master comes to a private
console socket and the user's terminal is proxied to it until the container exits (like `runc run`).
"""

from __future__ import annotations

import os


def _proxies_terminal(o: dict) -> bool:
    """Foreground, process.terminal set, no console socket given (create reports a broken config.json)."""
    if o["detach"] or o.get("console_socket"):
        return False
    import json

    try:
        with open(os.path.join(o.get("bundle") or ".", "config.json"), "rb") as f:
            return json.load(f)["process"].get("terminal") is True
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def run(g: object, o: dict) -> int:
    from ..container.create import CreateOptions, create_container
    from ..container.delete import delete_container
    from ..container.foreground import become_subreaper, wait_forwarding_signals
    from ..container.start import start_container

    detach = o["detach"]
    if not detach:
        become_subreaper()
    master = -1
    if _proxies_terminal(o):
        from ..terminal import ConsoleReceiver

        receiver = ConsoleReceiver()
        try:
            # For create this is a detached run: the master goes to a console socket (ours).
            container = create_container(g, o["container_id"], CreateOptions({**o, "console_socket": receiver.path}))
            try:
                master = receiver.receive()
            except BaseException:
                delete_container(container, force=True)
                raise
        finally:
            receiver.close()
    else:
        container = create_container(g, o["container_id"], CreateOptions(o), foreground=not detach)
    try:
        start_container(container)
    except BaseException:
        delete_container(container, force=True)
        raise
    container.unlock()
    if detach:
        return 0
    try:
        code = wait_forwarding_signals(container.pid, console_master=master)
    finally:
        if master >= 0:
            os.close(master)
    if not o["keep"]:
        delete_container(container, force=True)
    return code
