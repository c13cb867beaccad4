"""Docker 20.10 (dockerd on the session's containerd), the runtime added as `testrt` with `--add-runtime`
(used with `docker run --runtime testrt`) or in daemon.json as the `default-runtime`."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.commands import Result, run_in_pty, wait_until
from harness.daemons import DOCKER, DOCKERD, Containerd, Dockerd
from harness.images import BUSYBOX, Images



class Docker:
    """The docker client on one dockerd; `run_options` select the runtime under test."""

    def __init__(self, daemon: Dockerd, run_options: tuple[str, ...]) -> None:
        self.daemon = daemon
        self.run_options = ("--network", "none", *run_options)

    def __call__(self, *args: str, timeout: float = 30.0) -> Result:
        return self.daemon.docker(*self._with_run_options(args), timeout=timeout)

    def in_pty(self, *args: str, send: str, after: str) -> Result:
        return run_in_pty(self.daemon.docker_argv(*self._with_run_options(args)), send=send, after=after)

    def _with_run_options(self, args: tuple[str, ...]) -> tuple[str, ...]:
        return (args[0], *self.run_options, *args[1:]) if args and args[0] == "run" else args

    def inspect(self, name: str, template: str) -> str:
        return self("inspect", "--format", template, name).check().stdout.strip()


@pytest.fixture(scope="module", params=["add-runtime", "default-runtime"])
def docker_session(request: pytest.FixtureRequest, containerd: Containerd, runtime: str, images: Images,
                   base_dir: Path) -> Iterator[Docker]:
    require(DOCKERD, DOCKER)
    default = request.param == "default-runtime"
    daemon = Dockerd(base_dir / request.param, containerd, runtime, default_runtime=default)
    STATE_ROOTS.append(daemon.runtime_root)
    try:
        daemon.docker("load", "-i", str(images.busybox_docker)).check()
        yield Docker(daemon, () if default else ("--runtime", "testrt"))
    finally:
        daemon.stop()
        STATE_ROOTS.remove(daemon.runtime_root)


@pytest.fixture
def docker(docker_session: Docker) -> Iterator[Docker]:
    assert not docker_session("ps", "-aq").check().stdout.split(), "containers left by an earlier scenario"
    yield docker_session
    left = docker_session("ps", "-aq").stdout.split()
    if left:
        docker_session("rm", "-f", *left)
    assert not left, f"scenario left containers: {left}"



@pytest.fixture
def running(docker: Docker) -> Iterator[str]:
    """A detached container whose init handles SIGTERM (removed afterwards)."""
    name = new_name("dk")
    docker("run", "-d", "--name", name, BUSYBOX, "sh", "-c", TERM_HANDLER).check()
    wait_until(lambda: docker("logs", name).stdout.startswith("ready"), f"{name} to start")
    yield name
    docker("rm", "-f", name)


def test_info_shows_the_runtime(docker: Docker, runtime: str) -> None:
    info = json.loads(docker("info", "--format", "{{json .}}").check().stdout)
    assert info["Runtimes"]["testrt"]["path"] == runtime, info["Runtimes"]
    if docker.run_options[-1] == "none":  # default-runtime: dockerd parsed `RUNTIME --version`
        assert info["DefaultRuntime"] == "testrt"
        assert info["RuncCommit"]["ID"] not in ("", "N/A"), info["RuncCommit"]


def test_run_rm_output_and_exit_status(docker: Docker) -> None:
    result = docker("run", "--rm", BUSYBOX, "sh", "-c", "echo hi; echo oops >&2; exit 3")
    assert result.returncode == 3, result.describe()
    assert (result.stdout, result.stderr) == ("hi\n", "oops\n"), result.describe()


def test_run_uses_the_runtime(docker: Docker) -> None:
    name = new_name("dk")
    docker("run", "--name", name, BUSYBOX, "true").check()
    assert docker.inspect(name, "{{.HostConfig.Runtime}}") == "testrt"
    docker("rm", name).check()


def test_run_it(docker: Docker) -> None:
    result = docker.in_pty("run", "--rm", "-it", BUSYBOX, "sh", send="tty; echo $((6*7)); exit 5\r", after="# ")
    assert result.returncode == 5, result.describe()
    assert "/dev/pts/0" in result.stdout and "42" in result.stdout, result.describe()


def test_run_d_and_exec(docker: Docker, running: str) -> None:
    assert docker.inspect(running, "{{.State.Status}}") == "running"
    result = docker("exec", running, "sh", "-c", "echo exec-out; exit 4")
    assert result.returncode == 4 and result.stdout == "exec-out\n", result.describe()


def test_exec_it(docker: Docker, running: str) -> None:
    result = docker.in_pty("exec", "-it", running, "sh", send="tty; echo $((6*7)); exit 6\r", after="# ")
    assert result.returncode == 6, result.describe()
    assert re.search(r"/dev/pts/\d+", result.stdout) and "42" in result.stdout, result.describe()


def test_top(docker: Docker, running: str) -> None:
    out = docker("top", running).check().stdout
    assert "sh -c trap" in out, out


def test_pause_unpause(docker: Docker, running: str) -> None:
    docker("pause", running).check()
    assert docker.inspect(running, "{{.State.Status}}") == "paused"
    docker("unpause", running).check()
    assert docker.inspect(running, "{{.State.Status}}") == "running"
    assert docker("exec", running, "true").returncode == 0


def test_stats_no_stream(docker: Docker, running: str) -> None:
    stats = json.loads(docker("stats", "--no-stream", "--format", "{{json .}}", running).check().stdout)
    assert int(stats["PIDs"]) >= 1, stats
    assert not stats["MemUsage"].startswith("0B"), stats


def test_update_memory(docker: Docker, running: str) -> None:
    docker("update", "--memory", "64m", "--memory-swap", "128m", running).check()
    full_id = docker.inspect(running, "{{.Id}}")
    limit = Path(f"/sys/fs/cgroup/memory/docker/{full_id}/memory.limit_in_bytes")
    assert int(limit.read_text()) == 64 << 20
    assert docker.inspect(running, "{{.HostConfig.Memory}}") == str(64 << 20)


def test_stop_sends_term(docker: Docker, running: str) -> None:
    docker("stop", "-t", "10", running).check()
    assert docker.inspect(running, "{{.State.Status}}") == "exited"
    assert docker.inspect(running, "{{.State.ExitCode}}") == "7"
    assert "got TERM" in docker("logs", running).stdout


def test_restart(docker: Docker, running: str) -> None:
    started = docker.inspect(running, "{{.State.StartedAt}}")
    time.sleep(0.01)
    docker("restart", "-t", "10", running).check()
    assert docker.inspect(running, "{{.State.Status}}") == "running"
    assert docker.inspect(running, "{{.State.StartedAt}}") != started
    wait_until(lambda: docker("logs", running).stdout.count("ready") == 2, "the restarted init to print ready")


def test_rm_f_running(docker: Docker) -> None:
    name = new_name("dk")
    docker("run", "-d", "--name", name, BUSYBOX, "sleep", "1000").check()
    docker("rm", "-f", name).check()
    assert not docker("ps", "-aq").stdout.split()


def test_create_error_reaches_docker(docker: Docker) -> None:
    result = docker("run", "--rm", BUSYBOX, "/no-such-binary")
    assert result.returncode != 0, result.describe()
    assert "/no-such-binary" in result.stderr, result.describe()
