"""pytest fixtures of the container harness, imported by spec-tests/conftest.py and tests/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import Bundle, Runtime, ensure_rootfs, leak_snapshot, leaks_after, remove_cgroup_parent


@pytest.fixture(scope="session", autouse=True)
def _container_session() -> Iterator[None]:
    """Build the rootfs if needed; at the end, remove the (empty) test cgroup parent."""
    ensure_rootfs()
    yield
    remove_cgroup_parent()


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    return tmp_path / "state"


@pytest.fixture
def rt(state_root: Path) -> Runtime:
    """The runtime under test, bound to this test's private `--root`."""
    return Runtime(state_root)


@pytest.fixture
def leak_check(state_root: Path, rt: Runtime) -> Iterator[None]:
    """Fail the test if it leaves mounts, cgroups, state entries or processes behind.

    Containers still in the state root are force-deleted first (also after a failed test)."""
    before = leak_snapshot(state_root)
    yield
    rt.force_delete_all()
    report = leaks_after(before, state_root)
    if report:
        pytest.fail(f"test left things behind:\n{report}", pytrace=False)


@pytest.fixture
def make_bundle(tmp_path: Path) -> Callable[[], Bundle]:
    """Factory of fresh bundles (each with its own rootfs copy and a default config)."""
    count = 0

    def make() -> Bundle:
        nonlocal count
        count += 1
        return Bundle.make(tmp_path / f"bundle{count}")

    return make


@pytest.fixture
def bundle(make_bundle: Callable[[], Bundle]) -> Bundle:
    return make_bundle()


@pytest.fixture
def xfail_runc(rt: Runtime, request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Call with a reason citing the spec clause to mark a known runc deviation: the test still runs,
    and is strict-xfail under runc (an unexpected pass fails, so the mark cannot go stale)."""

    def mark(reason: str) -> None:
        if rt.is_runc:
            request.node.add_marker(pytest.mark.xfail(reason=f"runc deviates: {reason}", strict=True))

    return mark
