"""pyrunc create [--bundle DIR] [--pid-file F] [--console-socket S] ID"""

from __future__ import annotations


def run(g: object, o: dict) -> int:
    from ..container.create import CreateOptions, create_container

    create_container(g, o["container_id"], CreateOptions(o))
    return 0
