"""The one definition of pyrunc's command line: every command, its flags and arguments.

Both readers of the command line use this table: `fastparse` (the hot path: no click import) and
`app` (click: help, completion, usage errors). Nothing else defines a flag.
"""

from __future__ import annotations


class Opt:
    """A flag. `kind` is "flag" (boolean), "str", "int", "multi" (repeatable str) or a tuple of choices."""

    __slots__ = ("default", "help", "kind", "metavar", "names")

    def __init__(self, *names: str, kind: object = "flag", default: object = None, help: str = "", metavar: str = ""):
        self.names = names
        self.kind = kind
        self.default = (
            default if default is not None else (False if kind == "flag" else [] if kind == "multi" else None)
        )
        self.help = help
        self.metavar = metavar

    @property
    def dest(self) -> str:
        """The key under which the parsed value is handed to the command: `--pid-file` → `pid_file`."""
        long = next((n for n in self.names if n.startswith("--")), self.names[0])
        return long.lstrip("-").replace("-", "_")


class Cmd:
    """A subcommand: its flags, its positional arguments and whether the rest of argv is passed through."""

    __slots__ = ("args", "help", "name", "options", "rest")

    def __init__(self, name: str, help: str, options: tuple[Opt, ...] = (), args: tuple[str, ...] = (),
                 rest: str = "") -> None:
        self.name = name
        self.help = help
        self.options = options
        #: required positional arguments (names); optional trailing ones end with "?"
        self.args = args
        #: name of the key receiving every argument after the positional ones ("" = none allowed)
        self.rest = rest


_BUNDLE = Opt("--bundle", "-b", kind="str", default="",
              help="path to the root of the bundle directory, defaults to the current directory", metavar="DIR")
_CONSOLE_SOCKET = Opt("--console-socket", kind="str", default="",
                      help="path to an AF_UNIX socket which will receive the master end of the console's pty")
_PID_FILE = Opt("--pid-file", kind="str", default="", help="file to write the process id to")
_NO_PIVOT = Opt("--no-pivot", help="do not use pivot_root to jail the process inside rootfs (for ramdisks)")
_NO_NEW_KEYRING = Opt("--no-new-keyring", help="do not create a new session keyring for the container")
_PRESERVE_FDS = Opt("--preserve-fds", kind="int", default=0,
                    help="pass N additional file descriptors to the container (stdio + $LISTEN_FDS + N)")
_CREATE_OPTIONS = (_BUNDLE, _CONSOLE_SOCKET, _PID_FILE, _NO_PIVOT, _NO_NEW_KEYRING, _PRESERVE_FDS)
_FORMAT = Opt("--format", "-f", kind=("table", "json"), default="table", help="output format: table or json")

GLOBAL_OPTIONS = (
    Opt("--root", kind="str", default="",
        help="root directory for storage of container state (default: /run/pyrunc, or $XDG_RUNTIME_DIR/pyrunc "
             "for an unprivileged user)"),
    Opt("--log", kind="str", default="", help="log file path (default: stderr)"),
    Opt("--log-format", kind=("text", "json"), default="text", help="log format: text or json"),
    Opt("--debug", help="enable debug logging"),
    Opt("--systemd-cgroup", help="enable systemd cgroup support (cgroupsPath as slice:prefix:name)"),
    Opt("--rootless", kind=("true", "false", "auto"), default="auto",
        help="ignore cgroup permission errors: true, false or auto"),
)

