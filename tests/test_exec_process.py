"""How exec builds the process (runc's rules for flags and --process) and refuses containers it cannot join."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from helpers import default_config

from pyrunc.container import exec as exec_mod
from pyrunc.errors import ConfigError, InvalidState, UsageError


def flags(**values: object) -> dict:
    base = {"command": ["sh"], "cwd": "", "apparmor": "", "process_label": "", "cap": [], "env": [], "tty": False,
            "no_new_privs": False, "user": "", "additional_gids": []}
    return {**base, **values}


def test_flags_start_from_the_container_process() -> None:
    config = default_config()
    process = exec_mod.process_from_flags(config, flags(command=["ls", "-l"]))
    assert process["args"] == ["ls", "-l"]
    assert process["env"] == config["process"]["env"]
    assert process["capabilities"] == config["process"]["capabilities"]
    assert process["terminal"] is False
    assert config["process"]["args"] == ["sh"]  # the container's config is not modified


def test_flags_override_and_append() -> None:
    process = exec_mod.process_from_flags(default_config(), flags(
        cwd="/tmp", env=["A=1"], cap=["CAP_SYS_ADMIN"], tty=True, user="5:6", additional_gids=["7", "8"]))
    assert process["cwd"] == "/tmp"
    assert process["env"][-1] == "A=1"
    assert all("CAP_SYS_ADMIN" in process["capabilities"][kind]
               for kind in ("bounding", "effective", "permitted", "inheritable", "ambient"))
    assert process["terminal"] is True
    assert process["user"] == {"uid": 5, "gid": 6, "additionalGids": [7, 8]}


@pytest.mark.parametrize(("values", "error"), [
    ({"command": []}, "process args cannot be empty"),
    ({"user": "abc"}, "uid 'abc' is not a number"),
    ({"user": "1:x"}, "gid 'x' is not a number"),
    ({"additional_gids": ["-1"]}, "additional gid '-1' is not a number"),
])
def test_bad_flags(values: dict, error: str) -> None:
    with pytest.raises(UsageError, match=error):
        exec_mod.process_from_flags(default_config(), flags(**values))


def test_relative_cwd_is_refused() -> None:
    with pytest.raises(ConfigError, match="cwd"):
        exec_mod.process_from_flags(default_config(), flags(cwd="relative"))


def test_process_file_is_taken_as_is(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"args": ["id"], "cwd": "/"}))
    assert exec_mod.process_from_file(str(path), {"tty": False}) == {"args": ["id"], "cwd": "/"}
    assert exec_mod.process_from_file(str(path), {"tty": True})["terminal"] is True


@pytest.mark.parametrize("document", ['{"args": ["id"], "cwd": "/"', '{"args": [], "cwd": "/"}', '{"cwd": "/"}',
                                      '{"args": ["id"], "cwd": "x"}'])
def test_bad_process_file(tmp_path: Path, document: str) -> None:
    path = tmp_path / "p.json"
    path.write_text(document)
    with pytest.raises(ConfigError):
        exec_mod.process_from_file(str(path), {})


class FakeContainer:
    def __init__(self, status: str) -> None:
        self._status = status

    def status(self) -> str:
        return self._status


@pytest.mark.parametrize(("status", "message"), [("stopped", "stopped"), ("created", "created"),
                                                 ("paused", "paused")])
def test_containers_that_cannot_be_joined(status: str, message: str) -> None:
    with pytest.raises(InvalidState, match=message):
        exec_mod.check_can_exec(FakeContainer(status), ignore_paused=False)


def test_paused_with_ignore_paused_and_running_are_joined() -> None:
    exec_mod.check_can_exec(FakeContainer("paused"), ignore_paused=True)
    exec_mod.check_can_exec(FakeContainer("running"), ignore_paused=False)


def test_only_namespaces_that_differ_are_opened() -> None:
    assert exec_mod._open_namespaces(os.getpid()) == []


def test_preserved_descriptors_must_be_open() -> None:
    high = 3
    while True:
        try:
            os.fstat(high)
        except OSError:
            break
        high += 1
    with pytest.raises(UsageError, match=f"descriptor {high} is not open"):
        exec_mod._check_preserved(high - 2)


@pytest.mark.parametrize(("args", "expected"), [
    ([], {}),
    (["sub"], {"": "sub"}),
    (["pids:a"], {"pids": "a"}),
    (["cpu,cpuacct:b", "pids:c"], {"cpu": "b", "cpuacct": "b", "pids": "c"}),
])
def test_sub_cgroup_arguments(args: list[str], expected: dict) -> None:
    assert exec_mod.parse_sub_cgroups(args) == expected


@pytest.mark.parametrize(("args", "problem"), [
    (["a:b:c"], "invalid --cgroup argument: a:b:c"),
    (["x", "y"], "missing <controller>: prefix"),
    ([":x"], "empty <controller> prefix"),
    (["pids:a", "pids:b"], "controller pids specified multiple times"),
])
def test_bad_sub_cgroup_arguments(args: list[str], problem: str) -> None:
    with pytest.raises(UsageError, match=problem):
        exec_mod.parse_sub_cgroups(args)
