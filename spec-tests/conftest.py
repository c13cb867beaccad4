"""Conformance suite: every test gets the leak check (see fixtures.py for the harness)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fixtures import (  # noqa: F401
    _container_session,
    bundle,
    leak_check,
    make_bundle,
    rt,
    state_root,
    xfail_runc,
)


@pytest.fixture(autouse=True)
def _leak_check_every_test(request: pytest.FixtureRequest) -> None:
    request.getfixturevalue("leak_check")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "cgroup: cgroup tests, also run in the cgroup v2 VM (make test-cgroup2)")
