"""Parse argv from the command table without importing click (the hot path).

It understands exactly the well-formed command lines that engines send; for anything else (help,
version, an unknown flag, a missing argument, a bad value) it returns None and the caller hands the
command line to click, which explains the problem.
"""

from __future__ import annotations

from .spec import COMMANDS, GLOBAL_OPTIONS, Cmd, Opt

_TRUE = ("true", "1", "t", "yes")
_FALSE = ("false", "0", "f", "no")


class _GiveUp(Exception):
    """The command line is not a plain well-formed one: let click deal with it."""


def _index(options: tuple[Opt, ...]) -> dict[str, Opt]:
    table = {}
    for opt in options:
        for name in opt.names:
            table[name] = opt
            if name.startswith("--"):
                table[name[1:]] = opt  # Go's flag package also accepts -name
    return table


def _convert(opt: Opt, raw: str) -> object:
    if opt.kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise _GiveUp from None
    if isinstance(opt.kind, tuple) and raw not in opt.kind:
        raise _GiveUp
    return raw


def _parse_options(argv: list[str], pos: int, options: tuple[Opt, ...], into: dict) -> int:
    """Parse flags from argv[pos:] into `into` until the first positional; return its index."""
    table = _index(options)
    for opt in options:
        into[opt.dest] = list(opt.default) if opt.kind == "multi" else opt.default
    while pos < len(argv):
        arg = argv[pos]
        if arg == "--":
            return pos + 1
        if not arg.startswith("-") or arg == "-":
            return pos
        name, eq, inline = arg.partition("=")
        opt = table.get(name)
        if opt is None or name in ("-h", "--help"):
            raise _GiveUp
        pos += 1
        if opt.kind == "flag":
            if eq:
                if inline.lower() not in _TRUE + _FALSE:
                    raise _GiveUp
                into[opt.dest] = inline.lower() in _TRUE
            else:
                into[opt.dest] = True
            continue
        if not eq:
            if pos >= len(argv):
                raise _GiveUp
            inline = argv[pos]
            pos += 1
        value = _convert(opt, inline)
        if opt.kind == "multi":
            into[opt.dest].append(value)
        else:
            into[opt.dest] = value
    return pos


def _parse_args(cmd: Cmd, argv: list[str], pos: int, into: dict) -> None:
    for name in cmd.args:
        optional = name.endswith("?")
        key = name.rstrip("?").replace("-", "_")
        if pos < len(argv):
            into[key] = argv[pos]
            pos += 1
        elif optional:
            into[key] = None
        else:
            raise _GiveUp
    if cmd.rest:
        into[cmd.rest] = argv[pos:]
    elif pos != len(argv):
        raise _GiveUp


def parse(argv: list[str]) -> tuple[dict, str, dict] | None:
    """Return (global options, command name, command options and arguments), or None to defer to click."""
    try:
        g: dict = {}
        pos = _parse_options(argv, 0, GLOBAL_OPTIONS, g)
        if pos >= len(argv) or argv[pos] not in COMMANDS:
            return None
        cmd = COMMANDS[argv[pos]]
        o: dict = {}
        pos = _parse_options(argv, pos + 1, cmd.options, o)
        _parse_args(cmd, argv, pos, o)
        return g, cmd.name, o
    except _GiveUp:
        return None
