"""The click view of the command table: help, shell completion and the wording of usage errors.

Only command lines the fast parser declined come here, so importing click costs nothing on the paths
engines call many times per container.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from .spec import COMMANDS, GLOBAL_OPTIONS, Cmd, Opt


def _click_option(opt: Opt) -> Callable:
    kwargs: dict = {"help": opt.help, "show_default": opt.kind not in ("flag", "multi") and bool(opt.default)}
    if opt.kind == "flag":
        kwargs["is_flag"] = True
    elif opt.kind == "int":
        kwargs["type"] = int
    elif opt.kind == "multi":
        kwargs["multiple"] = True
    elif isinstance(opt.kind, tuple):
        kwargs["type"] = click.Choice(opt.kind)
    kwargs["default"] = opt.default
    if opt.metavar:
        kwargs["metavar"] = opt.metavar
    return click.option(*opt.names, opt.dest, **kwargs)


def _click_command(cmd: Cmd, dispatch: Callable[[dict, str, dict], int]) -> click.Command:
    @click.pass_context
    def callback(ctx: click.Context, **values: object) -> None:
        values = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        ctx.exit(dispatch(ctx.obj, cmd.name, values))

    for opt in reversed(cmd.options):
        callback = _click_option(opt)(callback)
    params = [click.Argument([name.rstrip("?").replace("-", "_")], required=not name.endswith("?"))
              for name in cmd.args]
    if cmd.rest:
        params.append(click.Argument([cmd.rest], nargs=-1, type=click.UNPROCESSED))
    command = click.command(cmd.name, help=cmd.help, context_settings={
        "allow_interspersed_args": not cmd.rest, "help_option_names": ["-h", "--help"]})(callback)
    command.params.extend(params)
    return command


def build(dispatch: Callable[[dict, str, dict], int], version_text: Callable[[], str]) -> click.Group:
    """The click group of every command in the table, each calling `dispatch(globals, name, options)`."""

    def show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        if value and not ctx.resilient_parsing:
            click.echo(version_text())
            ctx.exit(0)

    @click.group(context_settings={"help_option_names": ["-h", "--help"]},
                 help="pyrunc is a command line client for running applications packaged according to the "
                      "Open Container Initiative (OCI) format, compatible with runc.")
    @click.option("--version", "-v", is_flag=True, expose_value=False, is_eager=True, callback=show_version,
                  help="print the version")
    @click.pass_context
    def group(ctx: click.Context, **values: object) -> None:
        ctx.obj = values

    for opt in reversed(GLOBAL_OPTIONS):
        group = _click_option(opt)(group)
    for cmd in COMMANDS.values():
        group.add_command(_click_command(cmd, dispatch))
    return group


def normalize_go_flags(argv: list[str]) -> list[str]:
    """Go's flag package accepts `-root`; click wants `--root`. Rewrite single-dash long names we know."""
    known = {n[1:] for opt in GLOBAL_OPTIONS for n in opt.names if n.startswith("--")}
    known |= {n[1:] for cmd in COMMANDS.values() for opt in cmd.options for n in opt.names if n.startswith("--")}
    out = []
    for arg in argv:
        name = arg.partition("=")[0]
        out.append("-" + arg if name in known else arg)
    return out
