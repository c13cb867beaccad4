"""pyrunc pause ID"""

from __future__ import annotations


def run(g: object, o: dict) -> int:
    from ..container.pause import pause_container
    from ..state import StateRoot

    pause_container(StateRoot(g.root).load(o["container_id"]))
    return 0
