"""Lifecycle operations of runtime.md: create, start, kill, delete and their status transitions."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from helpers import Bundle, Runtime, new_id, process_gone


def _wait_for(path: Path, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_create_gives_created(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "Create": "the runtime MUST set the status to created" once create has finished."""
    cid = new_id()
    bundle.set_args("sleep", "100")
    rt.create(cid, bundle)
    assert rt.state(cid)["status"] == "created"


def test_user_process_runs_only_after_start(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """runtime.md "Create": "the user-specified program (from process) MUST NOT be run at this time";
    "Start": "This operation MUST run the user-specified program as specified by process"."""
    shared = tmp_path / "shared"
    shared.mkdir()
    bundle.add_bind(shared, "/out")
    bundle.set_args("sh", "-c", "touch /out/started; sleep 100")
    cid = new_id()
    rt.create(cid, bundle)
    time.sleep(0.2)
    assert not (shared / "started").exists(), "the user process ran before start"
    rt.start(cid)
    assert _wait_for(shared / "started"), "the user process did not run after start"


def test_start_gives_running(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "Lifecycle" step 7-8: after start the container's status is running while the
    program executes ("running: the container process has executed the user-specified program")."""
    cid = new_id()
    bundle.set_args("sleep", "100")
    rt.create(cid, bundle)
    rt.start(cid)
    assert rt.state(cid)["status"] == "running"


def test_process_exit_gives_stopped(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "State": "stopped: the container process has exited"."""
    cid = new_id()
    bundle.set_args("true")
    rt.create(cid, bundle)
    rt.start(cid)
    rt.wait_status(cid, "stopped")


def test_delete_removes_container(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "Delete": "Deleting a container MUST delete the resources that were created during the
    create step"; afterwards the id is unknown ("This operation MUST generate an error if it is not
    provided the ID of a container")."""
    cid = new_id()
    bundle.set_args("true")
    rt.create(cid, bundle)
    rt.start(cid)
    rt.wait_status(cid, "stopped")
    rt.delete(cid)
    assert rt("state", cid).returncode != 0
    assert cid not in rt.container_ids()


def test_full_status_sequence(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "Lifecycle": created → (start) running → (kill) stopped → (delete) gone."""
    cid = new_id()
    bundle.set_args("sleep", "100")
    rt.create(cid, bundle)
    seen = [rt.state(cid)["status"]]
    rt.start(cid)
    seen.append(rt.state(cid)["status"])
    rt.kill(cid, "KILL")
    seen.append(rt.wait_status(cid, "stopped")["status"])
    rt.delete(cid)
    assert seen == ["created", "running", "stopped"]
    assert rt("state", cid).returncode != 0


@pytest.mark.parametrize("signal", ["KILL", "SIGKILL", "9", "TERM"])
def test_kill_signal_forms(rt: Runtime, bundle: Bundle, signal: str) -> None:
    """runtime.md "Kill": "This operation MUST send the specified signal to the container process";
    runc accepts a name with or without SIG, or a number. (pid 1 ignores signals it has no handler for,
    so the process traps TERM.)"""
    cid = new_id()
    bundle.set_args("sh", "-c", "trap 'exit 3' TERM; sleep 100 & wait")
    rt.create(cid, bundle)
    rt.start(cid)
    rt.kill(cid, signal)
    rt.wait_status(cid, "stopped")


def test_kill_created_container(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "Kill": the operation applies to a created or running container."""
    cid = new_id()
    bundle.set_args("sleep", "100")
    rt.create(cid, bundle)
    rt.kill(cid, "KILL")
    rt.wait_status(cid, "stopped")


def test_kill_stopped_container_is_error(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "Kill": "Attempting to send a signal to a container that is neither created nor running
    MUST have no effect on the container and MUST generate an error"."""
    cid = new_id()
    bundle.set_args("true")
    rt.create(cid, bundle)
    rt.start(cid)
    rt.wait_status(cid, "stopped")
    assert rt.kill(cid, "KILL", check=False).returncode != 0
    assert rt.state(cid)["status"] == "stopped"


@pytest.mark.parametrize("status", ["created", "running"])
def test_delete_not_stopped_is_error(rt: Runtime, bundle: Bundle, status: str, xfail_runc) -> None:
    """runtime.md "Delete": "Attempting to delete a container that is not stopped MUST have no effect on
    the container and MUST generate an error"."""
    if status == "created":
        xfail_runc('runtime.md "Delete": runc 1.1 `delete` without --force kills and deletes a created '
                   'container instead of failing')
    cid = new_id()
    bundle.set_args("sleep", "100")
    rt.create(cid, bundle)
    if status == "running":
        rt.start(cid)
    before = rt.state(cid)
    assert rt.delete(cid, check=False).returncode != 0
    after = rt.state(cid)
    assert after["status"] == status
    assert after["pid"] == before["pid"]
    os.kill(after["pid"], 0)


@pytest.mark.parametrize("status", ["created", "running"])
def test_force_delete(rt: Runtime, bundle: Bundle, status: str) -> None:
    """runc `delete --force` kills a created or running container and deletes it."""
    cid = new_id()
    bundle.set_args("sleep", "100")
    rt.create(cid, bundle)
    if status == "running":
        rt.start(cid)
    pid = rt.state(cid)["pid"]
    rt.delete(cid, force=True)
    assert rt("state", cid).returncode != 0
    assert process_gone(pid), f"container process {pid} survived delete --force"


def test_start_running_container_is_error(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "Start": "Attempting to start a container that is not created MUST have no effect on the
    container and MUST generate an error"."""
    cid = new_id()
    bundle.set_args("sleep", "100")
    rt.create(cid, bundle)
    rt.start(cid)
    pid = rt.state(cid)["pid"]
    assert rt.start(cid, check=False).returncode != 0
    assert rt.state(cid)["status"] == "running"
    assert rt.state(cid)["pid"] == pid


def test_start_stopped_container_is_error(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "Start": "Attempting to start a container that is not created MUST ... generate an
    error"."""
    cid = new_id()
    bundle.set_args("true")
    rt.create(cid, bundle)
    rt.start(cid)
    rt.wait_status(cid, "stopped")
    assert rt.start(cid, check=False).returncode != 0
    assert rt.state(cid)["status"] == "stopped"


@pytest.mark.parametrize("operation", [("state",), ("start",), ("kill", "KILL"), ("delete",)])
def test_unknown_id_is_error(rt: Runtime, operation: tuple[str, ...]) -> None:
    """runtime.md "Operations": state/start/kill/delete "MUST generate an error if it is not provided the
    ID of a container" (an id the runtime does not know)."""
    result = rt(operation[0], "no-such-container", *operation[1:])
    assert result.returncode != 0
    assert result.stderr.strip()


@pytest.mark.parametrize("bad_id", ["bad/id", "..", "", "with space"])
def test_create_invalid_id_is_error(rt: Runtime, bundle: Bundle, bad_id: str) -> None:
    """runtime.md "Create": the id must be usable as a container id; runc rejects ids that are not
    `[\\w+-.]+` (a path separator or `..` would escape the state root)."""
    bundle.set_args("true")
    bundle.write("unused")
    result = rt("create", "--bundle", str(bundle.path), bad_id)
    assert result.returncode == 1
    assert result.stderr.strip()
    assert rt.container_ids() == []


def test_run_detach_gives_running(rt: Runtime, bundle: Bundle) -> None:
    """runc `run --detach`: create and start in one step, return while the container is running."""
    cid = new_id()
    bundle.set_args("sleep", "100")
    bundle.write(cid)
    rt("run", "--detach", "--bundle", str(bundle.path), cid, check=True)
    assert rt.state(cid)["status"] == "running"


def test_pid_file_has_init_pid(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """runc `create --pid-file`: the file holds the host pid of the container process (state `pid`)."""
    cid = new_id()
    pid_file = tmp_path / "init.pid"
    bundle.set_args("sleep", "100")
    rt.create(cid, bundle, "--pid-file", str(pid_file))
    assert int(pid_file.read_text().strip()) == rt.state(cid)["pid"]


def test_run_exit_code(rt: Runtime, bundle: Bundle) -> None:
    """runc `run` exits with the container process's exit status."""
    bundle.set_args("sh", "-c", "exit 42")
    code, _, _ = rt.run_container(bundle)
    assert code == 42


def test_run_killed_by_signal_exits_128_plus_n(rt: Runtime, bundle: Bundle) -> None:
    """runc `run` of a container whose process is killed by signal N exits 128+N (shell convention)."""
    cid = new_id()
    bundle.set_args("sleep", "100")
    bundle.write(cid)
    cmd = [rt.path, "--root", str(rt.root), "run", "--bundle", str(bundle.path), cid]
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as proc:
        try:
            rt.wait_status(cid, "running")
            rt.kill(cid, "KILL")
            assert proc.wait(timeout=10) == 128 + 9
        finally:
            if proc.poll() is None:
                proc.kill()


def test_run_deletes_container_after_exit(rt: Runtime, bundle: Bundle) -> None:
    """runc `run` (without --keep) deletes the container once its process has exited."""
    cid = new_id()
    bundle.set_args("true")
    code, _, err = rt.run_container(bundle, cid)
    assert code == 0, err
    assert rt("state", cid).returncode != 0
    assert cid not in rt.container_ids()
