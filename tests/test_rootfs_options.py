"""Mount options: the table (pure) and, per option family, the flag as /proc/self/mountinfo shows it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import test_rootfs_sandbox as sb
from test_rootfs_sandbox import mountinfo, sandbox

from pyrunc import syscalls as s
from pyrunc.rootfs import options

config = sb.config
rootfs = sb.rootfs


def test_flags_fold_in_order() -> None:
    parsed = options.parse(["ro", "nosuid", "rw", "size=1k", "mode=755"])
    assert parsed.flags == s.MS_NOSUID
    assert parsed.cleared == s.MS_RDONLY
    assert parsed.data_string == "size=1k,mode=755"


def test_bind_words_and_type() -> None:
    assert options.parse(["rbind"]).recursive_bind
    assert options.parse([], "bind").is_bind and not options.parse([], "bind").recursive_bind
    assert not options.parse(["ro"], "tmpfs").is_bind


def test_propagation_and_recursive_words() -> None:
    parsed = options.parse(["rshared", "private", "rro", "rnoatime", "rnosuid", "rsuid"])
    assert parsed.propagation == [s.MS_SHARED | s.MS_REC, s.MS_PRIVATE]
    assert parsed.rec_set == s.MOUNT_ATTR_RDONLY | s.MOUNT_ATTR_NOATIME
    assert parsed.rec_clear & s.MOUNT_ATTR__ATIME == s.MOUNT_ATTR__ATIME
    assert parsed.rec_clear & s.MOUNT_ATTR_NOSUID


def test_bind_attributes_keep_unmentioned_flags() -> None:
    clear, set_ = options.parse(["bind", "ro", "noexec"]).bind_attributes()
    assert set_ == s.MOUNT_ATTR_RDONLY | s.MOUNT_ATTR_NOEXEC and clear == 0
    clear, set_ = options.parse(["bind", "rw", "suid", "noatime"]).bind_attributes()
    assert clear == s.MOUNT_ATTR_RDONLY | s.MOUNT_ATTR_NOSUID | s.MOUNT_ATTR__ATIME
    assert set_ == s.MOUNT_ATTR_NOATIME


def test_every_runc_feature_word_is_known() -> None:
    runc_words = {"acl", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion",
                  "lazytime", "loud", "mand", "noacl", "noatime", "nodev", "nodiratime", "noexec", "noiversion",
                  "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private",
                  "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount", "rexec", "rnoatime", "rnodev",
                  "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime", "rnosuid", "rnosymfollow", "ro",
                  "rprivate", "rrelatime", "rro", "rrw", "rshared", "rslave", "rstrictatime", "rsuid",
                  "rsymfollow", "runbindable", "rw", "shared", "silent", "slave", "strictatime", "suid",
                  "symfollow", "sync", "tmpcopyup", "unbindable"}
    assert runc_words <= set(options.known_words())


# --- real mounts, read back from mountinfo --------------------------------------------------------

@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A host directory with a file and a submount (a tmpfs, unmounted afterwards)."""
    path = tmp_path / "src"
    (path / "sub").mkdir(parents=True)
    (path / "file").write_text("hello\n")
    s.mount("tmpfs", str(path / "sub"), "tmpfs", 0, "size=1m")
    yield path
    s.umount2(str(path / "sub"), s.MNT_DETACH)


def _with_mount(config: dict, **mount) -> dict:
    config["mounts"].append(mount)
    return config


@pytest.mark.parametrize(("words", "expected", "absent"), [
    (["ro"], {"ro"}, {"rw"}),
    (["nosuid", "nodev", "noexec"], {"nosuid", "nodev", "noexec"}, set()),
    (["noatime"], {"noatime"}, {"relatime"}),
    (["strictatime"], set(), {"relatime", "noatime"}),
    (["nodiratime"], {"nodiratime"}, set()),
    (["nosymfollow"], {"nosymfollow"}, set()),
    (["ro", "rw"], {"rw"}, {"ro"}),
])
def test_bind_flags(config: dict, rootfs: Path, host_dir: Path, words: list[str], expected: set[str],
                    absent: set[str]) -> None:
    _with_mount(config, destination="/mnt/b", type="bind", source=str(host_dir), options=["rbind", *words])
    mount = mountinfo(config, rootfs)["/mnt/b"]
    assert expected <= mount.options and not absent & mount.options, mount.options
    assert mount.root.endswith("/src")


def test_non_recursive_flag_leaves_submount_alone(config: dict, rootfs: Path, host_dir: Path) -> None:
    _with_mount(config, destination="/mnt/b", type="bind", source=str(host_dir), options=["rbind", "ro"])
    mounts = mountinfo(config, rootfs)
    assert "ro" in mounts["/mnt/b"].options and "rw" in mounts["/mnt/b/sub"].options


