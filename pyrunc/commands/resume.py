"""pyrunc resume ID"""

from __future__ import annotations


def run(g: object, o: dict) -> int:
    from ..container.pause import resume_container
    from ..state import StateRoot

    resume_container(StateRoot(g.root).load(o["container_id"]))
    return 0
