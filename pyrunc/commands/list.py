"""pyrunc list [--format table|json] [-q]: every container under the root, as runc prints them."""

from __future__ import annotations

import pwd
import sys


def _owner(path: str) -> str:
    import os

    uid = os.stat(path).st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"#{uid}"


def _table(rows: list[list[str]]) -> str:
    """Columns at least 12 wide and 3 spaces apart, like runc's tabwriter."""
    widths = [max(12, *(len(r[i]) + 3 for r in rows)) for i in range(len(rows[0]))]
    return "".join("".join(cell.ljust(w) for cell, w in zip(r[:-1], widths, strict=False)) + r[-1] + "\n"
                   for r in rows)


def run(g: object, o: dict) -> int:
    from ..errors import ContainerNotFound
    from ..fastjson import dumps
    from ..state import StateRoot

    root = StateRoot(g.root)
    states = []
    for container_id in root.ids():
        try:
            container = root.load(container_id, lock=False)
        except ContainerNotFound:
            continue  # deleted while we listed
        state = container.oci_state()
        state["owner"] = _owner(container.dir)
        states.append(state)
    if o["quiet"]:
        sys.stdout.write("".join(s["id"] + "\n" for s in states))
    elif o["format"] == "json":
        sys.stdout.write((dumps(states) if states else "null") + "\n")
    else:
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [[s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"], s["owner"]] for s in states]
        sys.stdout.write(_table(rows))
    return 0