@pytest.mark.parametrize(("word", "flag"), [("rro", "ro"), ("rnosuid", "nosuid"), ("rnodev", "nodev"),
                                            ("rnoexec", "noexec"), ("rnoatime", "noatime"),
                                            ("rnodiratime", "nodiratime"), ("rnosymfollow", "nosymfollow")])
def test_recursive_flags_reach_submounts(config: dict, rootfs: Path, host_dir: Path, word: str, flag: str) -> None:
    _with_mount(config, destination="/mnt/b", type="bind", source=str(host_dir), options=["rbind", word])
    mounts = mountinfo(config, rootfs)
    assert flag in mounts["/mnt/b"].options and flag in mounts["/mnt/b/sub"].options


def test_bind_without_rbind_drops_submounts(config: dict, rootfs: Path, host_dir: Path) -> None:
    _with_mount(config, destination="/mnt/b", type="bind", source=str(host_dir), options=["bind"])
    assert "/mnt/b/sub" not in mountinfo(config, rootfs)


def test_bind_file_creates_file_destination(config: dict, rootfs: Path, host_dir: Path) -> None:
    _with_mount(config, destination="/etc/new/greeting", type="bind", source=str(host_dir / "file"),
                options=["bind", "ro"])
    out = sandbox(config, rootfs, "/bin/sh", "-c", "cat /etc/new/greeting; test -f /etc/new/greeting && echo f").ok()
    assert out == "hello\nf\n"


def test_relative_bind_source_is_in_bundle(config: dict, rootfs: Path) -> None:
    (rootfs.parent / "data").mkdir()
    (rootfs.parent / "data" / "x").write_text("bundled\n")
    _with_mount(config, destination="/data", type="none", source="data", options=["bind"])
    assert sandbox(config, rootfs, "/bin/cat", "/data/x").ok() == "bundled\n"


def test_tmpfs_mode_size_and_deferred_ro(config: dict, rootfs: Path) -> None:
    _with_mount(config, destination="/scratch", type="tmpfs", source="tmpfs",
                options=["ro", "nodev", "mode=700", "size=2m"])
    mounts = mountinfo(config, rootfs)
    assert {"ro", "nodev"} <= mounts["/scratch"].options
    assert {"mode=700", "size=2048k"} <= mounts["/scratch"].super_options
    out = sandbox(config, rootfs, "/bin/stat", "-c", "%a", "/scratch").ok()
    assert out.strip() == "700"


def test_unknown_words_are_filesystem_data(config: dict, rootfs: Path) -> None:
    _with_mount(config, destination="/scratch", type="tmpfs", source="tmpfs", options=["nr_inodes=77", "uid=5"])
    assert {"nr_inodes=77", "uid=5"} <= mountinfo(config, rootfs)["/scratch"].super_options


@pytest.mark.parametrize(("word", "field"), [("shared", "shared:"), ("rshared", "shared:"),
                                             ("unbindable", "unbindable")])
def test_mount_propagation_words(config: dict, rootfs: Path, word: str, field: str) -> None:
    _with_mount(config, destination="/scratch", type="tmpfs", source="tmpfs", options=[word])
    mount = mountinfo(config, rootfs)["/scratch"]
    assert any(o.startswith(field) for o in mount.optional), mount.optional


def test_private_is_default_for_new_mounts(config: dict, rootfs: Path) -> None:
    _with_mount(config, destination="/scratch", type="tmpfs", source="tmpfs", options=["private"])
    assert mountinfo(config, rootfs)["/scratch"].optional == []


def test_tmpcopyup_copies_existing_content(config: dict, rootfs: Path) -> None:
    (rootfs / "etc" / "seed").mkdir(parents=True)
    (rootfs / "etc" / "seed" / "a").write_text("seeded\n")
    os.symlink("a", rootfs / "etc" / "seed" / "link")
    _with_mount(config, destination="/etc/seed", type="tmpfs", source="tmpfs", options=["tmpcopyup"])
    out = sandbox(config, rootfs, "/bin/sh", "-c", "cat /etc/seed/link; grep -c ' /etc/seed tmpfs' /proc/mounts").ok()
    assert out == "seeded\n1\n"


@pytest.mark.parametrize(("word", "expected"), [("shared", "shared:"), ("rshared", "shared:"),
                                                ("unbindable", "unbindable"), ("runbindable", "unbindable"),
                                                ("private", None), ("rslave", None)])
def test_rootfs_propagation(config: dict, rootfs: Path, word: str, expected: str | None) -> None:
    config["linux"]["rootfsPropagation"] = word
    optional = mountinfo(config, rootfs)["/"].optional
    assert (optional == []) if expected is None else any(o.startswith(expected) for o in optional), optional


def test_rootfs_propagation_does_not_reach_host(config: dict, rootfs: Path) -> None:
    before = Path("/proc/self/mountinfo").read_text()
    config["linux"]["rootfsPropagation"] = "rshared"
    sandbox(config, rootfs, "/bin/true").ok()
    assert Path("/proc/self/mountinfo").read_text() == before


