"""The benchmark's plumbing: runtimes, bundles, timed spawns, and cleaning up after the containers.

Every runtime call is a `posix_spawn` + `wait4` pair timed with `perf_counter`, so the figure is the
runtime's wall time plus a spawn cost that is the same for every runtime (the "spawn /bin/true" row
of the report measures it). `wait4` also gives the CPU time of the runtime process and of the
children it reaped (pyrunc's stage-1); the container's init is reparented to us, so it is not included.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "spec-tests"))
from helpers import default_config, ensure_rootfs  # noqa: E402  (the conformance harness's bundle defaults)

CGROUP_MOUNT = Path("/sys/fs/cgroup")
PR_SET_CHILD_SUBREAPER = 36
CALL_TIMEOUT = 30.0
#: Runtime processes started and not yet reaped: cleanup waits for them (an interrupted create would
#: otherwise make its cgroup after we removed ours).
IN_FLIGHT: set[int] = set()


@dataclass
class Call:
    """One finished runtime invocation."""

    seconds: float
    cpu_seconds: float  # user + system time of the process and of the children it reaped
    status: int  # exit code, or -N for signal N
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 0


class CallFailed(Exception):
    """A runtime call that had to succeed did not; the message carries its stderr."""


def become_subreaper() -> None:
    """Container inits are reparented to us (as to a shim), so we can wait for them and reap them.

    SIGCHLD is blocked so that `sigtimedwait` can sleep until a child exits (children get a clean mask)."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGCHLD])


