"""What the scenarios of every client share."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness.commands import Result, wait_until

# PID 1 of a container ignores the signals it has no handler for: this init handles SIGTERM (exit 7),
# and says when it is up.
TERM_HANDLER = "trap 'echo got TERM; exit 7' TERM; echo ready; while :; do sleep 0.1; done"

# An interactive shell session typed at a terminal (`-it`): the status and output prove it ran there.
TTY_SESSION = "tty; echo $((6*7)); exit {status}\r"
SHELL_PROMPT = "# "

# Set on a test item whose setup or call failed: its clean-up then reports no left-overs (they follow).
FAILED = pytest.StashKey[bool]()

# Runtime roots of the daemons running now (dockerd's exec-root), checked for left-over state.
STATE_ROOTS: list[Path] = []

# Mount points an engine keeps for itself and may drop and take again between containers (podman's
# overlay driver bind-mounts its home onto itself): not a container's left-over.
ENGINE_MOUNTS: set[str] = set()


def new_name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def require(*binaries: str) -> None:
    """Skip when a client is not installed (`make deps` installs them all)."""
    missing = [b for b in binaries if not Path(b).exists()]
    if missing:
        pytest.skip(f"not installed: {', '.join(missing)} (make deps)")


def assert_tty_session(result: Result, status: int) -> None:
    """The shell that TTY_SESSION was typed into had a terminal, computed, and exited with `status`."""
    assert result.returncode == status, result.describe()
    assert re.search(r"/dev/pts/\d+", result.stdout) and "42" in result.stdout, result.describe()


def check_nothing_left(request: pytest.FixtureRequest, left: object, what: str) -> None:
    """Fail a scenario that passed but left `what` behind (after it was cleaned up)."""
    if left and not request.node.stash.get(FAILED, False):
        pytest.fail(f"scenario left {what}: {left}", pytrace=False)


def engine_scenario(request: pytest.FixtureRequest, engine: Callable, remove: tuple[str, ...]) -> Iterator:
    """A scenario of a docker-like CLI: it starts with no container and ends with none (`remove` + ids)."""
    assert not engine("ps", "-aq").check().stdout.split(), "containers left by an earlier scenario"
    yield engine
    left = engine("ps", "-aq").stdout.split()
    if left:
        engine(*remove, *left)
    check_nothing_left(request, left, "containers")


def detached_container(engine: Callable, prefix: str, image: str, remove: tuple[str, ...]) -> Iterator[str]:
    """A detached container whose init handles SIGTERM, ready before the scenario uses it; removed after."""
    name = new_name(prefix)
    engine("run", "-d", "--name", name, image, "sh", "-c", TERM_HANDLER).check()
    wait_until(lambda: engine("logs", name).stdout.startswith("ready"), f"{name} to start")
    yield name
    engine(*remove, name)
