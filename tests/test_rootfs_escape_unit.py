"""Hostile rootfs against the rootfs package itself (the same attacks as spec-tests/test_rootfs_escape.py,
plus the path resolver alone): the host path named by each attack must stay untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import test_rootfs_sandbox as sb
from test_rootfs_sandbox import mountinfo, sandbox

from pyrunc.errors import RootfsError
from pyrunc.inroot import Root

config = sb.config
rootfs = sb.rootfs


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.mkdir()
    return path


def _up(depth: int = 30) -> str:
    return "/".join([".."] * depth)


# --- the resolver ---------------------------------------------------------------------------------

@pytest.mark.parametrize("link", ["absolute", "dotdot"])
def test_make_dirs_follows_symlinks_inside_root(tmp_path: Path, victim: Path, link: str) -> None:
    root_dir = tmp_path / "root"
    root_dir.mkdir()
    os.symlink(str(victim) if link == "absolute" else _up() + str(victim), root_dir / "escape")
    with Root(str(root_dir)) as root:
        os.close(root.make_dirs("/escape/a/b"))
        os.close(root.make_file("/escape/a/file"))
    assert list(victim.iterdir()) == []
    assert (root_dir / str(victim)[1:] / "a" / "b").is_dir()
    assert (root_dir / str(victim)[1:] / "a" / "file").is_file()


def test_dangling_symlink_is_not_created_through(tmp_path: Path, victim: Path) -> None:
    root_dir = tmp_path / "root"
    root_dir.mkdir()
    os.symlink(str(victim / "new"), root_dir / "dangling")
    with Root(str(root_dir)) as root:
        os.close(root.make_dirs("/dangling/x"))
    assert list(victim.iterdir()) == []


def test_magic_links_are_refused(tmp_path: Path) -> None:
    root_dir = tmp_path / "root"
    root_dir.mkdir()
    os.symlink("/proc/self/root", root_dir / "magic")
    (root_dir / "proc").symlink_to("/proc")  # only inside the root: resolves to root/proc, not the host's
    with Root(str(root_dir)) as root, pytest.raises(OSError):
        root.open("/magic/etc")


# --- whole setups -------------------------------------------------------------------------------

@pytest.mark.parametrize("style", ["absolute", "dotdot"])
def test_destination_symlink_out_of_rootfs(config: dict, rootfs: Path, victim: Path, tmp_path: Path,
                                           style: str) -> None:
    os.symlink("/" if style == "absolute" else _up(), rootfs / "escape")
    source = tmp_path / "payload"
    source.mkdir()
    (source / "file").write_text("payload\n")
    inner = f"/escape{victim}"
    config["mounts"] += [
        {"destination": f"{inner}/tmpfs-dir", "type": "tmpfs", "source": "tmpfs"},
        {"destination": f"{inner}/bind-dir", "type": "bind", "source": str(source), "options": ["bind"]},
        {"destination": f"{inner}/bind-file", "type": "bind", "source": str(source / "file"), "options": ["bind"]},
    ]
    mounts = mountinfo(config, rootfs)
    assert list(victim.iterdir()) == []
    assert {f"{victim}/tmpfs-dir", f"{victim}/bind-dir", f"{victim}/bind-file"} <= set(mounts)


def test_proc_symlink_is_refused(config: dict, rootfs: Path, victim: Path) -> None:
    (rootfs / "proc").rmdir()
    os.symlink(str(victim), rootfs / "proc")
    result = sandbox(config, rootfs, "/bin/true")
    assert result.status != 0 and "proc must be mounted on an ordinary directory" in result.err
    assert "mounts[0]" in result.err
    assert list(victim.iterdir()) == []


@pytest.mark.parametrize("destination", ["/proc/self/attr", "/proc/sys/kernel"])
def test_mount_inside_proc_is_refused(config: dict, rootfs: Path, destination: str) -> None:
    config["mounts"].append({"destination": destination, "type": "tmpfs", "source": "tmpfs"})
    result = sandbox(config, rootfs, "/bin/true")
    assert result.status != 0 and "inside /proc" in result.err


def test_symlink_to_proc_subdir_is_refused(config: dict, rootfs: Path) -> None:
    os.symlink("/proc/sys", rootfs / "sneaky")
    config["mounts"].append({"destination": "/sneaky/kernel", "type": "tmpfs", "source": "tmpfs"})
    assert "inside /proc" in sandbox(config, rootfs, "/bin/true").err


def test_allowed_proc_file_bind(config: dict, rootfs: Path, tmp_path: Path) -> None:
    fake = tmp_path / "uptime"
    fake.write_text("1.00 2.00\n")
    config["mounts"].append({"destination": "/proc/uptime", "type": "bind", "source": str(fake),
                             "options": ["bind"]})
    assert sandbox(config, rootfs, "/bin/cat", "/proc/uptime").ok() == "1.00 2.00\n"


def _without_dev_tmpfs(config: dict) -> None:
    config["mounts"] = [m for m in config["mounts"] if not m["destination"].startswith("/dev")]


@pytest.mark.parametrize("replacement", ["symlink", "regular-file"])
def test_dev_null_not_a_device_refuses_masking(config: dict, rootfs: Path, tmp_path: Path,
                                               replacement: str) -> None:
    secret = tmp_path / "secret"
    secret.write_text("host secret\n")
    _without_dev_tmpfs(config)
    null = rootfs / "dev" / "null"
    (rootfs / "dev").mkdir(exist_ok=True)
    if null.exists() or null.is_symlink():
        null.unlink()
    if replacement == "symlink":
        os.symlink(str(secret), null)
    else:
        null.write_text("not a device\n")
    (rootfs / "etc" / "masked").write_text("inside\n")
    config["linux"]["maskedPaths"] = ["/etc/masked"]
    result = sandbox(config, rootfs, "/bin/cat", "/etc/masked")
    assert result.status != 0 and "/dev/null in the container is not the character device 1:3" in result.err
    assert secret.read_text() == "host secret\n"


def test_device_through_symlinked_dir(config: dict, rootfs: Path, victim: Path) -> None:
    _without_dev_tmpfs(config)
    (rootfs / "dev").mkdir(exist_ok=True)
    os.symlink(str(victim), rootfs / "dev" / "evil")
    config["linux"]["devices"] = [{"path": "/dev/evil/pwn", "type": "c", "major": 1, "minor": 3}]
    sandbox(config, rootfs, "/bin/true").ok()
    assert list(victim.iterdir()) == []
    assert (rootfs / str(victim)[1:] / "pwn").is_char_device()


def test_bad_input_messages(config: dict, rootfs: Path) -> None:
    from pyrunc.rootfs import check_mounts

    cases = [
        ({"destination": "/x", "type": "bind", "source": "/no/such/src", "options": ["bind"]}, "mounts[7].source"),
        ({"destination": "rel", "type": "tmpfs", "source": "tmpfs"}, "mounts[7].destination"),
        ({"destination": "/x", "type": "tmpfs", "options": ["idmap"]}, "only supported for bind"),
    ]
    for mount, words in cases:
        bad = {**config, "mounts": [*config["mounts"], mount]}
        with pytest.raises(RootfsError, match=words.replace("[", r"\[").replace("]", r"\]")):
            check_mounts(bad, str(rootfs.parent))
    with pytest.raises(RootfsError, match="rootfsPropagation: invalid value 'sideways'"):
        check_mounts({**config, "linux": {**config["linux"], "rootfsPropagation": "sideways"}})
    with pytest.raises(RootfsError, match=r"linux.devices\[0\].type: unknown device type 'q'"):
        check_mounts({**config, "linux": {**config["linux"], "devices": [{"path": "/dev/q", "type": "q"}]}})
    check_mounts(config, str(rootfs.parent))


def test_unknown_filesystem_type_is_one_line(config: dict, rootfs: Path) -> None:
    config["mounts"].append({"destination": "/x", "type": "nosuchfs", "source": "x"})
    result = sandbox(config, rootfs, "/bin/true")
    assert "SANDBOX RootfsError: mounts[7] (/x): unknown filesystem type 'nosuchfs'" in result.err


def test_symlink_loop_is_an_error_not_a_hang(tmp_path: Path) -> None:
    root_dir = tmp_path / "root"
    root_dir.mkdir()
    os.symlink("/b", root_dir / "a")
    os.symlink("/a", root_dir / "b")
    with Root(str(root_dir)) as root, pytest.raises(OSError):
        root.make_dirs("/a/x")
