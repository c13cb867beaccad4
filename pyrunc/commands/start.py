"""pyrunc start ID"""

from __future__ import annotations


def run(g: object, o: dict) -> int:
    from ..container.start import start_container
    from ..state import StateRoot

    start_container(StateRoot(g.root).load(o["container_id"]))
    return 0
