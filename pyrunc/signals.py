"""Signal names and numbers as `kill` accepts them: KILL, SIGKILL, kill, 9.

Uses the C module `_signal`: the `signal` package wraps it in enums, whose import costs milliseconds
on a command the engines call for every container.
"""

from __future__ import annotations

import _signal

from .errors import UsageError


def parse_signal(raw: str) -> int:
    if raw.isdigit():
        number = int(raw)
        if 0 < number < _signal.NSIG:
            return number
    else:
        name = raw.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        number = getattr(_signal, name, None) if "_" not in name else None
        if isinstance(number, int) and 0 < number < _signal.NSIG:
            return number
    raise UsageError(f"unknown signal {raw!r}")