# --- id-mapped mounts -----------------------------------------------------------------------------

@pytest.fixture
def owned_dir(tmp_path: Path) -> Path:
    path = tmp_path / "owned"
    path.mkdir()
    (path / "f").write_text("")
    os.chown(path / "f", 1000, 1001)
    return path


def test_idmapped_bind_with_mappings(config: dict, rootfs: Path, owned_dir: Path) -> None:
    _with_mount(config, destination="/mnt/idmap", type="bind", source=str(owned_dir), options=["bind"],
                uidMappings=[{"containerID": 1000, "hostID": 2000, "size": 10}],
                gidMappings=[{"containerID": 1000, "hostID": 3000, "size": 10}])
    assert sandbox(config, rootfs, "/bin/stat", "-c", "%u %g", "/mnt/idmap/f").ok() == "2000 3001\n"
    assert "idmapped" in mountinfo(config, rootfs)["/mnt/idmap"].options


def test_idmap_option_uses_container_mappings(config: dict, rootfs: Path, owned_dir: Path) -> None:
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 100}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 100}]
    (owned_dir / "root-owned").write_text("")  # uid 0 on disk: the container's root, host uid 1000
    _with_mount(config, destination="/mnt/idmap", type="bind", source=str(owned_dir), options=["bind", "idmap"])
    out = sandbox(config, rootfs, "/bin/stat", "-c", "%u %g", "/mnt/idmap/root-owned", "/mnt/idmap/f").ok()
    assert out == "1000 1000\n65534 65534\n"


def test_ridmap_reaches_submounts(config: dict, rootfs: Path, owned_dir: Path) -> None:
    sub = owned_dir / "sub"
    sub.mkdir()
    s.mount("tmpfs", str(sub), "tmpfs", 0, "size=1m")
    try:
        os.chown(sub, 1000, 1000)
        _with_mount(config, destination="/mnt/idmap", type="bind", source=str(owned_dir),
                    options=["rbind", "ridmap"],
                    uidMappings=[{"containerID": 1000, "hostID": 5000, "size": 1}],
                    gidMappings=[{"containerID": 1000, "hostID": 5000, "size": 1}])
        out = sandbox(config, rootfs, "/bin/stat", "-c", "%u", "/mnt/idmap/f", "/mnt/idmap/sub").ok()
        assert out.split() == ["5000", "5000"]
    finally:
        s.umount2(str(sub), s.MNT_DETACH)


def test_idmapped_bind_prepared_on_host_for_user_namespace(config: dict, rootfs: Path, owned_dir: Path) -> None:
    """In a user namespace the init cannot id-map a host filesystem; the clone made by the runtime before
    the fork is attached instead."""
    config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "network"]
    _with_mount(config, destination="/mnt/idmap", type="bind", source=str(owned_dir), options=["bind"],
                uidMappings=[{"containerID": 1000, "hostID": 2000, "size": 10}],
                gidMappings=[{"containerID": 1000, "hostID": 3000, "size": 10}])
    flags = s.CLONE_NEWIPC
    refused = sandbox(config, rootfs, "/bin/true", in_userns=True, extra_flags=flags)
    assert refused.status != 0 and "mounts[7] (/mnt/idmap)" in refused.err
    out = sandbox(config, rootfs, "/bin/stat", "-c", "%u %g", "/mnt/idmap/f", in_userns=True, extra_flags=flags,
                  idmap_on_host=True).ok()
    assert out == "2000 3001\n"


def test_bind_in_user_namespace_keeps_locked_flags(config: dict, rootfs: Path, tmp_path: Path) -> None:
    """In a user namespace nosuid/nodev/noexec of the source are locked: a read-only bind of it must keep
    them (a plain MS_REMOUNT with only MS_RDONLY would fail with EPERM)."""
    source = tmp_path / "locked"
    source.mkdir()
    s.mount("tmpfs", str(source), "tmpfs", s.MS_NOSUID | s.MS_NODEV | s.MS_NOEXEC, "size=1m")
    try:
        config["linux"]["namespaces"] = [ns for ns in config["linux"]["namespaces"] if ns["type"] != "network"]
        _with_mount(config, destination="/mnt/locked", type="bind", source=str(source), options=["bind", "ro"])
        mount = mountinfo(config, rootfs, in_userns=True, extra_flags=s.CLONE_NEWIPC)["/mnt/locked"]
        assert {"ro", "nosuid", "nodev", "noexec"} <= mount.options
    finally:
        s.umount2(str(source), s.MNT_DETACH)


def test_superblock_flags_and_recursive_word_on_new_mount(config: dict, rootfs: Path) -> None:
    _with_mount(config, destination="/s", type="tmpfs", source="tmpfs",
                options=["sync", "dirsync", "lazytime", "mand", "rnoexec"])
    mount = mountinfo(config, rootfs)["/s"]
    assert {"sync", "dirsync", "lazytime", "mand"} <= mount.super_options
    assert "noexec" in mount.options
