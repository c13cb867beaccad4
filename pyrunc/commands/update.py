"""pyrunc update [--resources FILE|-] [--memory N ...] ID"""

from __future__ import annotations


def run(g: object, o: dict) -> int:
    from ..container.update import resources_from_options, update_container
    from ..state import StateRoot

    container = StateRoot(g.root).load(o["container_id"])
    update_container(container, resources_from_options(o))
    return 0
