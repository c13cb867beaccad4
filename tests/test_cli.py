"""The fast parser and the click view read one command table: they must agree on every command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pyrunc.cli.app import build, normalize_go_flags
from pyrunc.cli.fastparse import parse
from pyrunc.cli.spec import COMMANDS, GLOBAL_OPTIONS

PYRUNC = [sys.executable, "-m", "pyrunc"]


def click_parse(argv: list[str]) -> tuple[dict, str, dict]:
    seen = {}

    def dispatch(g: dict, name: str, o: dict) -> int:
        seen["result"] = (g, name, o)
        return 0

    build(dispatch, lambda: "v").main(normalize_go_flags(argv), prog_name="pyrunc", standalone_mode=False)
    return seen["result"]


def sample_value(opt) -> str:
    if opt.kind == "int":
        return "3"
    if isinstance(opt.kind, tuple):
        return opt.kind[-1]
    return "/some/value"


def command_lines() -> list[list[str]]:
    """For every command: bare, and with every flag set, in --x v, --x=v and Go's -x v spellings."""
    lines = []
    for cmd in COMMANDS.values():
        positional = ["cid"] if cmd.args else []
        if cmd.rest:
            positional += ["sh", "-c", "true"]
        lines.append([cmd.name, *positional])
        for style in ("space", "equals", "go"):
            argv = ["--root", "/tmp/r", "--log-format", "json", cmd.name]
            for opt in cmd.options:
                name = next(n for n in opt.names if n.startswith("--"))
                if style == "go":
                    name = name[1:]
                if opt.kind == "flag":
                    argv.append(name)
                elif style == "equals":
                    argv.append(f"{name}={sample_value(opt)}")
                else:
                    argv += [name, sample_value(opt)]
            lines.append(argv + positional)
    return lines


@pytest.mark.parametrize("argv", command_lines(), ids=lambda a: " ".join(a))
def test_fast_parser_agrees_with_click(argv: list[str]) -> None:
    fast = parse(argv)
    assert fast is not None, "a well-formed command line must take the fast path"
    assert fast == click_parse(argv)


def test_every_global_option_has_a_default() -> None:
    g, _name, _o = parse(["state", "x"])
    assert set(g) == {opt.dest for opt in GLOBAL_OPTIONS}


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["state"], ["state", "a", "b"], ["nosuch"], ["--bogus", "state", "x"],
    ["list", "--format", "yaml"], ["run", "--preserve-fds", "many", "x"], ["kill", "-h"],
])
def test_odd_command_lines_are_left_to_click(argv: list[str]) -> None:
    assert parse(argv) is None


def test_kill_signal_is_optional() -> None:
    assert parse(["kill", "c1"])[2] == {"all": False, "container_id": "c1", "signal": None}
    assert parse(["kill", "--all", "c1", "KILL"])[2] == {"all": True, "container_id": "c1", "signal": "KILL"}


def test_exec_passes_the_command_through_untouched() -> None:
    o = parse(["exec", "-t", "c1", "ls", "-l", "--color"])[2]
    assert o["tty"] and o["command"] == ["ls", "-l", "--color"]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*PYRUNC, *args], capture_output=True, text=True, check=False)


def test_usage_error_is_one_line_and_exit_1() -> None:
    done = run_cli("state")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "Missing argument" in done.stderr


def test_unknown_flag_is_one_line_and_exit_1() -> None:
    done = run_cli("--bogus", "list")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1


def test_version_in_runc_format() -> None:
    lines = run_cli("--version").stdout.splitlines()
    assert lines[0].startswith("pyrunc version ")
    assert lines[1].startswith("commit: ")
    assert lines[2].startswith("spec: 1.")


def test_help_lists_every_command() -> None:
    out = run_cli("--help").stdout
    for name in COMMANDS:
        assert name in out
