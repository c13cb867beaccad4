"""pyrunc state ID: the runtime-spec state JSON, with the status derived live."""

from __future__ import annotations

import sys


def run(g: object, o: dict) -> int:
    from ..fastjson import dumps_indented
    from ..state import StateRoot

    container = StateRoot(g.root).load(o["container_id"], lock=False)
    sys.stdout.write(dumps_indented(container.oci_state()))
    return 0
