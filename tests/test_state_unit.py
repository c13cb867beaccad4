"""State directory rules that need no container: ids, timestamps, atomic writes, live status."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from pyrunc.errors import ContainerExists, ContainerNotFound, UsageError
from pyrunc.signals import parse_signal
from pyrunc.state import CREATED, RUNNING, STOPPED, StateRoot, process_start_time, rfc3339_now, validate_id


@pytest.mark.parametrize("good", ["a", "abc-DEF_1.2+3", "x" * 200])
def test_valid_ids(good: str) -> None:
    validate_id(good)


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "../x", "a..b", "a b", "é", "a\n"])
def test_invalid_ids(bad: str) -> None:
    with pytest.raises(UsageError):
        validate_id(bad)


def test_rfc3339_like_go() -> None:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z", rfc3339_now())


def test_new_refuses_existing_id(tmp_path) -> None:
    root = StateRoot(str(tmp_path))
    root.new("c1")
    with pytest.raises(ContainerExists):
        root.new("c1")


def test_load_unknown(tmp_path) -> None:
    with pytest.raises(ContainerNotFound):
        StateRoot(str(tmp_path)).load("nope")


def _record(root: StateRoot, pid: int, start_time: int) -> None:
    c = root.new("c1")
    c.data = {"ociVersion": "1.2.0", "pid": pid, "start_time": start_time, "bundle": "/b", "rootfs": "/b/r",
              "created": rfc3339_now(), "config": {"annotations": {"k": "v"}}, "cgroup": None}
    c.save()
    c.unlock()


def test_status_follows_the_process(tmp_path) -> None:
    child = subprocess.Popen(["sleep", "30"])
    try:
        root = StateRoot(str(tmp_path))
        _record(root, child.pid, process_start_time(child.pid)[0])
        c = root.load("c1", lock=False)
        os.mkfifo(os.path.join(c.dir, "exec.fifo"))
        assert c.status() == CREATED
        os.unlink(os.path.join(c.dir, "exec.fifo"))
        assert c.status() == RUNNING
        state = c.oci_state()
        assert list(state) == ["ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
                               "annotations", "owner"]
        child.kill()
        child.wait()
        assert c.status() == STOPPED
        assert c.oci_state()["pid"] == 0
    finally:
        child.kill()
        child.wait()


def test_reused_pid_reads_as_stopped(tmp_path) -> None:
    root = StateRoot(str(tmp_path))
    _record(root, os.getpid(), process_start_time(os.getpid())[0] + 1)
    assert root.load("c1", lock=False).status() == STOPPED


def test_zombie_reads_as_stopped(tmp_path) -> None:
    child = subprocess.Popen(["true"])
    try:
        while process_start_time(child.pid)[1] != "Z":
            pass
        root = StateRoot(str(tmp_path))
        _record(root, child.pid, process_start_time(child.pid)[0])
        assert root.load("c1", lock=False).status() == STOPPED
    finally:
        child.wait()


@pytest.mark.parametrize(("raw", "number"), [("KILL", 9), ("SIGKILL", 9), ("kill", 9), ("9", 9), ("TERM", 15),
                                             ("sigusr1", 10)])
def test_signal_names(raw: str, number: int) -> None:
    assert parse_signal(raw) == number


@pytest.mark.parametrize("raw", ["BOGUS", "0", "999", "-1", ""])
def test_bad_signals(raw: str) -> None:
    with pytest.raises(UsageError):
        parse_signal(raw)


def test_force_delete_removes_what_a_killed_create_left(tmp_path) -> None:
    """A create killed before it wrote state.json leaves its directory; `delete --force` clears it."""
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "exec.fifo").touch()
    done = subprocess.run([sys.executable, "-m", "pyrunc", "--root", str(tmp_path), "delete", "--force", "half"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "half").exists()
