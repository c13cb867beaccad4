"""End-to-end client harness: containerd (ctr and CRI), podman and Docker drive the runtime under test.

The runtime is $RUNTIME (a path or a command name; default the project's .venv/bin/pyrunc), the same
variable the conformance suite reads. Daemons are started by hand with their state in temp dirs and
stopped by PID. Every scenario is checked for left-overs: mounts, cgroups, client processes and runtime
state entries (here), and containers in the client's own listing (in each test module).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import host
from harness.daemons import CONTAINERD, Containerd
from harness.images import Images, ensure_images
from harness.scenario import ENGINE_MOUNTS, FAILED, STATE_ROOTS, check_nothing_left, require
from helpers import runtime_path  # spec-tests/helpers.py, on sys.path through tests/conftest.py


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: end-to-end test driving a real container engine")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    if outcome.get_result().failed:
        item.stash[FAILED] = True


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def runtime() -> str:
    if os.geteuid() != 0:
        pytest.skip("the client tests start daemons: run as root")
    return runtime_path()


@pytest.fixture(scope="session")
def images() -> Images:
    for tool in ("umoci", "skopeo"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is needed to build the test images (make deps)")
    return ensure_images()


@pytest.fixture(scope="session", autouse=True)
def _host_paths() -> Iterator[None]:
    """Remove, at the end, the fixed paths and cgroup parents the clients created during the session."""
    fixed = host.FixedPaths()
    parents = host.cgroup_parents_present()
    yield
    fixed.remove_created()
    host.remove_client_cgroup_parents(parents)


@pytest.fixture(scope="session")
def base_dir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """The daemons' state, sockets and logs. Short: podman refuses a runroot over 50 characters and unix
    socket paths stop at 108 bytes. Kept (with the daemons' logs) when a scenario failed."""
    path = Path(tempfile.mkdtemp(prefix="prc-"))
    yield path
    if request.session.testsfailed:
        print(f"\nclient harness: daemon state and logs kept in {path}")
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def containerd(request: pytest.FixtureRequest, runtime: str, images: Images, base_dir: Path) -> Iterator[Containerd]:
    """containerd without CRI, busybox imported in namespace `default` (dockerd runs on it). One per test
    module: no daemon outlives the module that needs it."""
    require(CONTAINERD)
    daemon = Containerd(base_dir / f"containerd-{request.module.__name__}")
    try:
        daemon.import_image(images.busybox_docker)
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(autouse=True)
def leak_check(request: pytest.FixtureRequest, base_dir: Path) -> Iterator[None]:
    """Fail a scenario that leaves mounts, container cgroups, client processes or runtime state behind."""

    def take() -> dict[str, set[str]]:
        return host.snapshot(base_dir, STATE_ROOTS, ENGINE_MOUNTS)

    before = take()
    yield
    leaks = host.leaks_after(before, take)
    check_nothing_left(request, leaks and "\n" + leaks, "on the host")
