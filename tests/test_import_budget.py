"""The hot command paths never import click, jsonschema, pyroute2 or seccomp (issue 8), nor the stdlib
modules that cost milliseconds each for what a runtime needs of them (re and enum, json, socket, signal,
collections, typing, contextlib...: their C cores `_json`, `_socket`, `_signal` serve instead).

Each path runs the real console script in a subprocess with PYTHONPROFILEIMPORTTIME=1 (the same as
`python -X importtime`): every module imported by the runtime process, and by its forked children up
to their execve, is listed on stderr. This test is about which modules are imported, never about time.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import REPO, Bundle, new_id, process_gone, runtime_path

FORBIDDEN = {"click", "jsonschema", "pyroute2", "seccomp", "pyseccomp"}
SLOW_STDLIB = {"re", "enum", "json", "socket", "selectors", "signal", "collections", "typing", "contextlib",
               "functools", "dataclasses", "subprocess", "threading"}
PYRUNC = REPO / ".venv" / "bin" / "pyrunc"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or Path(runtime_path()) != PYRUNC.resolve(), reason="needs root and pyrunc as the runtime"
)


def imported_by(root: Path, *args: str) -> tuple[set[str], subprocess.CompletedProcess]:
    """Run `pyrunc --root ROOT *args`; return the top-level names of every module it imported.

    Output goes through files (a created container keeps its stdio open, a pipe would never close)."""
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    cmd = [str(PYRUNC), "--root", str(root), *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env, timeout=20)
        out.seek(0)
        err.seek(0)
        result = subprocess.CompletedProcess(cmd, proc.returncode, out.read().decode(), err.read().decode())
    modules = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "self [us]" not in line:
            modules.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert modules, f"no import lines: is PYTHONPROFILEIMPORTTIME honoured? stderr: {result.stderr[-500:]}"
    return modules, result


def assert_lean(root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    modules, result = imported_by(root, *args)
    heavy = sorted(modules & FORBIDDEN)
    assert not heavy, f"`pyrunc {' '.join(args)}` imported {heavy}"
    slow = sorted(modules & SLOW_STDLIB)
    assert not slow, f"`pyrunc {' '.join(args)}` imported {slow}"
    if ok:
        assert result.returncode == 0, f"`pyrunc {' '.join(args)}` failed: {result.stderr[-800:]}"
    return result


def test_the_check_sees_click_on_the_help_path(tmp_path: Path) -> None:
    """The detector works: help goes through click, and click shows up in the list."""
    modules, _ = imported_by(tmp_path, "--help")
    assert "click" in modules


@pytest.mark.parametrize("args", [
    ("state", "no-such-id"),
    ("kill", "no-such-id", "KILL"),
    ("delete", "no-such-id"),
    ("delete", "--force", "no-such-id"),
    ("--log", "LOG", "--log-format", "json", "state", "no-such-id"),
])
def test_error_paths_of_hot_commands(tmp_path: Path, args: tuple[str, ...]) -> None:
    """A missing container is an error, reported without reaching for click (to word it) or anything else."""
    args = tuple(str(tmp_path / "log.json") if a == "LOG" else a for a in args)
    assert_lean(tmp_path / "state", *args, ok=False)


@pytest.mark.parametrize("args", [("list",), ("list", "--format", "json"), ("list", "-q")])
def test_list(tmp_path: Path, args: tuple[str, ...]) -> None:
    assert_lean(tmp_path / "state", *args)


def _create(bundle: Bundle, state_root: Path, tmp_path: Path, *log: str) -> tuple[str, int]:
    """create a `sleep` container the way containerd's shim does; return its id and init pid."""
    container_id = new_id()
    bundle.set_args("sleep", "3600")
    bundle.write(container_id)
    assert_lean(state_root, *log, "create", "--bundle", str(bundle.path), "--pid-file", str(tmp_path / "pid"),
                container_id)
    return container_id, int((tmp_path / "pid").read_text())


def test_container_lifecycle(bundle: Bundle, state_root: Path, tmp_path: Path, leak_check: None) -> None:
    """create, state, start, kill, delete of a real container, with the shim's --log flags."""
    log = ("--log", str(tmp_path / "log.json"), "--log-format", "json")
    container_id, pid = _create(bundle, state_root, tmp_path, *log)
    assert_lean(state_root, *log, "state", container_id)
    assert_lean(state_root, *log, "start", container_id)
    assert_lean(state_root, *log, "kill", container_id, "KILL")
    assert process_gone(pid)
    assert_lean(state_root, *log, "delete", container_id)


def test_exec(bundle: Bundle, state_root: Path, tmp_path: Path, leak_check: None) -> None:
    container_id, _ = _create(bundle, state_root, tmp_path)
    assert_lean(state_root, "start", container_id)
    assert_lean(state_root, "exec", container_id, "true")


def test_run(bundle: Bundle, state_root: Path, leak_check: None) -> None:
    container_id = new_id()
    bundle.set_args("true")
    bundle.write(container_id)
    assert_lean(state_root, "run", "--bundle", str(bundle.path), container_id)
