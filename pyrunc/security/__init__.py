"""Identity and confinement controls the init applies before execve (see docs/architecture.md)."""

import os


def os_reason(error: OSError) -> str:
    """The bare reason of an OSError ("Operation not permitted"), whether or not its text names the call."""
    return os.strerror(error.errno) if error.errno else str(error)
