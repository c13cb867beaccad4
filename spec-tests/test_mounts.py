"""Mounts, propagation, masked and read-only paths (config.md "Mounts", "Root"; config-linux.md
"Rootfs Mount Propagation", "Masked Paths", "Readonly Paths").

Every option family is proven from /proc/self/mountinfo read inside the container, not from the exit
status of the mount call.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
from helpers import Bundle, Runtime, new_id, run_ok


def mountinfo(rt: Runtime, bundle: Bundle) -> dict[str, dict]:
    """Mount point → {options, optional, fstype, super, root} of the container's mount table."""
    table = {}
    for line in run_ok(rt, bundle, "cat", "/proc/self/mountinfo").splitlines():
        fields = line.split()
        dash = fields.index("-")
        table[fields[4]] = {"root": fields[3], "options": set(fields[5].split(",")),
                            "optional": fields[6:dash], "fstype": fields[dash + 1],
                            "super": set(fields[dash + 3].split(","))}
    return table


@pytest.fixture
def host_tree(tmp_path: Path):
    """A host directory with a file and a tmpfs submount (unmounted afterwards)."""
    path = tmp_path / "hosttree"
    (path / "sub").mkdir(parents=True)
    (path / "file").write_text("from the host\n")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path / "sub")], check=True)
    yield path
    subprocess.run(["umount", "-l", str(path / "sub")], check=True)


def _add(bundle: Bundle, **mount) -> None:
    bundle.config["mounts"].append(mount)


# --- option families ----------------------------------------------------------------------------

@pytest.mark.parametrize(("options", "present", "absent"), [
    (["ro"], {"ro"}, {"rw"}),
    (["rw"], {"rw"}, {"ro"}),
    (["nosuid", "nodev", "noexec"], {"nosuid", "nodev", "noexec"}, set()),
    (["noatime"], {"noatime"}, {"relatime"}),
    (["nodiratime"], {"nodiratime"}, set()),
    (["strictatime"], set(), {"relatime", "noatime"}),
    (["nosymfollow"], {"nosymfollow"}, set()),
], ids=["ro", "rw", "nosuid-nodev-noexec", "noatime", "nodiratime", "strictatime", "nosymfollow"])
def test_bind_mount_flags(rt: Runtime, bundle: Bundle, host_tree: Path, options: list[str], present: set[str],
                          absent: set[str]) -> None:
    """config.md "Mounts": options "Mount options of the filesystem to be used" (runc's flag words)."""
    _add(bundle, destination="/mnt/tree", type="bind", source=str(host_tree), options=["rbind", *options])
    mount = mountinfo(rt, bundle)["/mnt/tree"]
    assert present <= mount["options"] and not absent & mount["options"], mount["options"]


def test_rbind_keeps_submounts_and_bind_does_not(rt: Runtime, bundle: Bundle, host_tree: Path) -> None:
    _add(bundle, destination="/mnt/r", type="bind", source=str(host_tree), options=["rbind", "ro"])
    _add(bundle, destination="/mnt/b", type="bind", source=str(host_tree), options=["bind"])
    table = mountinfo(rt, bundle)
    assert "/mnt/r/sub" in table and "/mnt/b/sub" not in table
    assert "ro" in table["/mnt/r"]["options"] and "rw" in table["/mnt/r/sub"]["options"], "ro is not recursive"


@pytest.mark.parametrize(("word", "flag"), [("rro", "ro"), ("rnosuid", "nosuid"), ("rnodev", "nodev"),
                                            ("rnoexec", "noexec"), ("rnoatime", "noatime"),
                                            ("rnosymfollow", "nosymfollow")])
def test_recursive_options_reach_submounts(rt: Runtime, bundle: Bundle, host_tree: Path, word: str,
                                           flag: str) -> None:
    """runc's recursive `r*` options (mount_setattr AT_RECURSIVE) apply to every submount."""
    _add(bundle, destination="/mnt/tree", type="bind", source=str(host_tree), options=["rbind", word])
    table = mountinfo(rt, bundle)
    assert flag in table["/mnt/tree"]["options"] and flag in table["/mnt/tree/sub"]["options"]


def test_bind_file_source_creates_file(rt: Runtime, bundle: Bundle, host_tree: Path) -> None:
    """A file bound onto a destination missing from the rootfs: the destination is created as a file."""
    _add(bundle, destination="/etc/deep/new/file", type="bind", source=str(host_tree / "file"),
         options=["bind", "ro"])
    out = run_ok(rt, bundle, "sh", "-c", "test -f /etc/deep/new/file && cat /etc/deep/new/file")
    assert out == "from the host\n"