COMMANDS: dict[str, Cmd] = {c.name: c for c in (
    Cmd("create", "create a container", _CREATE_OPTIONS, ("container-id",)),
    Cmd("start", "executes the user defined process in a created container", (), ("container-id",)),
    Cmd("run", "create and run a container", (
        *_CREATE_OPTIONS,
        Opt("--detach", "-d", help="detach from the container's process"),
        Opt("--keep", help="do not delete the container after it exits"),
    ), ("container-id",)),
    Cmd("state", "output the state of a container", (), ("container-id",)),
    Cmd("kill", "send a signal to the container's init process (default: SIGTERM)", (
        Opt("--all", "-a", help="send the signal to all processes in the container"),
    ), ("container-id", "signal?")),
    Cmd("delete", "delete any resources held by the container", (
        Opt("--force", "-f", help="forcibly delete the container if it is still running (uses SIGKILL)"),
    ), ("container-id",)),
    Cmd("list", "lists containers started by pyrunc with the given root", (
        _FORMAT,
        Opt("--quiet", "-q", help="display only container IDs"),
    )),
    Cmd("exec", "execute new process inside the container", (
        _CONSOLE_SOCKET,
        Opt("--cwd", kind="str", default="", help="current working directory in the container"),
        Opt("--env", "-e", kind="multi", help="set environment variables"),
        Opt("--tty", "-t", help="allocate a pseudo-TTY"),
        Opt("--user", "-u", kind="str", default="", help="UID (format: <uid>[:<gid>])"),
        Opt("--additional-gids", "-g", kind="multi", help="additional gids"),
        Opt("--process", "-p", kind="str", default="", help="path to the process.json"),
        Opt("--detach", "-d", help="detach from the container's process"),
        _PID_FILE,
        Opt("--process-label", kind="str", default="", help="set the asm process label for the process"),
        Opt("--apparmor", kind="str", default="", help="set the apparmor profile for the process"),
        Opt("--no-new-privs", help="set the no new privileges value for the process"),
        Opt("--cap", "-c", kind="multi", help="add a capability to the bounding set for the process"),
        _PRESERVE_FDS,
        Opt("--cgroup", kind="multi", help="run the process in an (existing) sub-cgroup(s)"),
        Opt("--ignore-paused", help="allow exec in a paused container"),
    ), ("container-id",), rest="command"),
    Cmd("ps", "ps displays the processes running inside a container", (_FORMAT,), ("container-id",),
        rest="ps_args"),
    Cmd("pause", "pause suspends all processes inside the container", (), ("container-id",)),
    Cmd("resume", "resumes all processes that have been previously paused", (), ("container-id",)),
    Cmd("events", "display container events such as OOM notifications, cpu, memory, and IO usage statistics", (
        Opt("--interval", kind="str", default="5s", help="set the stats collection interval"),
        Opt("--stats", help="display the container's stats then exit"),
    ), ("container-id",)),
    Cmd("update", "update container resource constraints", (
        Opt("--resources", "-r", kind="str", default="",
            help="path to a file containing the resources to update or '-' to read from stdin"),
        Opt("--blkio-weight", kind="int", help="specifies per cgroup weight, range is from 10 to 1000"),
        Opt("--cpu-period", kind="str", help="CPU CFS period to be used for hardcapping (in usecs)"),
        Opt("--cpu-quota", kind="str", help="CPU CFS hardcap limit (in usecs), allowed cpu time in a given period"),
        Opt("--cpu-share", "--cpu-shares", kind="str", help="CPU shares (relative weight vs. other containers)"),
        Opt("--cpu-rt-period", kind="str", help="CPU realtime period to be used for hardcapping (in usecs)"),
        Opt("--cpu-rt-runtime", kind="str", help="CPU realtime hardcap limit (in usecs)"),
        Opt("--cpuset-cpus", kind="str", help="CPU(s) to use"),
        Opt("--cpuset-mems", kind="str", help="memory node(s) to use"),
        Opt("--kernel-memory", kind="str", help="kernel memory limit (in bytes), ignored"),
        Opt("--kernel-memory-tcp", kind="str", help="kernel memory limit for tcp buffer (in bytes)"),
        Opt("--memory", kind="str", help="memory limit (in bytes)"),
        Opt("--memory-reservation", kind="str", help="memory reservation or soft_limit (in bytes)"),
        Opt("--memory-swap", kind="str", help="total memory usage (memory + swap); set '-1' to enable unlimited swap"),
        Opt("--pids-limit", kind="int", help="maximum number of pids allowed in the container"),
        Opt("--l3-cache-schema", kind="str", help="the string of Intel RDT/CAT L3 cache schema"),
        Opt("--mem-bw-schema", kind="str", help="the string of Intel RDT/MBA memory bandwidth schema"),
    ), ("container-id",)),
    Cmd("spec", "create a new specification file", (
        _BUNDLE,
        Opt("--rootless", help="generate a configuration for a rootless container"),
    )),
    Cmd("features", "show the enabled features", ()),
)}
