"""The runtime's log: `--log FILE` with `--log-format text|json`, in the shapes runc's logrus writes.

containerd's shim reads the JSON lines (`{"level":...,"msg":...,"time":...}`) and shows the last
`error` one to its user; without `--log`, messages go to stderr in the text shape.
"""

from __future__ import annotations

import os
import sys
import time

from . import fastjson

_LEVELS = {"debug": 0, "info": 1, "warning": 2, "error": 3}


class Logger:
    def __init__(self, path: str = "", fmt: str = "text", debug: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        self.min_level = _LEVELS["debug"] if debug else _LEVELS["info"]

    def _line(self, level: str, msg: str) -> str:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if self.fmt == "json":
            return fastjson.dumps({"level": level, "msg": msg, "time": now}) + "\n"
        return f'time="{now}" level={level} msg={fastjson.quote(msg)}\n'

    def log(self, level: str, msg: str) -> None:
        if _LEVELS[level] < self.min_level:
            return
        line = self._line(level, msg)
        if self.path:
            # O_APPEND: the shim, the runtime and the init may all write the same file.
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        else:
            sys.stderr.write(line)
            sys.stderr.flush()

    def debug(self, msg: str) -> None:
        self.log("debug", msg)

    def info(self, msg: str) -> None:
        self.log("info", msg)

    def warning(self, msg: str) -> None:
        self.log("warning", msg)

    def error(self, msg: str) -> None:
        """An error goes to the log (if any) and, as one plain line, to stderr."""
        if self.path:
            self.log("error", msg)
        sys.stderr.write(msg + "\n")
        sys.stderr.flush()


#: The process-wide logger, configured by the CLI from the global flags.
logger = Logger()


def configure(path: str, fmt: str, debug: bool) -> None:
    logger.path = path
    logger.fmt = fmt
    logger.min_level = _LEVELS["debug"] if debug else _LEVELS["info"]
