"""events: resource statistics (`--stats` once, else every `--interval`) and OOM notifications, as JSON lines."""

from __future__ import annotations

import json
import sys
import time

from ..errors import InvalidState, UsageError
from ..state import STOPPED, Container

_DURATION_UNITS = (("ms", 0.001), ("us", 1e-6), ("µs", 1e-6), ("ns", 1e-9), ("h", 3600.0), ("m", 60.0), ("s", 1.0))


def parse_duration(raw: str) -> float:
    """Seconds in a Go duration such as "5s", "250ms" or "1m30s"."""
    text, total = raw.strip(), 0.0
    if not text:
        raise UsageError(f"invalid duration {raw!r}")
    while text:
        digits = len(text) - len(text.lstrip("0123456789."))
        unit = next((u for u in _DURATION_UNITS if text[digits:].startswith(u[0])), None)
        if digits == 0 or unit is None:
            raise UsageError(f"invalid duration {raw!r}")
        total += float(text[:digits]) * unit[1]
        text = text[digits + len(unit[0]):]
    if total <= 0:
        raise UsageError(f"duration must be greater than 0: {raw!r}")
    return total


def _emit(kind: str, container: Container, data: dict | None = None) -> None:
    event = {"type": kind, "id": container.id}
    if data is not None:
        event["data"] = data
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _cgroup(container: Container) -> object:
    if container.status() == STOPPED:
        raise InvalidState(f"container with id {container.id} is not running")
    cgroup = container.cgroup_manager()
    if cgroup is None:
        raise InvalidState(f"container {container.id} has no cgroup to report on")
    return cgroup


def print_stats(container: Container) -> None:
    _emit("stats", container, _cgroup(container).stats())


def stream_events(container: Container, interval: float) -> None:
    """Stats every interval and an "oom" event per OOM kill, until the container stops."""
    cgroup = _cgroup(container)
    watcher = cgroup.oom_watcher()
    try:
        deadline = time.monotonic()
        while container.status() != STOPPED:
            now = time.monotonic()
            if now >= deadline:
                _emit("stats", container, cgroup.stats())
                deadline = now + interval
            if watcher.wait(min(deadline - time.monotonic(), 1.0)):
                _emit("oom", container)
    finally:
        watcher.close()
