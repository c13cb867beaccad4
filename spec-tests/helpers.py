"""Shared harness for the conformance tests: the runtime under test, bundles, and leak checks.

The runtime comes from the environment variable RUNTIME (a path, or a command name looked up on
PATH); the default is the project's own `.venv/bin/pyrunc`. Every test gets its own state root
(`--root`), its own bundle (a fresh copy of build/rootfs plus a config.json written from a dict),
and a unique cgroup under `/pyrunc-test-<pid>/`.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ROOTFS = REPO / "build" / "rootfs"
BUILD_ROOTFS_SCRIPT = REPO / "scripts" / "build-rootfs.sh"
CGROUP_MOUNT = Path("/sys/fs/cgroup")
CGROUP_PARENT = f"pyrunc-test-{os.getpid()}"
DEFAULT_TIMEOUT = 20.0


def runtime_path() -> str:
    """The runtime under test, from $RUNTIME (path or command name)."""
    wanted = os.environ.get("RUNTIME") or str(REPO / ".venv" / "bin" / "pyrunc")
    if os.sep in wanted:
        return str(Path(wanted).resolve())
    found = shutil.which(wanted)
    if found is None:
        raise RuntimeError(f"RUNTIME={wanted!r} is not on PATH")
    return found


def is_runc() -> bool:
    return os.path.basename(runtime_path()) == "runc"


def ensure_rootfs() -> Path:
    """Build build/rootfs with scripts/build-rootfs.sh when it is missing."""
    if not (ROOTFS / "bin" / "busybox").exists():
        subprocess.run([str(BUILD_ROOTFS_SCRIPT), str(ROOTFS)], check=True)
    return ROOTFS


def default_config() -> dict:
    """The equivalent of `runc spec` (terminal off, hostname pyrunc-test)."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    nosuid_noexec_nodev = ["nosuid", "noexec", "nodev"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: list(caps) for k in ("bounding", "effective", "permitted", "ambient")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyrunc-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": [*nosuid_noexec_nodev, "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": list(nosuid_noexec_nodev)},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": [*nosuid_noexec_nodev, "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": [*nosuid_noexec_nodev, "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "maskedPaths": [
                "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi",
            ],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        },
    }


def new_id() -> str:
    return "t" + uuid.uuid4().hex[:12]


@dataclass
class Bundle:
    """A bundle directory: `rootfs/` (a copy of build/rootfs) and the config dict tests tweak."""

    path: Path
    config: dict = field(default_factory=default_config)

    @classmethod
    def make(cls, parent: Path) -> Bundle:
        parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["cp", "-a", str(ensure_rootfs()), str(parent / "rootfs")], check=True)
        return cls(parent)

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    def write(self, container_id: str) -> None:
        """Write config.json, giving the container a cgroup under the test parent unless set."""
        config = copy.deepcopy(self.config)
        if isinstance(config.get("linux"), dict):
            config["linux"].setdefault("cgroupsPath", f"/{CGROUP_PARENT}/{container_id}")
        (self.path / "config.json").write_text(json.dumps(config, indent=2))

    def set_args(self, *args: str) -> None:
        self.config["process"]["args"] = list(args)

    def add_bind(self, source: Path, destination: str, readonly: bool = False) -> None:
        options = ["rbind", "ro" if readonly else "rw"]
        self.config["mounts"].append(
            {"destination": destination, "type": "bind", "source": str(source), "options": options}
        )


