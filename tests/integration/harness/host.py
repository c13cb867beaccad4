"""What the container engines leave on the host: snapshots to diff around each scenario, and the fixed
paths the daemons create whatever their configuration says (removed at the end of the session)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from helpers import leak_report  # spec-tests/helpers.py, on sys.path through tests/conftest.py

CGROUP_MOUNT = Path("/sys/fs/cgroup")

# Names unique to this test session, so that sessions running at the same time on one machine (several
# developers' `make test`) neither see nor remove each other's containers: ctr's containerd namespace
# (its containers' cgroups go to /<namespace>/<id>) and the cgroup parents given to dockerd, podman
# (conmon goes to <parent>/conmon) and the CRI pod. The parents stay between containers and are
# removed at the end of the session.
SESSION = f"prc{os.getpid()}"
CTR_NAMESPACE = SESSION
DOCKER_CGROUP_PARENT = f"{SESSION}-docker"
PODMAN_CGROUP_PARENT = f"{SESSION}-podman"
CRI_CGROUP_PARENT = f"{SESSION}-cri"
CGROUP_TOPS = (CTR_NAMESPACE, DOCKER_CGROUP_PARENT, PODMAN_CGROUP_PARENT, CRI_CGROUP_PARENT)
CLIENT_CGROUP_PARENTS = (*CGROUP_TOPS, f"{PODMAN_CGROUP_PARENT}/conmon")

# Paths created regardless of the configured roots:
# - the shim's sockets and runtime roots (containerd 1.6 hard-codes /run/containerd/s and
#   /run/containerd/runc/<namespace>), ctr's fifo dir;
# - dockerd's plugin dir; podman's network runtime dir and blob-info cache (also skopeo's);
# - a runtime's default --root, which podman uses (it passes no --root).
FIXED_PATHS = (
    Path("/run/containerd"),
    Path("/run/docker"),
    Path("/run/containers"),
    Path("/var/lib/containers"),
)
RUNTIME_DEFAULT_ROOTS = (Path("/run/runc"), Path("/run/pyrunc"))

# Where a client's mounts live: anything mounted elsewhere by a scenario is not the clients' doing.
MOUNT_AREAS = ("/run/containerd", "/run/docker", "/run/containers", "/run/netns", "/var/run/netns",
               "/var/lib/containers", "/var/lib/docker", "/var/lib/containerd", "/run/runc", "/run/pyrunc")


# Files in those paths that are only caches, or the named pipes ctr leaves for detached exec processes:
# removed with them.
DISPOSABLE_FILES = (Path("/var/lib/containers/cache/blob-info-cache-v1.boltdb"),)
CTR_FIFO_DIR = Path("/run/containerd/fifo")


def disposable(path: Path) -> bool:
    return path in DISPOSABLE_FILES or (CTR_FIFO_DIR in path.parents and stat.S_ISFIFO(path.lstat().st_mode))


class FixedPaths:
    """Remembers which of the fixed paths were absent at the start, to remove them at the end.

    Only empty directories and disposable files go: a session running at the same time on this
    machine may have its shim sockets or container state in them."""

    def __init__(self) -> None:
        self.absent = [p for p in (*FIXED_PATHS, *RUNTIME_DEFAULT_ROOTS) if not p.exists()]

    def remove_created(self) -> None:
        for path in self.absent:
            for dirpath, _, filenames in os.walk(path, topdown=False):
                for name in filenames:
                    if disposable(Path(dirpath, name)):
                        os.unlink(os.path.join(dirpath, name))
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)


def _under_parents(hierarchy: Path) -> set[str]:
    found = set()
    for top in CGROUP_TOPS:
        if (hierarchy / top).is_dir():
            found.update(str(p) for p in (hierarchy / top).rglob("*") if p.is_dir())
            found.add(str(hierarchy / top))
    return found


def client_cgroups() -> set[str]:
    """Container cgroups below the clients' parents (the parents themselves stay between containers)."""
    found = set()
    for hierarchy in CGROUP_MOUNT.iterdir():
        found |= _under_parents(hierarchy) - {str(hierarchy / p) for p in CLIENT_CGROUP_PARENTS}
    return found