class Spawner:
    """Spawns commands with stdin from /dev/null and stdout/stderr into scratch files we can read back."""

    def __init__(self, scratch: Path) -> None:
        self._devnull = os.open(os.devnull, os.O_RDWR)
        self._out = os.open(scratch / "stdout", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self._err = os.open(scratch / "stderr", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}

    def start(self, argv: list[str], capture: bool = True, stderr_path: str = "") -> int:
        """Start argv; with capture, its stdout and stderr go to the scratch files (truncated first),
        else to /dev/null, or stderr to `stderr_path` (for calls running side by side)."""
        if capture:
            for fd in (self._out, self._err):
                os.ftruncate(fd, 0)
                os.lseek(fd, 0, os.SEEK_SET)
        out, err = (self._out, self._err) if capture else (self._devnull, self._devnull)
        actions: list[tuple] = [(os.POSIX_SPAWN_DUP2, self._devnull, 0), (os.POSIX_SPAWN_DUP2, out, 1),
                                (os.POSIX_SPAWN_DUP2, err, 2)]
        if stderr_path:
            actions[2] = (os.POSIX_SPAWN_OPEN, 2, stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        pid = os.posix_spawn(argv[0], argv, self.env, file_actions=actions, setsigmask=())
        IN_FLIGHT.add(pid)
        return pid

    def _read(self, fd: int) -> str:
        os.lseek(fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks).decode(errors="replace")

    def call(self, argv: list[str], timeout: float = CALL_TIMEOUT) -> Call:
        """Run argv to completion (SIGKILLed after `timeout`), timed; reaps any orphan that exits meanwhile."""
        t0 = time.perf_counter()
        pid = self.start(argv)
        status, rusage = wait_for({pid}, timeout)[pid]
        seconds = time.perf_counter() - t0
        return Call(seconds, cpu_seconds(rusage), os.waitstatus_to_exitcode(status), self._read(self._out),
                    self._read(self._err))


def cpu_seconds(rusage: os.struct_rusage) -> float:
    return rusage.ru_utime + rusage.ru_stime


def wait_for(pids: set[int], timeout: float = CALL_TIMEOUT) -> dict[int, tuple[int, os.struct_rusage]]:
    """wait4 until every pid in `pids` has exited, reaping orphaned container inits along the way.

    A child that overstays `timeout` is killed (and reported with its signal status)."""
    pending = set(pids)
    results: dict[int, tuple[int, os.struct_rusage]] = {}
    deadline = time.monotonic() + timeout
    while pending:
        try:
            pid, status, rusage = os.wait4(-1, os.WNOHANG)
        except ChildProcessError:  # none left: the pending ones were reaped elsewhere
            break
        if pid == 0:
            if time.monotonic() > deadline:
                for stuck in pending:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(stuck, signal.SIGKILL)
                deadline = float("inf")
            _wait_any_child(0.5)
            continue
        IN_FLIGHT.discard(pid)
        if pid in pending:
            pending.discard(pid)
            results[pid] = (status, rusage)
    return results


def _wait_any_child(limit: float) -> None:
    """Block until a child changes state (SIGCHLD) or `limit` seconds pass."""
    signal.sigtimedwait([signal.SIGCHLD], limit)


def reap_orphans() -> None:
    """Reap every child that has already exited (container inits reparented to us)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        IN_FLIGHT.discard(pid)


def wait_gone(pid: int, timeout: float = 10.0) -> None:
    """Wait until `pid` (a container init, our child through the subreaper) has exited and is reaped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not ours (or already reaped): watch /proc instead
            if not Path(f"/proc/{pid}").exists():
                return
            done = 0
        if done == pid:
            return
        _wait_any_child(0.05)
    raise CallFailed(f"process {pid} still alive after {timeout}s")


@dataclass
class Runtime:
    """A runtime binary bound to a private `--root` and a cgroup sub-parent of the benchmark's own."""

    name: str
    path: str
    root: Path
    cgroup_parent: str  # e.g. /pyrunc-bench-1234/runc
    spawner: Spawner
    skipped: dict[str, str] = field(default_factory=dict)  # case → reason

    def argv(self, *args: str) -> list[str]:
        return [self.path, "--root", str(self.root), *args]

    def call(self, *args: str, timeout: float = CALL_TIMEOUT) -> Call:
        return self.spawner.call(self.argv(*args), timeout)

    def must(self, *args: str) -> Call:
        result = self.call(*args)
        if not result.ok:
            raise CallFailed(f"{self.name} {' '.join(args)}: exit {result.status}: {last_line(result.stderr)}")
        return result

    def state(self, container_id: str) -> dict:
        return json.loads(self.must("state", container_id).stdout)

    def ids(self) -> list[str]:
        return sorted(os.listdir(self.root)) if self.root.is_dir() else []

    def delete_all(self) -> None:
        for container_id in self.ids():
            self.call("delete", "--force", container_id)
        reap_orphans()


def last_line(text: str) -> str:
    """The last non-empty line (where a runtime says what went wrong), cut to 200 characters."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "(no output)"


class Workspace:
    """Temp dirs, the shared read-only rootfs, per-container bundles, and the benchmark cgroup parent."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="pyrunc-bench-"))
        self.cgroup_parent = f"pyrunc-bench-{os.getpid()}"
        self.rootfs = self.dir / "rootfs"
        subprocess.run(["cp", "-a", str(ensure_rootfs()), str(self.rootfs)], check=True)
        self.spawner = Spawner(self.dir)
        self._count = 0

    def runtime(self, name: str, path: str) -> Runtime:
        return Runtime(name, path, self.dir / f"root-{name}", f"/{self.cgroup_parent}/{name}", self.spawner)

    def bundle(self, rt: Runtime, args: list[str], memory_limit: int | None = None) -> tuple[str, str]:
        """Write a fresh bundle for one container; return (container id, bundle path)."""
        self._count += 1
        container_id = f"b{os.getpid()}-{self._count}"
        config = default_config()
        config["process"]["args"] = args
        config["root"] = {"path": str(self.rootfs), "readonly": True}
        config["linux"]["cgroupsPath"] = f"{rt.cgroup_parent}/{container_id}"
        if memory_limit is not None:
            config["linux"]["resources"]["memory"] = {"limit": memory_limit}
        path = self.dir / "bundles" / container_id
        path.mkdir(parents=True)
        (path / "config.json").write_text(json.dumps(config))
        return container_id, str(path)

    def forget_bundle(self, bundle: str) -> None:
        shutil.rmtree(bundle, ignore_errors=True)

    def cleanup(self, runtimes: list[Runtime]) -> list[str]:
        """Delete every container, kill what is left in our cgroups, remove them and the temp dirs.

        Returns a description of anything that had to be killed or could not be removed."""
        problems = []
        wait_for(set(IN_FLIGHT))
        for rt in runtimes:
            rt.delete_all()
        problems += kill_cgroup_processes(self.cgroup_parent)
        reap_orphans()
        problems += remove_cgroups(self.cgroup_parent)
        shutil.rmtree(self.dir, ignore_errors=True)
        return problems


def _our_cgroup_dirs(parent: str) -> list[Path]:
    """Every directory under our parent in every hierarchy, deepest first (the parent itself last)."""
    found = []
    for hierarchy in CGROUP_MOUNT.iterdir():
        top = hierarchy / parent
        if top.is_dir():
            found += [p for p in top.rglob("*") if p.is_dir()] + [top]
    return sorted(found, key=lambda p: -len(p.parts))


def kill_cgroup_processes(parent: str) -> list[str]:
    killed = []
    for directory in _our_cgroup_dirs(parent):
        try:
            pids = (directory / "cgroup.procs").read_text().split()
        except OSError:
            continue
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
                killed.append(f"killed leftover pid {pid} in {directory}")
    if killed:
        time.sleep(0.2)
    return killed


def remove_cgroups(parent: str) -> list[str]:
    problems = []
    for directory in _our_cgroup_dirs(parent):
        for _ in range(20):
            try:
                directory.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.05)
        else:
            problems.append(f"could not remove cgroup {directory}")
    return problems
