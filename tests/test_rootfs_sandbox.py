"""The rootfs package for real, without the CLI: a forked child unshares a mount and pid namespace, runs
prepare_rootfs → pivot_into → finalize_rootfs on a fresh busybox rootfs and execs a command whose output
comes back through a pipe. Other test_rootfs_*.py files import `sandbox` and `parse_mountinfo` from here.

The default config's mounts are checked here; option families, devices and escapes have their own files.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import default_config, ensure_rootfs

from pyrunc import rootfs as rootfs_api
from pyrunc import syscalls


@dataclass
class Result:
    status: int
    out: str
    err: str

    def ok(self) -> str:
        assert self.status == 0, f"exit {self.status}\nstderr: {self.err}\nstdout: {self.out}"
        return self.out


@dataclass
class Mount:
    root: str
    mountpoint: str
    options: set[str]
    optional: list[str]
    fstype: str
    source: str
    super_options: set[str]


def parse_mountinfo(text: str) -> dict[str, Mount]:
    """Mount point → its (topmost) entry."""
    mounts = {}
    for line in text.splitlines():
        fields = line.split()
        dash = fields.index("-")
        mounts[fields[4]] = Mount(fields[3], fields[4], set(fields[5].split(",")), fields[6:dash],
                                  fields[dash + 1], fields[dash + 2], set(fields[dash + 3].split(",")))
    return mounts


def _child(config: dict, bundle: str, rootfs: str, argv: list[str], no_pivot: bool, in_userns: bool,
           before: Callable[[], None] | None, extra_flags: int, sync: tuple[int, int],
           idmapped: dict[int, int] | None, after_pivot: Callable[[], None] | None) -> None:
    if in_userns:  # the parent writes the maps (identity 0..65535) once the namespace exists
        syscalls.unshare(syscalls.CLONE_NEWUSER)
        os.write(sync[1], b"u")
        assert os.read(sync[0], 1) == b"m"
    syscalls.unshare(syscalls.CLONE_NEWNS | syscalls.CLONE_NEWPID | extra_flags)
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    if before is not None:
        before()
    rootfs_api.prepare_rootfs(config, bundle, rootfs, in_userns=in_userns, idmapped=idmapped)
    rootfs_api.pivot_into(rootfs, no_pivot=no_pivot)
    if after_pivot is not None:
        after_pivot()
    rootfs_api.finalize_rootfs(config)
    os.execv(argv[0], argv)


def sandbox(config: dict, rootfs: Path, *argv: str, bundle: Path | None = None, no_pivot: bool = False,
            in_userns: bool = False, before: Callable[[], None] | None = None, extra_flags: int = 0,
            idmap_on_host: bool = False, after_pivot: Callable[[], None] | None = None,
            timeout: float = 20) -> Result:
    """Run `argv` in `rootfs` set up from `config`; an exception in the child ends it with status 111
    and its message (or traceback) on stderr. `in_userns`: inside a new user namespace (identity map of
    ids 0-65535, so no mknod and sysfs needs a network namespace). `idmap_on_host`: id-mapped binds are
    prepared here before the fork (open_idmapped_mounts), as the runtime does for a user namespace."""
    bundle_dir = str(bundle or rootfs.parent)
    idmapped = rootfs_api.open_idmapped_mounts(config, bundle_dir) if idmap_on_host else None
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    to_parent, to_child = os.pipe(), os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(out_r)
            os.close(err_r)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            _child(config, bundle_dir, str(rootfs), list(argv), no_pivot, in_userns, before,
                   extra_flags, (to_child[0], to_parent[1]), idmapped, after_pivot)
        except BaseException as err:  # everything is reported, nothing returns
            os.write(2, f"SANDBOX {type(err).__name__}: {err}\n{traceback.format_exc()}".encode())
        finally:
            os._exit(111)
    os.close(out_w)
    os.close(err_w)
    for fd in (idmapped or {}).values():
        os.close(fd)
    if in_userns and os.read(to_parent[0], 1) == b"u":
        for kind in ("uid_map", "gid_map"):
            Path(f"/proc/{pid}/{kind}").write_text("0 0 65536\n")
        os.write(to_child[1], b"m")
    for fd in (*to_parent, *to_child):
        os.close(fd)
    chunks: dict[int, list[bytes]] = {out_r: [], err_r: []}
    deadline = time.monotonic() + timeout
    open_fds = [out_r, err_r]
    while open_fds:
        ready, _, _ = select.select(open_fds, [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            os.kill(pid, 9)
            break
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                chunks[fd].append(data)
            else:
                open_fds.remove(fd)
    os.close(out_r)
    os.close(err_r)
    _, status = os.waitpid(pid, 0)
    return Result(os.waitstatus_to_exitcode(status), b"".join(chunks[out_r]).decode(),
                  b"".join(chunks[err_r]).decode())


def fresh_rootfs(parent: Path) -> Path:
    target = parent / "rootfs"
    subprocess.run(["cp", "-a", str(ensure_rootfs()), str(target)], check=True)
    return target


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return fresh_rootfs(tmp_path)


@pytest.fixture
def config() -> dict:
    return default_config()


def mountinfo(config: dict, rootfs: Path, **kwargs) -> dict[str, Mount]:
    return parse_mountinfo(sandbox(config, rootfs, "/bin/cat", "/proc/self/mountinfo", **kwargs).ok())


# --- the default (runc spec) config -------------------------------------------------------------

def test_default_config_mounts(config: dict, rootfs: Path) -> None:
    mounts = mountinfo(config, rootfs)
    assert mounts["/"].options >= {"ro"}
    assert mounts["/proc"].fstype == "proc"
    dev = mounts["/dev"]
    assert dev.fstype == "tmpfs" and {"nosuid", "rw"} <= dev.options and "size=65536k" in dev.super_options
    pts = mounts["/dev/pts"]
    assert pts.fstype == "devpts" and {"nosuid", "noexec"} <= pts.options
    assert {"ptmxmode=666", "mode=620", "gid=5"} <= pts.super_options
    assert mounts["/dev/shm"].fstype == "tmpfs" and {"nosuid", "nodev", "noexec"} <= mounts["/dev/shm"].options
    assert mounts["/dev/mqueue"].fstype == "mqueue"
    assert mounts["/sys"].fstype == "sysfs" and {"ro", "nosuid", "nodev", "noexec"} <= mounts["/sys"].options
    assert mounts["/sys/fs/cgroup"].fstype == "tmpfs"


def test_default_config_cgroups_show_own_cgroup(config: dict, rootfs: Path) -> None:
    """Each v1 hierarchy is the bind of this process's own cgroup, read-only."""
    own = {}
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controllers:
            own[controllers] = path
    mounts = mountinfo(config, rootfs)
    cgroup_mounts = {m.mountpoint: m for m in mounts.values() if m.fstype == "cgroup"}
    assert cgroup_mounts, "no cgroup hierarchy mounted"
    for mount in cgroup_mounts.values():
        controllers = next(o for o in mount.super_options if o in own)
        assert mount.root == own[controllers], mount
        assert "ro" in mount.options