def cgroup_parents_present() -> set[str]:
    return {str(h / p) for h in CGROUP_MOUNT.iterdir() for p in CLIENT_CGROUP_PARENTS if (h / p).is_dir()}


def remove_client_cgroup_parents(present_at_start: set[str], timeout: float = 10.0) -> None:
    """rmdir the parents the clients created during the session, deepest first; fail naming any that
    still hold a container cgroup. EBUSY is retried for a while: exited container processes that this
    machine's slow PID 1 has yet to reap can keep a cgroup busy."""
    deadline = time.monotonic() + timeout
    for parent in sorted(CLIENT_CGROUP_PARENTS, key=lambda p: -p.count("/")):
        for hierarchy in CGROUP_MOUNT.iterdir():
            path = hierarchy / parent
            while str(path) not in present_at_start and path.is_dir():
                try:
                    path.rmdir()
                except OSError as e:
                    if e.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise AssertionError(f"client cgroup parent left: {path}: {e.strerror}") from None
                    time.sleep(0.1)


def client_mounts(areas: Iterable[str], ignored: Iterable[str] = ()) -> set[str]:
    """Mount points (with source and fs type) under the clients' areas, in this mount namespace."""
    prefixes = tuple(a.rstrip("/") + "/" for a in areas)
    ignored = set(ignored)
    entries = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        point = fields[4]
        if (point + "/").startswith(prefixes) and point not in ignored:
            rest = fields[fields.index("-") + 1:]
            entries.add(f"{point} {rest[0]} {rest[1]}")
    return entries


def _live_processes() -> Iterator[tuple[int, str, str, str]]:
    """(pid, comm, command line, /proc/PID/cgroup text) of every process that is not a zombie.

    Zombies are left out: this machine's PID 1 reaps orphans slowly."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cgroups = (entry / "cgroup").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] != "Z":
            yield int(entry.name), stat[stat.index("(") + 1: stat.rindex(")")], cmdline, cgroups


def client_processes(base_dir: str) -> set[str]:
    """Processes of this harness's clients: those naming its base dir on their command line (clients,
    daemons, shims, conmon, the runtime they run) and those in the clients' cgroups (containers)."""
    markers = tuple(f":/{top}/" for top in CGROUP_TOPS)
    return {f"{pid} {comm} {cmdline[:160]}" for pid, comm, cmdline, cgroups in _live_processes()
            if base_dir in cmdline or any(m in cgroups for m in markers)}


def processes_naming(text: str) -> list[int]:
    """Processes whose command line contains `text`."""
    return [pid for pid, _, cmdline, _ in _live_processes() if text in cmdline]


def runtime_state_entries(base_dir: str, extra_roots: Iterable[Path] = ()) -> set[str]:
    """Container state entries in the runtime roots the clients use, for containers of this session: their
    state.json names a bundle or rootfs under `base_dir`. (An entry without a state.json cannot be told
    apart from another session's container being created or deleted: it is not counted.)"""
    roots = [*Path("/run/containerd/runc").glob("*"), *RUNTIME_DEFAULT_ROOTS, *extra_roots]
    found = set()
    for root in roots:
        for entry in root.iterdir() if root.is_dir() else ():
            try:
                if base_dir in (entry / "state.json").read_text(errors="replace"):
                    found.add(str(entry))
            except OSError:
                continue
    return found


def snapshot(base_dir: Path, state_roots: Iterable[Path], engine_mounts: Iterable[str]) -> dict[str, set[str]]:
    return {
        "mounts": client_mounts((*MOUNT_AREAS, str(base_dir)), engine_mounts),
        "cgroups": client_cgroups(),
        "processes": client_processes(str(base_dir)),
        "runtime state entries": runtime_state_entries(str(base_dir), state_roots),
    }


def leaks_after(before: dict[str, set[str]], take: Callable[[], dict[str, set[str]]], grace: float = 5.0) -> str:
    """Compare with fresh snapshots (`take()`), giving shims and conmon a moment to exit."""
    deadline = time.monotonic() + grace
    while True:
        text = leak_report(before, take())
        if not text or time.monotonic() > deadline:
            return text
        time.sleep(0.1)
