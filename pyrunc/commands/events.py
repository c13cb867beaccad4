"""pyrunc events [--stats] [--interval 5s] ID"""

from __future__ import annotations


def run(g: object, o: dict) -> int:
    from ..container.events import parse_duration, print_stats, stream_events
    from ..state import StateRoot

    container = StateRoot(g.root).load(o["container_id"], lock=False)
    if o["stats"]:
        print_stats(container)
    else:
        stream_events(container, parse_duration(o["interval"]))
    return 0