def test_tmpfs_options_and_data(rt: Runtime, bundle: Bundle) -> None:
    """Unknown words are filesystem data: tmpfs gets mode= size= nr_inodes=."""
    _add(bundle, destination="/scratch", type="tmpfs", source="tmpfs",
         options=["nodev", "nosuid", "mode=0700", "size=2m", "nr_inodes=99"])
    mount = mountinfo(rt, bundle)["/scratch"]
    assert mount["fstype"] == "tmpfs" and {"nodev", "nosuid"} <= mount["options"]
    assert {"mode=700", "size=2048k", "nr_inodes=99"} <= mount["super"]


def test_superblock_flags(rt: Runtime, bundle: Bundle) -> None:
    """sync, dirsync, lazytime, mand are filesystem (superblock) flags: mountinfo's super options."""
    _add(bundle, destination="/scratch", type="tmpfs", source="tmpfs", options=["sync", "dirsync", "lazytime",
                                                                                  "mand"])
    assert {"sync", "dirsync", "lazytime", "mand"} <= mountinfo(rt, bundle)["/scratch"]["super"]


def test_readonly_tmpfs(rt: Runtime, bundle: Bundle) -> None:
    _add(bundle, destination="/scratch", type="tmpfs", source="tmpfs", options=["ro"])
    out = run_ok(rt, bundle, "sh", "-c", "grep ' /scratch ' /proc/self/mountinfo; touch /scratch/x 2>&1; true")
    assert " ro," in out.splitlines()[0] and "Read-only file system" in out


def test_mounts_in_order(rt: Runtime, bundle: Bundle, host_tree: Path) -> None:
    """config.md "Mounts": "The runtime MUST mount entries in the listed order"."""
    _add(bundle, destination="/stack", type="tmpfs", source="tmpfs", options=["size=1m"])
    _add(bundle, destination="/stack", type="bind", source=str(host_tree), options=["bind"])
    assert run_ok(rt, bundle, "cat", "/stack/file") == "from the host\n"


def test_tmpcopyup(rt: Runtime, bundle: Bundle) -> None:
    """runc's `tmpcopyup`: the tmpfs starts with a copy of what the destination held."""
    (bundle.rootfs / "seed").mkdir()
    (bundle.rootfs / "seed" / "a").write_text("kept\n")
    _add(bundle, destination="/seed", type="tmpfs", source="tmpfs", options=["tmpcopyup"])
    out = run_ok(rt, bundle, "sh", "-c", "cat /seed/a; grep -c ' /seed .* tmpfs ' /proc/self/mountinfo")
    assert out == "kept\n1\n"


# --- propagation --------------------------------------------------------------------------------

@pytest.mark.parametrize(("word", "expected"), [("shared", "shared:"), ("unbindable", "unbindable")])
def test_mount_propagation_option(rt: Runtime, bundle: Bundle, word: str, expected: str) -> None:
    _add(bundle, destination="/scratch", type="tmpfs", source="tmpfs", options=[word])
    assert any(o.startswith(expected) for o in mountinfo(rt, bundle)["/scratch"]["optional"])


RUNC_ROOT_STAYS_PRIVATE = ("runc 1.1.5 applies rootfsPropagation to the namespace's tree before binding "
                           "the rootfs, so the container's / stays private")
RUNC_UNBINDABLE_EINVAL = ("runc 1.1.5 makes the tree unbindable before binding the rootfs out of it: "
                          "the bind fails with EINVAL")


@pytest.mark.parametrize(("word", "expected", "runc_deviation"), [
    ("private", None, ""), ("rprivate", None, ""), ("slave", None, ""), ("rslave", None, ""),
    ("shared", "shared:", RUNC_ROOT_STAYS_PRIVATE), ("rshared", "shared:", RUNC_ROOT_STAYS_PRIVATE),
    ("unbindable", "unbindable", RUNC_UNBINDABLE_EINVAL), ("runbindable", "unbindable", RUNC_UNBINDABLE_EINVAL),
])
def test_rootfs_propagation(rt: Runtime, bundle: Bundle, word: str, expected: str | None, runc_deviation: str,
                            xfail_runc) -> None:
    """config-linux.md "Rootfs Mount Propagation": rootfsPropagation "sets the rootfs's mount propagation"
    (the host's / is private here, so slave shows no master)."""
    if runc_deviation:
        xfail_runc(runc_deviation)
    bundle.config["linux"]["rootfsPropagation"] = word
    optional = mountinfo(rt, bundle)["/"]["optional"]
    if expected is None:
        assert optional == []
    else:
        assert any(o.startswith(expected) for o in optional), optional


@pytest.fixture
def shared_host_dir(tmp_path: Path):
    """A host directory that is a shared mount (a tmpfs made shared), torn down afterwards."""
    path = tmp_path / "shared"
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(path)], check=True)
    subprocess.run(["mount", "--make-shared", str(path)], check=True)
    (path / "late").mkdir()
    yield path
    subprocess.run(["umount", "-R", "-l", str(path)], check=True)


