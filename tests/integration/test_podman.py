"""podman 4.3 with conmon, the runtime given by `--runtime PATH` or by a containers.conf that names it
(and lists it in runtime_supports_json, so conmon passes `--log-format=json --log`)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.commands import wait_until
from harness.daemons import CONMON, PODMAN, Podman
from harness.images import BUSYBOX, Images
from harness.scenario import (
    ENGINE_MOUNTS,
    SHELL_PROMPT,
    TTY_SESSION,
    assert_tty_session,
    detached_container,
    engine_scenario,
    new_name,
    require,
)


@pytest.fixture(scope="module", params=["flags", "containers.conf"])
def podman_session(request: pytest.FixtureRequest, runtime: str, images: Images, base_dir: Path) -> Iterator[Podman]:
    require(PODMAN, CONMON)
    conf = request.param == "containers.conf"
    client = Podman(base_dir / ("pm-conf" if conf else "pm-flags"), runtime, containers_conf=conf)
    client("load", "-i", str(images.busybox_oci if conf else images.busybox_docker)).check()
    ENGINE_MOUNTS.add(str(client.storage_home))
    yield client
    client("rm", "--all", "--force", "--time", "0")  # the safety net
    client.wait_idle()
    ENGINE_MOUNTS.discard(str(client.storage_home))


_REMOVE = ("rm", "-f", "-t", "0")


@pytest.fixture
def podman(request: pytest.FixtureRequest, podman_session: Podman) -> Iterator[Podman]:
    yield from engine_scenario(request, podman_session, _REMOVE)


@pytest.fixture
def running(podman: Podman) -> Iterator[str]:
    """A detached container whose init handles SIGTERM (removed afterwards)."""
    yield from detached_container(podman, "pm", BUSYBOX, _REMOVE)


def test_info_names_the_runtime(podman: Podman, runtime: str) -> None:
    assert podman.info("{{.Host.OCIRuntime.Path}}") == runtime


def test_run_rm_output_and_exit_status(podman: Podman) -> None:
    result = podman("run", "--rm", BUSYBOX, "sh", "-c", "echo hi; echo oops >&2; exit 3")
    assert result.returncode == 3, result.describe()
    assert (result.stdout, result.stderr) == ("hi\n", "oops\n"), result.describe()


def test_run_it(podman: Podman) -> None:
    assert_tty_session(podman.in_pty("run", "--rm", "-it", BUSYBOX, "sh", send=TTY_SESSION.format(status=5),
                                     after=SHELL_PROMPT), 5)


def test_run_d_and_exec(podman: Podman, running: str) -> None:
    assert podman.inspect(running, "{{.State.Status}}") == "running"
    result = podman("exec", running, "sh", "-c", "echo exec-out; exit 4")
    assert (result.returncode, result.stdout) == (4, "exec-out\n"), result.describe()


def test_exec_it(podman: Podman, running: str) -> None:
    assert_tty_session(podman.in_pty("exec", "-it", running, "sh", send=TTY_SESSION.format(status=6),
                                     after=SHELL_PROMPT), 6)


def test_pause_unpause(podman: Podman, running: str) -> None:
    podman("pause", running).check()
    assert podman.inspect(running, "{{.State.Status}}") == "paused"
    podman("unpause", running).check()
    assert podman.inspect(running, "{{.State.Status}}") == "running"
    assert podman("exec", running, "true").returncode == 0


def test_stop_sends_term(podman: Podman, running: str) -> None:
    podman("stop", "-t", "10", running).check()
    assert podman.inspect(running, "{{.State.Status}} {{.State.ExitCode}}") == "exited 7"
    assert "got TERM" in podman("logs", running).stdout


def test_kill(podman: Podman, running: str) -> None:
    podman("kill", running).check()
    wait_until(lambda: podman.inspect(running, "{{.State.Status}}") == "exited", f"{running} to exit")
    assert podman.inspect(running, "{{.State.ExitCode}}") == "137"


def test_rm_f_running(podman: Podman) -> None:
    name = new_name("pm")
    podman("run", "-d", "--name", name, BUSYBOX, "sleep", "1000").check()
    podman("rm", "-f", "-t", "0", name).check()
    assert not podman("ps", "-aq").stdout.split()


def test_top(podman: Podman, running: str) -> None:
    out = podman("top", running, "pid", "args").check().stdout
    assert re.search(r"^\s*1\s+sh -c trap", out, re.M), out


def test_stats_no_stream(podman: Podman, running: str) -> None:
    out = podman("stats", "--no-stream", "--format", "json", running).check().stdout
    stats = json.loads(out)[0]
    assert int(stats["pids"]) >= 1, out
    assert not stats["mem_usage"].startswith("0B"), out


def test_create_error_reaches_podman(podman: Podman) -> None:
    result = podman("run", "--rm", BUSYBOX, "/no-such-binary")
    assert result.returncode != 0, result.describe()
    assert "/no-such-binary" in result.stderr, result.describe()
