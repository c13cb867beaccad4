"""Import cost of each pyrunc command path, from `python -X importtime` of the real console script.

Each command runs for real (a container created, started, exec'd, killed, deleted) under
`-X importtime`; the self times are summed per module and per group (pyrunc, stdlib, third party,
interpreter start-up), so a regression points at the module that caused it.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

from harness import Runtime, Workspace, last_line, reap_orphans, wait_gone

#: Modules that must never be on a hot path (issue 8): found here, the report flags them.
HEAVY = ("click", "jsonschema", "pyroute2", "seccomp", "pyseccomp")
#: Imported by `site` before any user code: the interpreter's own start-up.
STARTUP = {"_io", "marshal", "posix", "_frozen_importlib_external", "time", "zipimport", "_codecs", "codecs",
           "encodings", "_signal", "_abc", "abc", "io", "_stat", "stat", "_collections_abc", "genericpath",
           "posixpath", "os", "_sitebuiltins", "site", "sitecustomize", "apport_python_hook", "_distutils_hack",
           "usercustomize"}


def parse(stderr: str) -> dict[str, int]:
    """Module → self import time in µs, from `-X importtime` output (other stderr lines ignored)."""
    selfs: dict[str, int] = {}
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line[len("import time:"):].split("|"))
        selfs[name] = selfs.get(name, 0) + int(self_us)
    return selfs


def group_of(module: str) -> str:
    top = module.split(".")[0]
    if top in STARTUP:
        return "startup"
    if top == "pyrunc":
        return "pyrunc"
    if top in sys.stdlib_module_names or top.startswith("_"):
        return "stdlib"
    return "third-party"


@dataclass
class PathCost:
    """Import costs of one command path: per module, the smallest self time over several runs (the least
    disturbed by other work on the machine)."""

    command: str
    runs: list[dict[str, int]] = field(default_factory=list)
    error: str = ""

    def module_ms(self) -> dict[str, float]:
        names = {name for run in self.runs for name in run}
        return {name: min(run[name] for run in self.runs if name in run) / 1000 for name in names}

    def group_ms(self) -> dict[str, float]:
        totals = {"startup": 0.0, "stdlib": 0.0, "pyrunc": 0.0, "third-party": 0.0}
        for name, ms in self.module_ms().items():
            totals[group_of(name)] += ms
        return totals

    def heavy(self) -> list[str]:
        tops = {name.split(".")[0] for run in self.runs for name in run}
        return [name for name in HEAVY if name in tops]

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        modules = [(n, ms) for n, ms in self.module_ms().items() if group_of(n) != "startup"]
        return sorted(modules, key=lambda item: -item[1])[:k]


def shebang_options(script: str) -> list[str]:
    """The interpreter options on a script's #! line (pyrunc's launcher runs `python -S`)."""
    with open(script, "rb") as f:
        first = f.readline().decode(errors="replace")
    return first[2:].split()[1:] if first.startswith("#!") else []


def measure(ws: Workspace, pyrunc: Runtime, reps: int) -> list[PathCost]:
    """Run every hot command path `reps` times under -X importtime, with the launcher's own options."""
    python = [os.path.join(os.path.dirname(pyrunc.path), "python"), *shebang_options(pyrunc.path)]
    costs = {name: PathCost(name) for name in
             ("run", "create", "state", "start", "exec", "kill", "delete", "list", "state (unknown id)")}

    def timed(name: str, *args: str) -> bool:
        call = ws.spawner.call([*python, "-X", "importtime", pyrunc.path, "--root", str(pyrunc.root), *args])
        costs[name].runs.append(parse(call.stderr))
        if not call.ok and not costs[name].error:
            costs[name].error = f"exit {call.status}: {last_line(call.stderr)}"
        return call.ok

    for _ in range(reps):
        timed("state (unknown id)", "state", "no-such-container")
        timed("list", "list")
        container_id, bundle = ws.bundle(pyrunc, ["true"])
        timed("run", "run", "--bundle", bundle, container_id)
        ws.forget_bundle(bundle)
        container_id, bundle = ws.bundle(pyrunc, ["sleep", "3600"])
        if timed("create", "create", "--bundle", bundle, container_id):
            pid = pyrunc.state(container_id)["pid"]
            timed("state", "state", container_id)
            timed("start", "start", container_id)
            timed("exec", "exec", container_id, "true")
            timed("kill", "kill", container_id, "KILL")
            wait_gone(pid)
            timed("delete", "delete", container_id)
        pyrunc.call("delete", "--force", container_id)
        reap_orphans()
        ws.forget_bundle(bundle)
    return [cost for cost in costs.values() if cost.runs]
