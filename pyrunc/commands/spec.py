"""pyrunc spec [--bundle DIR] [--rootless]: write a default config.json, never over an existing one."""

from __future__ import annotations

import json
import os


def run(g: object, o: dict) -> int:
    from ..config.defaults import default_spec
    from ..errors import ConfigError

    path = os.path.join(o["bundle"] or ".", "config.json")
    try:
        with open(path, "x") as f:
            json.dump(default_spec(rootless=o["rootless"]), f, indent=2)
            f.write("\n")
    except FileExistsError:
        raise ConfigError(f"File {path} exists. Remove it first or use a different bundle directory") from None
    return 0
