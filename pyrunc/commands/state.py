"""pyrunc state ID: the runtime-spec state JSON, with the status derived live."""

from __future__ import annotations

import json
import sys


def run(g: object, o: dict) -> int:
    from ..state import StateRoot

    container = StateRoot(g.root).load(o["container_id"], lock=False)
    sys.stdout.write(json.dumps(container.oci_state(), indent=2))
    return 0