@pytest.mark.parametrize(("word", "propagates"), [("rslave", True), ("rprivate", False)])
def test_slave_bind_sees_later_host_mounts(rt: Runtime, bundle: Bundle, shared_host_dir: Path,
                                           tmp_path: Path, word: str, propagates: bool) -> None:
    """A `slave` bind receives mounts the host makes afterwards; a `private` one does not."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    _add(bundle, destination="/mnt/shared", type="bind", source=str(shared_host_dir), options=["rbind", word])
    _add(bundle, destination="/out", type="bind", source=str(out_dir), options=["bind"])
    bundle.set_args("sh", "-c", "ls /mnt/shared/late > /out/result")
    cid = new_id()
    rt.create(cid, bundle)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(shared_host_dir / "late")], check=True)
    (shared_host_dir / "late" / "flag").write_text("")
    rt.start(cid)
    deadline = time.monotonic() + 10
    while not (out_dir / "result").exists() or rt.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    rt.delete(cid)
    assert ("flag" in (out_dir / "result").read_text()) is propagates


# --- masked and read-only paths, root.readonly -------------------------------------------------

def test_masked_paths(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Masked Paths": "masks over the provided paths ... so that they cannot be read";
    a path missing from the rootfs is no error."""
    (bundle.rootfs / "secret").mkdir()
    (bundle.rootfs / "secret" / "key").write_text("hidden\n")
    (bundle.rootfs / "etc" / "token").write_text("hidden\n")
    bundle.config["linux"]["maskedPaths"] = ["/etc/token", "/secret", "/no/such/path"]
    out = run_ok(rt, bundle, "sh", "-c", "wc -c < /etc/token; ls -A /secret | wc -l; "
                 "grep -E ' /(secret|etc/token) ' /proc/self/mountinfo")
    lines = out.splitlines()
    assert lines[0].strip() == "0" and lines[1].strip() == "0"
    assert any(" /secret " in line and " ro," in line and "tmpfs" in line for line in lines[2:]), lines