class Runtime:
    """Runs the runtime under test with a private `--root`; every helper returns what a test needs."""

    def __init__(self, root: Path) -> None:
        self.path = runtime_path()
        self.root = root
        self.is_runc = os.path.basename(self.path) == "runc"

    def __call__(self, *args: str, check: bool = False, input: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """Run `RUNTIME --root ROOT *args`. Output goes through files, not pipes, so a container that
        inherits stdout (create, run --detach) cannot keep this call waiting."""
        cmd = [self.path, "--root", str(self.root), *args]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(
                cmd, stdin=None if input is not None else subprocess.DEVNULL,
                input=input.encode() if input is not None else None,
                stdout=out, stderr=err, timeout=timeout, cwd=cwd,
            )
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(
                cmd, proc.returncode, out.read().decode(errors="replace"), err.read().decode(errors="replace")
            )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(cmd)} exited {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
            )
        return result

    def state(self, container_id: str) -> dict:
        return json.loads(self("state", container_id, check=True).stdout)

    def create(self, container_id: str, bundle: Bundle, *extra: str, check: bool = True):
        bundle.write(container_id)
        return self("create", "--bundle", str(bundle.path), *extra, container_id, check=check)

    def start(self, container_id: str, check: bool = True):
        return self("start", container_id, check=check)

    def kill(self, container_id: str, signal: str = "KILL", check: bool = True):
        return self("kill", container_id, signal, check=check)

    def delete(self, container_id: str, force: bool = False, check: bool = True):
        return self("delete", *(["--force"] if force else []), container_id, check=check)

    def run_container(self, bundle: Bundle, container_id: str | None = None,
                      timeout: float = DEFAULT_TIMEOUT) -> tuple[int, str, str]:
        """`run` the bundle's config to completion: (exit status, stdout, stderr)."""
        container_id = container_id or new_id()
        bundle.write(container_id)
        result = self("run", "--bundle", str(bundle.path), container_id, timeout=timeout)
        return result.returncode, result.stdout, result.stderr

    def wait_status(self, container_id: str, status: str, timeout: float = 10.0) -> dict:
        """Poll `state` until the status is reached (a not-yet-existing container is polled too)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self("state", container_id)
            current = json.loads(result.stdout) if result.returncode == 0 else {"status": result.stderr}
            if current["status"] == status:
                return current
            if time.monotonic() > deadline:
                raise AssertionError(f"{container_id} still {current['status']!r}, wanted {status!r}")
            time.sleep(0.02)

    def container_ids(self) -> list[str]:
        """Ids with an entry in the state root (the runtime's private layout: one entry per id)."""
        return sorted(os.listdir(self.root)) if self.root.exists() else []

    def force_delete_all(self) -> None:
        for container_id in self.container_ids():
            self("delete", "--force", container_id)


def process_gone(pid: int, timeout: float = 5.0) -> bool:
    """True once `pid` no longer exists or is a zombie (exited, not yet reaped by its host parent)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except FileNotFoundError:
            return True
        if stat[stat.rindex(")") + 2] == "Z":
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


# --- leak detection ---------------------------------------------------------------------------

def _mount_table() -> set[str]:
    """Mount points and sources of this process's mount namespace (ids and peer groups dropped)."""
    entries = set()
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        entries.add(" ".join(fields[3:5] + fields[fields.index("-") + 1:]))
    return entries


def _test_cgroups() -> set[str]:
    found = set()
    for hierarchy in CGROUP_MOUNT.iterdir():
        parent = hierarchy / CGROUP_PARENT
        if parent.is_dir():
            found.update(str(p) for p in parent.rglob("*") if p.is_dir())
    return found


def _processes_of_tests() -> set[str]:
    """Children of this process and any process inside the test cgroup parent."""
    me = str(os.getpid())
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cgroups = (entry / "cgroup").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        ours = fields[1] == me
        if fields[0] == "Z" and not ours:
            continue  # an exited container process that its (host) parent has yet to reap
        if ours or f"/{CGROUP_PARENT}/" in cgroups:
            found.add(f"{entry.name} {stat[stat.index('(') : stat.rindex(')') + 1]}")
    return found


def leak_snapshot(state_root: Path) -> dict[str, set[str]]:
    return {
        "mounts": _mount_table(),
        "cgroups": _test_cgroups(),
        "state root entries": set(os.listdir(state_root)) if state_root.exists() else set(),
        "processes": _processes_of_tests(),
    }


def leaks_after(before: dict[str, set[str]], state_root: Path, grace: float = 2.0) -> str:
    """Compare with a fresh snapshot, allowing killed processes a moment to be reaped."""
    deadline = time.monotonic() + grace
    while True:
        report = leak_report(before, leak_snapshot(state_root))
        if not report or time.monotonic() > deadline:
            return report
        time.sleep(0.05)


def leak_report(before: dict[str, set[str]], after: dict[str, set[str]]) -> str:
    """Describe what appeared or vanished between two snapshots ('' when nothing did)."""
    lines = []
    for kind in before:
        added, removed = after[kind] - before[kind], before[kind] - after[kind]
        if added:
            lines.append(f"leaked {kind}: {sorted(added)}")
        if removed:
            lines.append(f"vanished {kind}: {sorted(removed)}")
    return "\n".join(lines)


def remove_cgroup_parent() -> None:
    """rmdir the (empty) test cgroup parent in every hierarchy, deepest first; never anything else."""
    for hierarchy in CGROUP_MOUNT.iterdir():
        parent = hierarchy / CGROUP_PARENT
        if not parent.is_dir():
            continue
        for sub in sorted((p for p in parent.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            sub.rmdir()
        parent.rmdir()


def run_ok(rt: Runtime, bundle: Bundle, *args: str) -> str:
    """Run `args` in a container of the bundle and return its stdout; fail the test unless it exits 0."""
    bundle.set_args(*args)
    code, out, err = rt.run_container(bundle)
    assert code == 0, f"exit {code}, stderr: {err}"
    return out
