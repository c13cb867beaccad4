"""Signal names and numbers as `kill` accepts them: KILL, SIGKILL, kill, 9."""

from __future__ import annotations

import signal

from .errors import UsageError


def parse_signal(raw: str) -> int:
    if raw.isdigit():
        number = int(raw)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = raw.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        sig = signal.Signals.__members__.get(name)
        if sig is not None:
            return int(sig)
    raise UsageError(f"unknown signal {raw!r}")
