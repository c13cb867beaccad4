"""Container state on disk: one directory per container under the runtime root.

`<root>/<id>/state.json` holds what create learned (init pid and start time, bundle, the config, the
cgroup placement); the *status* is never stored but derived live from the init process, the exec fifo
and the freezer, so a crashed or killed container is seen as stopped without anyone updating the file.
"""

from __future__ import annotations

import fcntl
import os
import time

from . import fastjson
from .errors import ContainerExists, ContainerNotFound, UsageError

STATE_FILE = "state.json"
EXEC_FIFO = "exec.fifo"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.-")

CREATING = "creating"
CREATED = "created"
RUNNING = "running"
PAUSED = "paused"
STOPPED = "stopped"


def validate_id(container_id: str) -> None:
    """runc's rule: `^[\\w+-\\.]+$`, and never a path component that walks out of the root."""
    if not container_id or not _ID_CHARS.issuperset(container_id) or container_id in (".", ".."):
        raise UsageError(f"invalid container id format: {container_id!r}")
    if ".." in container_id:
        raise UsageError(f"invalid container id format: {container_id!r}")


def rfc3339_now() -> str:
    """UTC time as Go's RFC3339Nano prints it (trailing zeros of the fraction trimmed)."""
    ns = time.time_ns()
    seconds, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f"{frac:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def process_start_time(pid: int) -> tuple[int, str] | None:
    """(start time in clock ticks, state letter) of a process from /proc/PID/stat, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may contain spaces and parentheses: fields start after the last ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[19]), fields[0].decode()


def process_alive(pid: int, start_time: int) -> bool:
    """True while `pid` is the same process that was recorded (not reused) and not a zombie."""
    info = process_start_time(pid)
    return info is not None and info[0] == start_time and info[1] not in ("Z", "X")


class Container:
    """A container's directory and its recorded state; `status` is derived live."""

    def __init__(self, root: str, container_id: str, data: dict) -> None:
        self.root = root
        self.id = container_id
        self.dir = os.path.join(root, container_id)
        self.data = data
        #: descriptor holding the flock on the container's directory, when this process took it
        self.lock_fd = -1
        #: the pty master of a container created for a foreground `run` with a terminal, else -1
        self.console_master = -1

    def unlock(self) -> None:
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1

    @property
    def pid(self) -> int:
        return self.data.get("pid", 0)

    @property
    def config(self) -> dict:
        return self.data["config"]

    @property
    def bundle(self) -> str:
        return self.data["bundle"]

    def cgroup_manager(self) -> object | None:
        """The cgroup manager rebuilt from the state (no config re-read, no probing)."""
        data = self.data.get("cgroup")
        if not data:
            return None
        from .cgroups import from_state

        return from_state(data)

    def init_alive(self) -> bool:
        return self.pid > 0 and process_alive(self.pid, self.data["start_time"])

    def status(self) -> str:
        if not self.init_alive():
            return STOPPED
        if os.path.exists(os.path.join(self.dir, EXEC_FIFO)):
            return CREATED
        cgroup = self.cgroup_manager()
        if cgroup is not None and cgroup.is_frozen():
            return PAUSED
        return RUNNING

    def oci_state(self, status: str | None = None) -> dict:
        """The runtime-spec state object (plus runc's rootfs/created/owner fields)."""
        status = status or self.status()
        state = {
            "ociVersion": self.data["ociVersion"],
            "id": self.id,
            "pid": self.pid if status != STOPPED else 0,
            "status": status,
            "bundle": self.bundle,
            "rootfs": self.data["rootfs"],
            "created": self.data["created"],
        }
        annotations = self.config.get("annotations")
        if annotations:
            state["annotations"] = annotations
        state["owner"] = ""
        return state

    def save(self) -> None:
        """Write state.json atomically: a reader sees the old or the new file, never a torn one."""
        tmp = os.path.join(self.dir, f".{STATE_FILE}.tmp")
        with open(tmp, "w") as f:
            f.write(fastjson.dumps(self.data))
        os.rename(tmp, os.path.join(self.dir, STATE_FILE))

    def remove(self) -> None:
        """Remove the container's directory and everything in it (fifo, state, lock)."""
        for name in os.listdir(self.dir):
            os.unlink(os.path.join(self.dir, name))
        os.rmdir(self.dir)


class StateRoot:
    """The runtime root (`--root`) holding one directory per container."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)

    def _lock(self, path: str) -> int:
        """Hold an exclusive flock on the container's directory until the process exits or unlocks."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def new(self, container_id: str) -> Container:
        """Claim the id: create and lock its directory, refusing an id that exists."""
        validate_id(container_id)
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        path = os.path.join(self.root, container_id)
        try:
            os.mkdir(path, 0o711)
        except FileExistsError:
            raise ContainerExists(container_id) from None
        container = Container(self.root, container_id, {})
        container.lock_fd = self._lock(path)
        return container

    def load(self, container_id: str, lock: bool = True) -> Container:
        validate_id(container_id)
        path = os.path.join(self.root, container_id)
        lock_fd = -1
        try:
            if lock:
                lock_fd = self._lock(path)
            with open(os.path.join(path, STATE_FILE), "rb") as f:
                data = fastjson.loads(f.read())
        except (FileNotFoundError, NotADirectoryError):
            if lock_fd >= 0:
                os.close(lock_fd)
            raise ContainerNotFound(container_id) from None
        container = Container(self.root, container_id, data)
        container.lock_fd = lock_fd
        return container

    def remove_stale(self, container_id: str) -> None:
        """Remove the directory a create killed half-way left: no state.json, and nobody holds its lock."""
        validate_id(container_id)
        path = os.path.join(self.root, container_id)
        try:
            lock_fd = self._lock(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        try:
            if not os.path.exists(os.path.join(path, STATE_FILE)):
                Container(self.root, container_id, {}).remove()
        finally:
            os.close(lock_fd)

    def ids(self) -> list[str]:
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        return sorted(n for n in names if os.path.isfile(os.path.join(self.root, n, STATE_FILE)))
