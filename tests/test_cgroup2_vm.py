"""The cgroup v2 test VM (scripts/cgroup2-vm): the runner on the host, what it promises inside the guest.

On the host (QEMU installed and build/vm built, else skipped) the runner tests boot the VM: output and exit
status come back, the timeout kills QEMU, and this very file passes inside the VM.  Inside the VM
(CGROUP2_VM=1) the guest tests check the pure cgroup2 hierarchy, a memory.max OOM kill, namespaces and
pivot_root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "scripts" / "cgroup2-vm" / "run.py"
VM_DIR = ROOT / "build" / "vm"
CGROUP_ROOT = Path("/sys/fs/cgroup")
ALL_CONTROLLERS = {"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}
IN_VM = os.environ.get("CGROUP2_VM") == "1"


def qemu_unavailable() -> str | None:
    """Why the VM cannot start here (None if it can)."""
    if IN_VM:
        return "already inside the VM"
    if not shutil.which("qemu-system-x86_64"):
        return "qemu-system-x86_64 not installed (apt-get install --no-install-recommends qemu-system-x86)"
    if not (VM_DIR / "vmlinux").exists() or not (VM_DIR / "initrd.img").exists():
        return f"VM not built in {VM_DIR} (scripts/cgroup2-vm/build.sh)"
    return None


host_only = pytest.mark.skipif(qemu_unavailable() is not None, reason=str(qemu_unavailable()))
guest_only = pytest.mark.skipif(not IN_VM, reason="runs only inside the cgroup2 VM (scripts/cgroup2-vm/run.py)")


def run_in_vm(results: Path, *command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RUNNER), "--timeout", str(timeout), "--results", str(results), "--", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout + 60,
    )


def qemu_processes_using(path: Path) -> list[int]:
    """Pids of live processes whose command line mentions path (the VM's results dir)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(path).encode() in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@host_only
def test_runner_streams_output_and_returns_exit_status(tmp_path: Path) -> None:
    r = run_in_vm(tmp_path, "sh", "-c", "echo out; echo err >&2; cat /sys/fs/cgroup/cgroup.controllers; exit 7")
    assert r.returncode == 7, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "out"
    assert set(lines[1].split()) >= ALL_CONTROLLERS
    assert r.stderr == "err\n"
    assert (tmp_path / "status").read_text().strip() == "7"


@host_only
def test_runner_timeout_kills_qemu(tmp_path: Path) -> None:
    start = time.monotonic()
    r = run_in_vm(tmp_path, "sleep", "600", timeout=3)
    assert r.returncode == 124, r.stderr
    assert time.monotonic() - start < 60
    assert qemu_processes_using(tmp_path) == []


@host_only
def test_guest_tests_pass_inside_the_vm(tmp_path: Path) -> None:
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:hypothesispytest"]
    r = run_in_vm(tmp_path, *pytest, __file__)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 passed" in r.stdout, r.stdout


@guest_only
def test_pure_cgroup2_with_every_controller_delegated() -> None:
    mounts = [line.split() for line in Path("/proc/self/mounts").read_text().splitlines()]
    (options,) = [m[3] for m in mounts if m[1] == str(CGROUP_ROOT)]
    assert {"nsdelegate", "memory_recursiveprot"} <= set(options.split(","))
    assert not [m for m in mounts if m[2] == "cgroup"], "a cgroup v1 hierarchy is mounted"
    controllers = set((CGROUP_ROOT / "cgroup.controllers").read_text().split())
    assert controllers >= ALL_CONTROLLERS
    assert set((CGROUP_ROOT / "cgroup.subtree_control").read_text().split()) == controllers


@pytest.fixture
def test_cgroup() -> Iterator[Path]:
    cgroup = CGROUP_ROOT / f"cgroup2-vm-test-{os.getpid()}"
    cgroup.mkdir()
    try:
        yield cgroup
    finally:
        for pid in (cgroup / "cgroup.procs").read_text().split():
            os.kill(int(pid), 9)
        deadline = time.monotonic() + 5
        while (cgroup / "cgroup.procs").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        cgroup.rmdir()


@guest_only
def test_memory_max_oom_kills_a_child_moved_in(test_cgroup: Path) -> None:
    (test_cgroup / "memory.max").write_text(str(16 << 20))
    (test_cgroup / "memory.swap.max").write_text("0")
    # The child waits for a byte on stdin (so it is moved before it allocates), then touches 64 MiB.
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read(1); data = b'x' * (64 << 20); print('survived')"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        (test_cgroup / "cgroup.procs").write_text(str(child.pid))
        out, _ = child.communicate(b"go", timeout=120)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -9, out
    events = dict(line.split() for line in (test_cgroup / "memory.events").read_text().splitlines())
    assert int(events["oom_kill"]) >= 1


@guest_only
def test_namespaces_and_pivot_root(tmp_path: Path) -> None:
    subprocess.run(["unshare", "-m", "-p", "-f", "--mount-proc", "busybox", "true"], check=True, timeout=60)
    newroot = tmp_path / "newroot"
    newroot.mkdir()
    script = f"""
        set -e
        mount --make-rprivate /
        mount -t tmpfs newroot {newroot}
        mkdir {newroot}/bin {newroot}/old
        cp /bin/busybox {newroot}/bin/busybox
        cd {newroot}
        busybox pivot_root . old
        exec /bin/busybox sh -c 'busybox umount -l /old && busybox ls /'
    """
    r = subprocess.run(
        ["unshare", "-m", "-p", "-f", "busybox", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["bin", "old"]
