"""A hostile rootfs must not make the runtime touch the host (config.md "Mounts": destination is a path
inside the container; config-linux.md "Devices", "Masked Paths").

Each attack names a host directory (`victim`, empty) or file; the runtime may refuse the container or run
it with the path resolved inside the rootfs, but the victim must stay as it was.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Bundle, Runtime


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim"
    path.mkdir()
    return path


@pytest.fixture
def victim_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "victim-file"
    path.write_text("host secret\n")
    before = path.stat()
    yield path
    after = path.stat()
    assert path.read_text() == "host secret\n"
    assert (after.st_mtime_ns, after.st_mode, after.st_uid) == (before.st_mtime_ns, before.st_mode, before.st_uid)


def _run(rt: Runtime, bundle: Bundle, *args: str) -> tuple[int, str, str]:
    bundle.set_args(*args)
    return rt.run_container(bundle)


def _without_dev_tmpfs(bundle: Bundle) -> None:
    """Drop the /dev tmpfs (and what lives in it) so the rootfs's own /dev is used."""
    bundle.config["mounts"] = [m for m in bundle.config["mounts"] if not m["destination"].startswith("/dev")]


def _up_to_root(link_dir: str) -> str:
    """A relative path from `link_dir` (inside the rootfs) climbing far past the rootfs to `/`."""
    return "/".join([".."] * (link_dir.count("/") + 20))


@pytest.mark.parametrize("style", ["absolute", "dotdot"])
def test_destination_symlink_to_host(rt: Runtime, bundle: Bundle, victim: Path, tmp_path: Path, style: str) -> None:
    """Destinations through a symlink to / (or ../../..) are resolved inside the rootfs."""
    target = "/" if style == "absolute" else _up_to_root("/escape")
    os.symlink(target, bundle.rootfs / "escape")
    source = tmp_path / "payload"
    source.mkdir()
    (source / "file").write_text("payload\n")
    inner = f"/escape{victim}"
    bundle.config["mounts"] += [
        {"destination": f"{inner}/tmpfs-dir", "type": "tmpfs", "source": "tmpfs"},
        {"destination": f"{inner}/bind-dir", "type": "bind", "source": str(source), "options": ["bind"]},
        {"destination": f"{inner}/bind-file", "type": "bind", "source": str(source / "file"), "options": ["bind"]},
    ]
    code, out, _ = _run(rt, bundle, "cat", f"{victim}/bind-file")
    assert list(victim.iterdir()) == [], "the runtime created entries in the host directory"
    if code == 0:
        assert out == "payload\n"
        assert (bundle.rootfs / str(victim)[1:] / "bind-file").exists(), "the mount was not made inside the rootfs"


def test_proc_symlink_in_rootfs(rt: Runtime, bundle: Bundle, victim: Path) -> None:
    """/proc in the rootfs is a symlink to a host directory: proc never lands on the host."""
    proc = bundle.rootfs / "proc"
    if proc.exists():
        proc.rmdir()
    os.symlink(str(victim), proc)
    code, _, err = _run(rt, bundle, "true")
    assert list(victim.iterdir()) == []
    assert code != 0 or not (bundle.rootfs / str(victim)[1:]).exists(), err


@pytest.mark.parametrize("replacement", ["symlink", "regular-file"])
def test_dev_null_replaced_before_masking(rt: Runtime, bundle: Bundle, victim_file: Path, replacement: str) -> None:
    """The rootfs's /dev/null (no /dev tmpfs) is a symlink to a host file or a regular file: masking a
    file must neither touch nor expose that host file."""
    _without_dev_tmpfs(bundle)
    dev = bundle.rootfs / "dev"
    dev.mkdir(exist_ok=True)
    null = dev / "null"
    if null.exists() or null.is_symlink():
        null.unlink()
    if replacement == "symlink":
        os.symlink(str(victim_file), null)
    else:
        null.write_text("not a device\n")
    (bundle.rootfs / "etc" / "masked").write_text("inside\n")
    bundle.config["linux"]["maskedPaths"] = ["/etc/masked"]
    _, out, _ = _run(rt, bundle, "cat", "/etc/masked")
    assert "host secret" not in out


def test_device_through_symlinked_directory(rt: Runtime, bundle: Bundle, victim: Path) -> None:
    """A device whose parent directory is a symlink out of the rootfs is created inside the rootfs."""
    _without_dev_tmpfs(bundle)
    dev = bundle.rootfs / "dev"
    dev.mkdir(exist_ok=True)
    os.symlink(str(victim), dev / "evil")
    bundle.config["linux"]["devices"] = [{"path": "/dev/evil/pwn", "type": "c", "major": 1, "minor": 3}]
    _run(rt, bundle, "true")
    assert list(victim.iterdir()) == []


def test_destination_swapped_for_symlink_during_create(rt: Runtime, bundle: Bundle, victim: Path,
                                                       tmp_path: Path) -> None:
    """While create runs, a host process keeps replacing the destination's parent by a symlink to the
    victim (bounded number of container runs); nothing may ever appear in the victim."""
    source = tmp_path / "payload"
    source.mkdir()
    (source / "file").write_text("payload\n")
    swapped = bundle.rootfs / "mnt" / "swap"
    swapped.parent.mkdir(exist_ok=True)
    bundle.config["mounts"] += [
        {"destination": "/mnt/swap/dir", "type": "bind", "source": str(source), "options": ["bind"]},
        {"destination": "/mnt/swap/file", "type": "bind", "source": str(source / "file"), "options": ["bind"]},
        {"destination": "/mnt/swap/tmp", "type": "tmpfs", "source": "tmpfs"},
    ]
    stop = threading.Event()

    def swap() -> None:
        while not stop.is_set():
            for step in (lambda: os.symlink(str(victim), swapped), lambda: os.unlink(swapped),
                         lambda: os.mkdir(swapped), lambda: _remove_tree(swapped)):
                try:
                    step()
                except OSError:
                    pass

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    try:
        for _ in range(15):
            _run(rt, bundle, "true")
            assert list(victim.iterdir()) == [], "a mount destination was created on the host"
    finally:
        stop.set()
        swapper.join()


def _remove_tree(path: Path) -> None:
    for child in sorted(path.rglob("*"), key=lambda p: -len(p.parts)):
        child.unlink() if child.is_symlink() or not child.is_dir() else child.rmdir()
    path.rmdir()
