"""`process.rlimits`: validated at create, applied with prlimit(2).

runc applies them from the runtime (prlimit on the init's pid) before the init enters a user namespace
can lose the right to raise them; `apply_rlimits(..., pid)` serves both that and the init itself (pid 0).
Raising a hard limit needs CAP_SYS_RESOURCE, which this host's bounding set lacks.
"""

from __future__ import annotations

import resource

from pyrunc.errors import SecurityError
from pyrunc.security import os_reason

# Linux resource numbers (asm-generic/resource.h); Python's `resource` does not name RLIMIT_LOCKS.
NAMES = {
    "RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3, "RLIMIT_CORE": 4, "RLIMIT_RSS": 5,
    "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7, "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10,
    "RLIMIT_SIGPENDING": 11, "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15,
}  # fmt: skip
_UINT64_MAX = 2**64 - 1


def _limit(value: int) -> int:
    """The spec's uint64 (2^64-1 = unlimited) → Python's resource value (RLIM_INFINITY is -1)."""
    return resource.RLIM_INFINITY if value >= _UINT64_MAX else value


def _shown(value: int) -> str:
    return "unlimited" if value in (resource.RLIM_INFINITY, _UINT64_MAX) else str(value)


def check_rlimits(rlimits: list[dict] | None) -> None:
    """At create: every type is a known RLIMIT_* and soft <= hard."""
    for i, rlimit in enumerate(rlimits or ()):
        name = rlimit.get("type")
        if name not in NAMES:
            raise SecurityError(f"unknown rlimit {name!r} in process.rlimits[{i}]")
        soft, hard = rlimit.get("soft", 0), rlimit.get("hard", 0)
        if soft > hard:
            raise SecurityError(f"{name}: soft limit {soft} is above the hard limit {hard}")


def apply_rlimits(rlimits: list[dict] | None, pid: int = 0) -> None:
    """setrlimit each entry on `pid` (0: the caller); a refused value raises one line naming it."""
    for rlimit in rlimits or ():
        name, soft, hard = rlimit["type"], rlimit["soft"], rlimit["hard"]
        number = NAMES[name]
        try:
            resource.prlimit(pid, number, (_limit(soft), _limit(hard)))
        except (OSError, ValueError) as e:
            current_hard = resource.prlimit(pid, number)[1]
            reason = os_reason(e) if isinstance(e, OSError) else str(e)
            if _limit(hard) == resource.RLIM_INFINITY or 0 <= current_hard < hard:
                reason += f" (the hard limit is {_shown(current_hard)}; raising it needs CAP_SYS_RESOURCE)"
            raise SecurityError(f"cannot set {name} to soft {_shown(soft)}, hard {_shown(hard)}: {reason}") from None