def test_default_config_masked_and_readonly_paths(config: dict, rootfs: Path) -> None:
    mounts = mountinfo(config, rootfs)
    for path in config["linux"]["readonlyPaths"]:
        if path in mounts:
            assert "ro" in mounts[path].options, path
    assert {"/proc/sys", "/proc/bus"} <= set(mounts)
    assert mounts["/sys/firmware"].fstype == "tmpfs" and "ro" in mounts["/sys/firmware"].options
    assert mounts["/proc/keys"].root == "/null"
    assert mounts["/proc/acpi"].fstype == "tmpfs"


def test_default_config_dev(config: dict, rootfs: Path) -> None:
    out = sandbox(config, rootfs, "/bin/sh", "-c", "ls -ln /dev; echo x > /dev/null && cat /dev/null").ok()
    lines = {}
    for line in out.splitlines()[1:]:
        words = line.split()
        lines[words[-1] if "->" not in words else words[-3]] = " ".join(words)
    for name, number in {"null": "1, 3", "zero": "1, 5", "full": "1, 7", "random": "1, 8", "urandom": "1, 9",
                         "tty": "5, 0"}.items():
        assert lines[name].startswith("crw-rw-rw- 1 0 0 " + number), lines[name]
    assert lines["ptmx"].endswith("ptmx -> pts/ptmx")
    assert lines["fd"].endswith("fd -> /proc/self/fd")
    for index, name in enumerate(("stdin", "stdout", "stderr")):
        assert lines[name].endswith(f"-> /proc/self/fd/{index}")


def test_readonly_root_refuses_writes(config: dict, rootfs: Path) -> None:
    result = sandbox(config, rootfs, "/bin/sh", "-c", "touch /x 2>&1; echo rc=$?")
    assert "Read-only file system" in result.ok() and "rc=1" in result.out


def test_host_mount_table_unchanged(config: dict, rootfs: Path) -> None:
    before = Path("/proc/self/mountinfo").read_text()
    sandbox(config, rootfs, "/bin/true").ok()
    assert Path("/proc/self/mountinfo").read_text() == before


def test_no_pivot(config: dict, rootfs: Path) -> None:
    mounts = mountinfo(config, rootfs, no_pivot=True)
    assert "/proc" in mounts and "ro" in mounts["/"].options


def test_readonly_file_and_missing_paths(config: dict, rootfs: Path) -> None:
    config["root"]["readonly"] = False
    config["linux"]["readonlyPaths"] = ["/etc/passwd", "/no/such/file"]
    config["linux"]["maskedPaths"] = ["/no/such/dir"]
    out = sandbox(config, rootfs, "/bin/sh", "-c", "{ echo x >> /etc/passwd; } 2>&1; touch /ok && echo root-rw").ok()
    assert "Read-only file system" in out and "root-rw" in out