def test_readonly_paths(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Readonly Paths": "set the provided paths as readonly inside the container"."""
    bundle.config["linux"]["readonlyPaths"] = ["/etc", "/no/such/path"]
    bundle.config["root"]["readonly"] = False
    out = run_ok(rt, bundle, "sh", "-c", "touch /etc/x 2>&1; touch /x && echo root-writable")
    assert "Read-only file system" in out and "root-writable" in out


def test_root_readonly(rt: Runtime, bundle: Bundle) -> None:
    """config.md "Root": readonly "If true then the root filesystem MUST be read-only inside the container"."""
    table = mountinfo(rt, bundle)
    assert "ro" in table["/"]["options"]
    bundle.config["root"]["readonly"] = False
    assert "rw" in mountinfo(rt, bundle)["/"]["options"]


def test_default_mounts(rt: Runtime, bundle: Bundle) -> None:
    """The default (runc spec) mounts with their options."""
    table = mountinfo(rt, bundle)
    assert table["/proc"]["fstype"] == "proc"
    assert table["/dev"]["fstype"] == "tmpfs" and "nosuid" in table["/dev"]["options"]
    assert table["/dev/pts"]["fstype"] == "devpts" and {"ptmxmode=666", "gid=5"} <= table["/dev/pts"]["super"]
    assert {"nosuid", "nodev", "noexec"} <= table["/dev/shm"]["options"]
    assert table["/dev/mqueue"]["fstype"] == "mqueue"
    assert table["/sys"]["fstype"] == "sysfs" and "ro" in table["/sys"]["options"]
    cgroups = [m for m in table.values() if m["fstype"] in ("cgroup", "cgroup2")]
    assert cgroups and all("ro" in m["options"] for m in cgroups)


def test_cgroup_mount_shows_own_cgroup(rt: Runtime, bundle: Bundle) -> None:
    """The cgroup mount shows the container its own cgroup: /proc/self/cgroup matches the bind roots."""
    out = run_ok(rt, bundle, "sh", "-c", "cat /proc/self/cgroup; echo ---; cat /proc/self/mountinfo")
    own_text, table_text = out.split("---\n")
    own = {c: p for _, c, p in (line.split(":", 2) for line in own_text.splitlines()) if c}
    roots = {}
    for line in table_text.splitlines():
        fields = line.split()
        dash = fields.index("-")
        if fields[dash + 1] == "cgroup":
            controllers = next(o for o in fields[dash + 3].split(",") if o in own)
            roots[controllers] = fields[3]
    assert roots and all(roots[c] == own[c] for c in roots), (roots, own)


def test_no_pivot(rt: Runtime, bundle: Bundle) -> None:
    """`--no-pivot`: the rootfs is moved over / and chrooted into; the container still sees its mounts."""
    cid = new_id()
    bundle.set_args("sh", "-c", "cat /proc/self/mountinfo")
    bundle.write(cid)
    result = rt("run", "--no-pivot", "--bundle", str(bundle.path), cid)
    assert result.returncode == 0, result.stderr
    assert " /proc " in result.stdout and " /dev/pts " in result.stdout


# --- bad input ----------------------------------------------------------------------------------

BAD_MOUNTS = {
    "missing-bind-source": ({"destination": "/mnt/x", "type": "bind", "source": "/no/such/source",
                             "options": ["bind"]}, "/no/such/source"),
    "unknown-fs-type": ({"destination": "/mnt/x", "type": "nosuchfs", "source": "x"}, "nosuchfs"),
}


@pytest.mark.parametrize("case", BAD_MOUNTS)
def test_bad_mount_fails_cleanly(rt: Runtime, bundle: Bundle, case: str) -> None:
    """runtime.md "Create": an invalid mount is an error, and nothing is left mounted (leak check)."""
    mount, names = BAD_MOUNTS[case]
    bundle.config["mounts"].append(mount)
    _assert_clean_failure(rt, bundle, names)


def test_invalid_rootfs_propagation(rt: Runtime, bundle: Bundle) -> None:
    bundle.config["linux"]["rootfsPropagation"] = "sideways"
    _assert_clean_failure(rt, bundle, "sideways")


def _assert_clean_failure(rt: Runtime, bundle: Bundle, names: str) -> None:
    cid = new_id()
    result = rt.create(cid, bundle, check=False)
    assert result.returncode == 1, f"exit {result.returncode}: {result.stderr}"
    assert result.stderr.strip()
    assert cid not in rt.container_ids()
    if not rt.is_runc:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and names in lines[0], lines


# --- id-mapped mounts ---------------------------------------------------------------------------

def test_idmapped_bind_mount(rt: Runtime, bundle: Bundle, tmp_path: Path, xfail_runc) -> None:
    """config.md "Mounts": uidMappings/gidMappings "convert UIDs/GIDs from the source file system to the
    destination mount point" (runtime-spec 1.1)."""
    xfail_runc("runc 1.1.5 predates id-mapped mounts (runtime-spec 1.1, runc 1.2)")
    source = tmp_path / "owned"
    source.mkdir()
    (source / "f").write_text("")
    os.chown(source / "f", 1000, 1000)
    _add(bundle, destination="/mnt/idmap", type="bind", source=str(source), options=["bind"],
         uidMappings=[{"containerID": 1000, "hostID": 2000, "size": 10}],
         gidMappings=[{"containerID": 1000, "hostID": 3000, "size": 10}])
    assert run_ok(rt, bundle, "stat", "-c", "%u %g", "/mnt/idmap/f").strip() == "2000 3000"


def _with_user_namespace(bundle: Bundle) -> None:
    linux = bundle.config["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": 0, "size": 65536}]


def test_sysfs_in_user_namespace_without_network_namespace(rt: Runtime, bundle: Bundle, xfail_runc) -> None:
    """sysfs cannot be mounted from a user namespace that does not own the network namespace: the
    host's /sys is bound instead (read-only as asked)."""
    xfail_runc("runc 1.1.5 fails the sysfs mount with EPERM (runc 1.2 falls back to binding /sys)")
    _with_user_namespace(bundle)
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"]
                                            if ns["type"] != "network"]
    table = mountinfo(rt, bundle)
    assert table["/sys"]["fstype"] == "sysfs" and "ro" in table["/sys"]["options"]


def test_idmapped_bind_mount_in_user_namespace(rt: Runtime, bundle: Bundle, tmp_path: Path, xfail_runc) -> None:
    """Id-mapped mounts in a container with its own user namespace: the runtime must id-map from the host
    (the kernel refuses it from inside the container's user namespace)."""
    xfail_runc("runc 1.1.5 predates id-mapped mounts (runtime-spec 1.1, runc 1.2)")
    _with_user_namespace(bundle)
    source = tmp_path / "owned"
    source.mkdir()
    (source / "f").write_text("")
    os.chown(source / "f", 1000, 1000)
    _add(bundle, destination="/mnt/idmap", type="bind", source=str(source), options=["bind"],
         uidMappings=[{"containerID": 1000, "hostID": 2000, "size": 10}],
         gidMappings=[{"containerID": 1000, "hostID": 3000, "size": 10}])
    assert run_ok(rt, bundle, "stat", "-c", "%u %g", "/mnt/idmap/f").strip() == "2000 3000"
