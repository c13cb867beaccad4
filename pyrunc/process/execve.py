"""What both inits (create's and exec's) do on their way to execve: find the executable and HOME in the
container, close the host's descriptors, load seccomp, execve with the signal state a fresh process
expects; and `describe`, the one-line wording of a failure inside them.
"""

from __future__ import annotations

import _signal
import os

from ..errors import InitError, PyruncError
from ..security import seccomp
from .protocol import Channel, Msg

TYPE_CHECKING = False  # typing costs milliseconds at start-up; NoReturn only annotates
if TYPE_CHECKING:
    from typing import NoReturn


def describe(err: BaseException) -> str:
    """One line for an exception raised inside the init."""
    if isinstance(err, PyruncError):
        return str(err)
    if isinstance(err, OSError):
        text = err.strerror or str(err)
        return f"{text}: {err.filename}" if err.filename else text
    return f"{type(err).__name__}: {err}"

def find_executable(name: str, env: list[str]) -> str:
    """Resolve args[0] like execvp, with the container's PATH (runc's error wording when missing)."""
    if "/" in name:
        candidates = [name]
    else:
        path = next((e[5:] for e in env if e.startswith("PATH=")), "/usr/local/bin:/usr/bin:/bin")
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    for candidate in candidates:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    if "/" in name:
        raise InitError(f'exec: "{name}": stat {name}: no such file or directory')
    raise InitError(f'exec: "{name}": executable file not found in $PATH')

def with_home(env: list[str], uid: int) -> list[str]:
    """Like runc: when HOME is not set, take it from the container's /etc/passwd, else "/"."""
    if any(e.startswith("HOME=") for e in env):
        return env
    home = "/"
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) > 5 and fields[2] == str(uid):
                    home = fields[5] or "/"
                    break
    except OSError:
        pass
    return [*env, f"HOME={home}"]

def close_fds_from(first: int, keep: list[int]) -> None:
    """Close every descriptor >= first except `keep`: nothing of the host may reach the container."""
    low = first
    for fd in keep:
        if fd >= low:
            os.closerange(low, fd)
            low = fd + 1
    os.closerange(low, 1 << 20)

def load_seccomp(chan: Channel, filt: object) -> None:
    """Load the filter; a notify listener fd goes to the parent, which hands it to listenerPath on the host."""
    listener_fd = seccomp.load(filt)
    if listener_fd is not None:
        chan.send(Msg.SECCOMP_LISTENER, fds=[listener_fd])
        os.close(listener_fd)
        chan.expect(Msg.SECCOMP_DONE)

def load_seccomp_before_identity(chan: Channel, filt: object, process: dict) -> bool:
    """Load the filter now when it must precede the identity switch (see seccomp.must_load_before_identity);
    True when it did, and the caller must not load it again."""
    if filt is None or not seccomp.must_load_before_identity(process):
        return False
    load_seccomp(chan, filt)
    return True


def execve_clean(executable: str, args: list[str], env: list[str]) -> NoReturn:
    """execve with the signal dispositions and mask a fresh process expects; raises OSError on failure.

    Python ignores SIGPIPE and SIGXFSZ, and ignored signals survive execve: restore the defaults.
    """
    for sig in (_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGINT):
        _signal.signal(sig, _signal.SIG_DFL)
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
    os.execve(executable, args, dict(e.split("=", 1) for e in env if "=" in e))
