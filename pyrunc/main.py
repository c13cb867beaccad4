"""pyrunc's entry point: the one place where exceptions become a one-line message and an exit status.

Well-formed command lines are parsed by `cli.fastparse` and dispatched straight to `commands.<name>`;
everything else (help, version, usage errors) goes through click, built from the same command table.
"""

from __future__ import annotations

import os
import sys

from .errors import PyruncError
from .log import configure, logger


def default_root() -> str:
    if os.geteuid() == 0:
        return "/run/pyrunc"
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    return os.path.join(runtime_dir, "pyrunc") if runtime_dir else f"/tmp/pyrunc-{os.geteuid()}"


class GlobalOptions:
    """The global flags every command receives."""

    __slots__ = ("debug", "log", "log_format", "root", "rootless", "systemd_cgroup")

    def __init__(self, values: dict) -> None:
        self.root: str = values["root"] or default_root()
        self.log: str = values["log"]
        self.log_format: str = values["log_format"]
        self.debug: bool = values["debug"]
        self.systemd_cgroup: bool = values["systemd_cgroup"]
        rootless = values["rootless"]
        self.rootless: bool = os.geteuid() != 0 if rootless == "auto" else rootless == "true"


def dispatch(global_values: dict, name: str, options: dict) -> int:
    """Run command `name`; library errors become one line on stderr (and in --log) and exit status 1."""
    configure(global_values["log"], global_values["log_format"], global_values["debug"])
    try:
        module = __import__(f"pyrunc.commands.{name}", fromlist=["run"])
        return module.run(GlobalOptions(global_values), options)
    except PyruncError as err:
        logger.error(str(err))
        return err.exit_code
    except OSError as err:
        logger.error(f"{name}: {err.strerror or err}" + (f": {err.filename}" if err.filename else ""))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as err:  # the last line of defence: never a traceback for the user
        if global_values["debug"]:
            import traceback

            traceback.print_exc()
        logger.error(f"{name}: internal error: {type(err).__name__}: {err}")
        return 1


def version_text() -> str:
    from . import SPEC_VERSION, __version__
    from .version_info import libseccomp_version

    return (f"pyrunc version {__version__}\ncommit: v{__version__}\nspec: {SPEC_VERSION}\n"
            f"python: {sys.version.split()[0]}\nlibseccomp: {libseccomp_version()}")


def _click_main(argv: list[str]) -> int:
    import click

    from .cli.app import build, normalize_go_flags

    group = build(dispatch, version_text)
    try:
        result = group.main(normalize_go_flags(argv), prog_name="pyrunc", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as err:
        click.echo(err.ctx.get_help() if err.ctx else str(err))
        return 0
    except click.UsageError as err:
        where = f"{err.ctx.command_path}: " if err.ctx else ""
        sys.stderr.write(f"{where}{err.format_message()}\n")
        return 1
    except click.exceptions.Exit as err:
        return err.exit_code
    except click.Abort:
        return 1
    return result if isinstance(result, int) else 0


def main() -> None:
    import gc

    gc.disable()  # a runtime command is short-lived: collecting cycles would only cost time
    from .cli.fastparse import parse

    argv = sys.argv[1:]
    parsed = parse(argv)
    code = _click_main(argv) if parsed is None else dispatch(*parsed)
    _exit_now(code)


def _exit_now(code: int) -> None:
    """Exit without the interpreter's finalization (tearing down every module and a last garbage
    collection: milliseconds on every call). pyrunc holds no buffered file but stdout and stderr."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said there
            pass
    os._exit(code)
