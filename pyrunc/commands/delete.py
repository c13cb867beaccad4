"""pyrunc delete [--force] ID"""

from __future__ import annotations


def run(g: object, o: dict) -> int:
    from ..container.delete import delete_container
    from ..errors import ContainerNotFound
    from ..state import StateRoot

    root = StateRoot(g.root)
    try:
        container = root.load(o["container_id"])
    except ContainerNotFound:
        if o["force"]:
            root.remove_stale(o["container_id"])
            return 0  # like runc: forcing the delete of what is not there succeeds
        raise
    delete_container(container, force=o["force"])
    return 0
