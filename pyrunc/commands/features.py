"""pyrunc features: the runtime-spec features document of what pyrunc really supports."""

from __future__ import annotations

import json
import sys


def run(g: object, o: dict) -> int:
    from ..features import features_document

    sys.stdout.write(json.dumps(features_document(), indent=4) + "\n")
    return 0
