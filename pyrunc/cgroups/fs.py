"""Reading and writing cgroupfs files, with errors that name the file."""

from __future__ import annotations

import errno
import os
import time

from pyrunc.errors import CgroupError


def write(path: str, value: str) -> None:
    """Write one value to a cgroup file; a missing file means the host lacks the controller or knob."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise CgroupError(f"{path}: not supported on this host (no such cgroup file)") from None
    except OSError as e:
        raise CgroupError(f"open {path}: {e.strerror}") from None
    try:
        os.write(fd, value.encode())
    except OSError as e:
        raise CgroupError(f"write {value!r} to {path}: {e.strerror}") from None
    finally:
        os.close(fd)


def read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        raise CgroupError(f"read {path}: {e.strerror}") from None


def read_optional(path: str) -> str | None:
    """The file's content, or None when the host does not have it."""
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise CgroupError(f"read {path}: {e.strerror}") from None


def parse_uint(text: str | None) -> int:
    """A cgroup number; "max" (unlimited) and absent read as 0 like runc's stats do for missing values."""
    if text is None or text == "":
        return 0
    if text == "max":
        return 2**64 - 1
    return int(text)


def read_keyed(path: str) -> dict[str, int]:
    """A flat-keyed file ("key value" lines: memory.stat, cpu.stat, memory.events); {} when absent."""
    text = read_optional(path)
    result: dict[str, int] = {}
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if value:
            result[key] = parse_uint(value.strip())
    return result


def mkdirs(path: str) -> list[str]:
    """mkdir -p, returning the directories this call created (outermost first)."""
    missing: list[str] = []
    current = path
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    created: list[str] = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            continue
        except OSError as e:
            remove_dirs(created)
            raise CgroupError(f"mkdir {directory}: {e.strerror}") from None
        created.append(directory)
    return created


def remove_dirs(created: list[str], leaves: frozenset[str] = frozenset(), busy_wait: float = 0.0) -> list[str]:
    """rmdir the given directories deepest first; return the ones still present.

    A directory in `leaves` (a container's own cgroup) is retried on EBUSY until `busy_wait` seconds have
    passed, while its last tasks exit; any other busy directory is shared with someone else and is left.
    """
    deadline = time.monotonic() + busy_wait
    left: list[str] = []
    for directory in reversed(created):
        delay = 0.001
        while True:
            try:
                os.rmdir(directory)
                break
            except FileNotFoundError:
                break
            except OSError as e:
                if e.errno == errno.EBUSY and directory in leaves and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
                    continue
                left.append(directory)
                break
    return left
