"""pyrunc ps [--format table|json] ID [-- PS_ARGS...]: the container's processes, as runc shows them.

json: the host pids of the container's cgroup. table: the host's `ps` (default `-ef`) run with the given
arguments, keeping its header and the lines whose PID column is one of the container's.
"""

from __future__ import annotations

import json
import sys

from ..errors import PyruncError


def _table(ps_args: list[str], pids: set[int]) -> str:
    import subprocess

    try:
        done = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True, check=False)
    except OSError as err:
        raise PyruncError(f"ps: {err.strerror}") from None
    if done.returncode != 0:
        output = " ".join((done.stderr + done.stdout).split())
        raise PyruncError(f"ps: exit status {done.returncode}: {output}")
    lines = done.stdout.splitlines()
    header = lines[0] if lines else ""
    try:
        column = header.split().index("PID")
    except ValueError:
        raise PyruncError("couldn't find PID field in ps output") from None
    kept = [header]
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in pids:
            kept.append(line)
    return "".join(line + "\n" for line in kept)


def run(g: object, o: dict) -> int:
    from ..state import StateRoot

    container = StateRoot(g.root).load(o["container_id"], lock=False)
    cgroup = container.cgroup_manager()
    pids = cgroup.pids() if cgroup is not None else []
    ps_args = list(o.get("ps_args") or ())
    if ps_args[:1] == ["--"]:
        ps_args = ps_args[1:]
    if o["format"] == "json":
        sys.stdout.write(json.dumps(pids or None, separators=(",", ":")) + "\n")
    else:
        sys.stdout.write(_table(ps_args, set(pids)))
    return 0
