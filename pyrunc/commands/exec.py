"""pyrunc exec [flags] ID COMMAND... | pyrunc exec --process process.json ID"""

from __future__ import annotations


def run(g: object, o: dict) -> int:
    from ..container.exec import ExecOptions, exec_process, process_from_file, process_from_flags
    from ..state import StateRoot

    container = StateRoot(g.root).load(o["container_id"], lock=False)
    opts = ExecOptions(o)
    process = process_from_file(o["process"], o) if o["process"] else process_from_flags(container.config, o)
    return exec_process(container, process, opts)
