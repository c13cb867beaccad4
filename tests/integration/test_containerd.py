"""containerd 1.6 (io.containerd.runc.v2 shim) driven by `ctr`, with the runtime as `--runc-binary`
or as the `runc` first on containerd's PATH."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness.commands import Background, Result, run_in_pty, wait_until
from harness.daemons import Containerd
from harness.host import CTR_NAMESPACE
from harness.images import BUSYBOX, Images
from harness.scenario import SHELL_PROMPT, TERM_HANDLER, TTY_SESSION, assert_tty_session, check_nothing_left, new_name


class Ctr:
    """ctr bound to the session containerd and the runtime under test."""

    def __init__(self, containerd: Containerd, runtime: str) -> None:
        self.containerd = containerd
        self.runtime = runtime

    def __call__(self, *args: str) -> Result:
        return self.containerd.ctr(*args)

    def run_argv(self, *options: str, cid: str, cmd: tuple[str, ...]) -> list[str]:
        return self.containerd.ctr_argv("run", "--runc-binary", self.runtime, *options, BUSYBOX, cid, *cmd)

    def run(self, *options: str, cid: str, cmd: tuple[str, ...]) -> Result:
        return self("run", "--runc-binary", self.runtime, *options, BUSYBOX, cid, *cmd)

    def tasks(self) -> dict[str, tuple[int, str]]:
        """task id -> (pid, status) from `ctr task ls`."""
        lines = self("task", "ls").check().stdout.splitlines()[1:]
        return {f[0]: (int(f[1]), f[2]) for f in (line.split() for line in lines) if f}

    def status(self, cid: str) -> str | None:
        task = self.tasks().get(cid)
        return task[1] if task else None

    def wait_status(self, cid: str, *statuses: str | None) -> None:
        wait_until(lambda: self.status(cid) in statuses, f"task {cid} to be {' or '.join(map(str, statuses))}")

    def pids(self, cid: str) -> list[int]:
        """The pids `ctr task ps` lists (init and exec processes)."""
        lines = self("task", "ps", cid).check().stdout.splitlines()[1:]
        return [int(line.split()[0]) for line in lines if line.strip()]

    def containers(self) -> list[str]:
        return self("containers", "ls", "-q").check().stdout.split()

    def remove(self, cid: str) -> None:
        """Kill every process of the task, delete it, remove the container."""
        if self.status(cid) is not None:
            self("task", "kill", "--all", "--signal", "SIGKILL", cid)
            self.wait_status(cid, "STOPPED", None)
            self("task", "delete", cid)
        self("containers", "rm", cid)


@pytest.fixture
def ctr(request: pytest.FixtureRequest, containerd: Containerd, runtime: str) -> Iterator[Ctr]:
    client = Ctr(containerd, runtime)
    assert not client.containers(), "containers left by an earlier scenario"
    yield client
    left = client.containers()
    for cid in left:
        client.remove(cid)
    check_nothing_left(request, left, "containers")


@pytest.fixture
def task(ctr: Ctr) -> Iterator[str]:
    """A detached container running `sleep` (removed afterwards)."""
    cid = new_name("ctr")
    ctr.run("-d", cid=cid, cmd=("sleep", "1000")).check()
    ctr.wait_status(cid, "RUNNING")
    yield cid
    ctr.remove(cid)


def test_run_rm_prints_output_and_exit_status(ctr: Ctr) -> None:
    result = ctr.run("--rm", cid=new_name("ctr"), cmd=("sh", "-c", "echo hi; echo oops >&2; exit 3"))
    assert result.returncode == 3, result.describe()
    assert (result.stdout, result.stderr) == ("hi\n", "oops\n"), result.describe()


def test_run_tty(ctr: Ctr) -> None:
    argv = ctr.run_argv("--rm", "-t", cid=new_name("ctr"), cmd=("sh",))
    assert_tty_session(run_in_pty(argv, send=TTY_SESSION.format(status=5), after=SHELL_PROMPT), 5)


def test_run_uses_the_runtime_binary(ctr: Ctr, task: str) -> None:
    assert ctr.containerd.runtime_binary_of(task) == ctr.runtime


def test_exec_output_and_exit_status(ctr: Ctr, task: str) -> None:
    result = ctr("task", "exec", "--exec-id", "e1", task, "sh", "-c", "echo exec-out; exit 4")
    assert result.returncode == 4, result.describe()
    assert result.stdout == "exec-out\n", result.describe()


def test_exec_tty(ctr: Ctr, task: str) -> None:
    argv = ctr.containerd.ctr_argv("task", "exec", "-t", "--exec-id", "e1", task, "sh")
    assert_tty_session(run_in_pty(argv, send=TTY_SESSION.format(status=6), after=SHELL_PROMPT), 6)


def test_task_ps_lists_init_and_exec(ctr: Ctr, task: str) -> None:
    ctr("task", "exec", "--detach", "--exec-id", "e2", task, "sleep", "1000").check()
    out = ctr("task", "ps", task).check().stdout
    assert len(ctr.pids(task)) == 2 and ctr.tasks()[task][0] in ctr.pids(task), out
    assert "ExecID:e2" in out, out


def test_pause_and_resume(ctr: Ctr, task: str) -> None:
    freezer = Path(f"/sys/fs/cgroup/freezer/{CTR_NAMESPACE}/{task}/freezer.state")
    ctr("task", "pause", task).check()
    assert ctr.status(task) == "PAUSED"
    assert freezer.read_text().strip() == "FROZEN"
    ctr("task", "resume", task).check()
    assert ctr.status(task) == "RUNNING"
    assert freezer.read_text().strip() == "THAWED"
    assert ctr("task", "exec", "--exec-id", "after", task, "true").returncode == 0


def test_metrics_read_the_container_cgroup(ctr: Ctr, task: str) -> None:
    out = ctr("task", "metrics", "--format", "json", task).check().stdout
    metrics = json.loads(out)
    assert metrics["pids"]["current"] == 1, out
    assert metrics["memory"]["usage"]["usage"] > 0, out
    assert metrics["cpu"]["usage"]["total"] > 0, out


@pytest.mark.parametrize(("signal", "status"), [("SIGTERM", 7), ("SIGKILL", 137)])
def test_kill_reaches_the_init(ctr: Ctr, signal: str, status: int) -> None:
    """`ctr run` (attached) reports the status the signal gave the init."""
    cid = new_name("ctr")
    attached = Background(ctr.run_argv("--rm", cid=cid, cmd=("sh", "-c", TERM_HANDLER)))
    try:
        ctr.wait_status(cid, "RUNNING")
        # The trap is set once the init's loop has started its first `sleep`.
        wait_until(lambda: len(ctr.pids(cid)) >= 2, "the init to set its trap")
        ctr("task", "kill", "--signal", signal, cid).check()
        result = attached.wait()
    finally:
        if attached.proc.poll() is None:  # the scenario failed: end `ctr run` before reporting
            ctr.remove(cid)
            attached.wait()
    assert result.returncode == status, result.describe()
    assert ("got TERM" in result.stdout) == (signal == "SIGTERM"), result.describe()


def test_kill_all_and_delete(ctr: Ctr) -> None:
    cid = new_name("ctr")
    ctr.run("-d", cid=cid, cmd=("sleep", "1000")).check()
    ctr("task", "exec", "--detach", "--exec-id", "e1", cid, "sleep", "1000").check()
    wait_until(lambda: len(ctr.pids(cid)) == 2, "two processes in the task")
    ctr("task", "kill", "--all", "--signal", "SIGKILL", cid).check()
    ctr.wait_status(cid, "STOPPED")
    ctr("task", "delete", cid).check()
    assert cid not in ctr.tasks()
    assert not Path(f"/run/containerd/runc/{CTR_NAMESPACE}/{cid}").exists()
    assert not Path(f"/sys/fs/cgroup/pids/{CTR_NAMESPACE}/{cid}").exists()
    ctr("containers", "rm", cid).check()


@pytest.mark.parametrize(("option", "cmd", "named"), [
    (("--with-ns", "network:/nonexistent-netns"), ("true",), "/nonexistent-netns"),
    ((), ("/no-such-binary",), "/no-such-binary"),
], ids=["bad-namespace-path", "args0-not-found"])
def test_create_error_reaches_ctr(ctr: Ctr, option: tuple[str, ...], cmd: tuple[str, ...], named: str) -> None:
    """The shim turns the runtime's last `error` log line into the error ctr prints."""
    result = ctr.run("--rm", *option, cid=new_name("ctr"), cmd=cmd)
    assert result.returncode != 0, result.describe()
    assert "OCI runtime create failed" in result.stderr and named in result.stderr, result.describe()
    assert not ctr.tasks()


def test_path_shim_makes_plain_ctr_run_use_the_runtime(runtime: str, images: Images, base_dir: Path) -> None:
    """`runc -> RUNTIME` first in containerd's PATH; no sbin on PATH, so Debian's runc cannot be found."""
    shim_dir = base_dir / "path-shim" / "bin"
    shim_dir.mkdir(parents=True)
    (shim_dir / "runc").symlink_to(runtime)
    daemon = Containerd(base_dir / "path-shim" / "containerd", path_env=f"{shim_dir}:/usr/bin:/bin")
    try:
        daemon.import_image(images.busybox_oci)
        result = daemon.ctr("run", "--rm", BUSYBOX, new_name("ctr"), "echo", "via PATH")
        assert (result.returncode, result.stdout) == (0, "via PATH\n"), result.describe()
        assert not daemon.ctr("containers", "ls", "-q").stdout.split()
    finally:
        daemon.stop()
