"""Running OCI hooks: each gets the container's state JSON on stdin, its own args and env, and a timeout.

Which hooks run where (the spec's lifecycle): prestart and createRuntime in the runtime namespace by the
parent during create; createContainer by the init in the container's namespaces before pivot_root;
startContainer by the init after `start`, before the user process; poststart by `start`; poststop by
`delete`. A failure of the first four fails the operation; a poststart or poststop failure is logged as a
warning and the remaining hooks still run ("as if the hook had succeeded", runtime.md lifecycle).

The state on stdin carries the pid as the hook's namespace sees it: the host pid for hooks run by the
runtime, the init's own pid (1 in a new pid namespace) for createContainer and startContainer.
"""

from __future__ import annotations

import os

from . import fastjson
from .errors import HookError

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
#: hooks run by the container's init, in the container's namespaces
IN_CONTAINER = frozenset({"createContainer", "startContainer"})
#: hooks whose failure is only a warning
WARN_ONLY = frozenset({"poststart", "poststop"})


def has_hooks(config: dict, *kinds: str) -> bool:
    hooks = config.get("hooks") or {}
    return any(hooks.get(kind) for kind in kinds)


def _one_line(text: bytes) -> str:
    return " ".join(text.decode(errors="replace").split())[:300]


def run_hook(kind: str, index: int, hook: dict, state: dict) -> None:
    import subprocess

    path = hook["path"]
    argv = hook.get("args") or [path]
    where = f"{kind} hook #{index} ({path})"
    try:
        done = subprocess.run(
            argv, executable=path, input=fastjson.dumps(state).encode(),
            env=dict(entry.split("=", 1) for entry in hook.get("env") or ()),
            capture_output=True, timeout=hook.get("timeout"), close_fds=True, check=False,
        )
    except subprocess.TimeoutExpired:
        raise HookError(f"{where}: timed out after {hook['timeout']} s (killed)") from None
    except OSError as err:
        raise HookError(f"{where}: {err.strerror}") from None
    if done.returncode != 0:
        status = f"exit status {done.returncode}" if done.returncode > 0 else f"signal {-done.returncode}"
        detail = _one_line(done.stderr or done.stdout)
        raise HookError(f"{where}: {status}" + (f": {detail}" if detail else ""))


def run_hooks(config: dict, state: dict, *kinds: str) -> None:
    """Run every hook of `kinds` in order; the first failure raises HookError naming the hook, except
    for poststart and poststop hooks, whose failures are logged while the next hooks run."""
    for kind in kinds:
        hooks = (config.get("hooks") or {}).get(kind) or ()
        if hooks and kind in IN_CONTAINER:
            state = {**state, "pid": os.getpid()}
        for index, hook in enumerate(hooks):
            try:
                run_hook(kind, index, hook, state)
            except HookError as err:
                if kind not in WARN_ONLY:
                    raise
                from .log import logger

                logger.warning(str(err))
