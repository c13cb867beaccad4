"""pyrunc kill [--all] ID [SIGNAL]"""

from __future__ import annotations


def run(g: object, o: dict) -> int:
    from ..container.kill import signal_container
    from ..signals import parse_signal
    from ..state import StateRoot

    sig = parse_signal(o.get("signal") or "SIGTERM")
    signal_container(StateRoot(g.root).load(o["container_id"], lock=False), sig, o["all"])
    return 0
