"""`process.rlimits`: validated at create, applied with prlimit(2).

runc applies them from the runtime (prlimit on the init's pid) before the init enters a user namespace
can lose the right to raise them; `apply_rlimits(..., pid)` serves both that and the init itself (pid 0).
Raising a hard limit needs CAP_SYS_RESOURCE, which this host's bounding set lacks.
"""

from __future__ import annotations

import resource

from pyrunc.errors import SecurityError

NAMES = {
    "RLIMIT_AS": resource.RLIMIT_AS,
    "RLIMIT_CORE": resource.RLIMIT_CORE,
    "RLIMIT_CPU": resource.RLIMIT_CPU,
    "RLIMIT_DATA": resource.RLIMIT_DATA,
    "RLIMIT_FSIZE": resource.RLIMIT_FSIZE,
    "RLIMIT_LOCKS": resource.RLIMIT_LOCKS,
    "RLIMIT_MEMLOCK": resource.RLIMIT_MEMLOCK,
    "RLIMIT_MSGQUEUE": resource.RLIMIT_MSGQUEUE,
    "RLIMIT_NICE": resource.RLIMIT_NICE,
    "RLIMIT_NOFILE": resource.RLIMIT_NOFILE,
    "RLIMIT_NPROC": resource.RLIMIT_NPROC,
    "RLIMIT_RSS": resource.RLIMIT_RSS,
    "RLIMIT_RTPRIO": resource.RLIMIT_RTPRIO,
    "RLIMIT_RTTIME": resource.RLIMIT_RTTIME,
    "RLIMIT_SIGPENDING": resource.RLIMIT_SIGPENDING,
    "RLIMIT_STACK": resource.RLIMIT_STACK,
}
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
            reason = getattr(e, "strerror", None) or str(e)
            if _limit(hard) == resource.RLIM_INFINITY or 0 <= current_hard < hard:
                reason += f" (the hard limit is {_shown(current_hard)}; raising it needs CAP_SYS_RESOURCE)"
            raise SecurityError(f"cannot set {name} to soft {_shown(soft)}, hard {_shown(hard)}: {reason}") from None
