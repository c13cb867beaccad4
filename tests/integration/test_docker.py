"""Docker 20.10 (dockerd on the session's containerd), the runtime added as `testrt` with `--add-runtime`
(used with `docker run --runtime testrt`) or in daemon.json as the `default-runtime`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.commands import wait_until
from harness.daemons import DOCKER, DOCKERD, Containerd, Dockerd
from harness.host import DOCKER_CGROUP_PARENT
from harness.images import BUSYBOX, Images
from harness.scenario import (
    SHELL_PROMPT,
    STATE_ROOTS,
    TTY_SESSION,
    assert_tty_session,
    detached_container,
    engine_scenario,
    new_name,
    require,
)


@pytest.fixture(scope="module", params=["add-runtime", "default-runtime"])
def docker_session(request: pytest.FixtureRequest, containerd: Containerd, runtime: str, images: Images,
                   base_dir: Path) -> Iterator[Dockerd]:
    require(DOCKERD, DOCKER)
    daemon = Dockerd(base_dir / request.param, containerd, runtime, default_runtime=request.param == "default-runtime")
    STATE_ROOTS.append(daemon.runtime_root)
    try:
        daemon("load", "-i", str(images.busybox_docker)).check()
        yield daemon
    finally:
        daemon.stop()
        STATE_ROOTS.remove(daemon.runtime_root)


_REMOVE = ("rm", "-f")


@pytest.fixture
def docker(request: pytest.FixtureRequest, docker_session: Dockerd) -> Iterator[Dockerd]:
    yield from engine_scenario(request, docker_session, _REMOVE)


@pytest.fixture
def running(docker: Dockerd) -> Iterator[str]:
    """A detached container whose init handles SIGTERM (removed afterwards)."""
    yield from detached_container(docker, "dk", BUSYBOX, _REMOVE)


def test_info_shows_the_runtime(docker: Dockerd, runtime: str) -> None:
    info = json.loads(docker.info("{{json .}}"))
    assert info["Runtimes"]["testrt"]["path"] == runtime, info["Runtimes"]
    if docker.default_runtime:  # dockerd parsed the commit out of `RUNTIME --version`
        assert info["DefaultRuntime"] == "testrt"
        assert info["RuncCommit"]["ID"] not in ("", "N/A"), info["RuncCommit"]


def test_run_rm_output_and_exit_status(docker: Dockerd) -> None:
    result = docker("run", "--rm", BUSYBOX, "sh", "-c", "echo hi; echo oops >&2; exit 3")
    assert result.returncode == 3, result.describe()
    assert (result.stdout, result.stderr) == ("hi\n", "oops\n"), result.describe()


def test_run_uses_the_runtime(docker: Dockerd) -> None:
    name = new_name("dk")
    docker("run", "--name", name, BUSYBOX, "true").check()
    assert docker.inspect(name, "{{.HostConfig.Runtime}}") == "testrt"
    docker("rm", name).check()


def test_run_it(docker: Dockerd) -> None:
    assert_tty_session(docker.in_pty("run", "--rm", "-it", BUSYBOX, "sh", send=TTY_SESSION.format(status=5),
                                     after=SHELL_PROMPT), 5)


def test_run_d_and_exec(docker: Dockerd, running: str) -> None:
    assert docker.inspect(running, "{{.State.Status}}") == "running"
    result = docker("exec", running, "sh", "-c", "echo exec-out; exit 4")
    assert result.returncode == 4 and result.stdout == "exec-out\n", result.describe()


def test_exec_it(docker: Dockerd, running: str) -> None:
    assert_tty_session(docker.in_pty("exec", "-it", running, "sh", send=TTY_SESSION.format(status=6),
                                     after=SHELL_PROMPT), 6)


def test_top(docker: Dockerd, running: str) -> None:
    out = docker("top", running).check().stdout
    assert "sh -c trap" in out, out


def test_pause_unpause(docker: Dockerd, running: str) -> None:
    docker("pause", running).check()
    assert docker.inspect(running, "{{.State.Status}}") == "paused"
    docker("unpause", running).check()
    assert docker.inspect(running, "{{.State.Status}}") == "running"
    assert docker("exec", running, "true").returncode == 0


def test_stats_no_stream(docker: Dockerd, running: str) -> None:
    stats = json.loads(docker("stats", "--no-stream", "--format", "{{json .}}", running).check().stdout)
    assert int(stats["PIDs"]) >= 1, stats
    assert not stats["MemUsage"].startswith("0B"), stats


def test_update_memory(docker: Dockerd, running: str) -> None:
    docker("update", "--memory", "64m", "--memory-swap", "128m", running).check()
    full_id = docker.inspect(running, "{{.Id}}")
    limit = Path(f"/sys/fs/cgroup/memory/{DOCKER_CGROUP_PARENT}/{full_id}/memory.limit_in_bytes")
    assert int(limit.read_text()) == 64 << 20
    assert docker.inspect(running, "{{.HostConfig.Memory}}") == str(64 << 20)


def test_stop_sends_term(docker: Dockerd, running: str) -> None:
    docker("stop", "-t", "10", running).check()
    assert docker.inspect(running, "{{.State.Status}}") == "exited"
    assert docker.inspect(running, "{{.State.ExitCode}}") == "7"
    assert "got TERM" in docker("logs", running).stdout


def test_restart(docker: Dockerd, running: str) -> None:
    started = docker.inspect(running, "{{.State.StartedAt}}")
    time.sleep(0.01)
    docker("restart", "-t", "10", running).check()
    assert docker.inspect(running, "{{.State.Status}}") == "running"
    assert docker.inspect(running, "{{.State.StartedAt}}") != started
    wait_until(lambda: docker("logs", running).stdout.count("ready") == 2, "the restarted init to print ready")


def test_rm_f_running(docker: Dockerd) -> None:
    name = new_name("dk")
    docker("run", "-d", "--name", name, BUSYBOX, "sleep", "1000").check()
    docker("rm", "-f", name).check()
    assert not docker("ps", "-aq").stdout.split()


def test_create_error_reaches_docker(docker: Dockerd) -> None:
    result = docker("run", "--rm", BUSYBOX, "/no-such-binary")
    assert result.returncode != 0, result.describe()
    assert "/no-such-binary" in result.stderr, result.describe()
