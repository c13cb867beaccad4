"""User namespaces as root on the host (config-linux.md "User namespace mappings", "Namespaces").

The container's root is host uid/gid 100000 (65536 ids), as a real deployment would map it: the rootfs
copy is chowned to the mapped ids, and the bundle lives in a directory the mapped root may traverse
(pytest's own temp directory is 0700 root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Bundle, Runtime, run_ok

HOST_ID, SIZE = 100000, 65536
MAP = [{"containerID": 0, "hostID": HOST_ID, "size": SIZE}]


def shift_owner(root: Path, offset: int) -> None:
    """chown every file under `root` (itself included) by `offset`, symlinks themselves not followed."""
    for path in [root, *root.rglob("*")]:
        st = path.lstat()
        os.chown(path, st.st_uid + offset, st.st_gid + offset, follow_symlinks=False)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory under /tmp that any uid may traverse (removed afterwards)."""
    path = Path(tempfile.mkdtemp(prefix="pyrunc-userns-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def mapped_bundle(shared_dir: Path) -> Bundle:
    """A bundle whose rootfs belongs to the mapped ids; the config maps 0 → 100000 (size 65536)."""
    bundle = Bundle.make(shared_dir / "bundle")
    shift_owner(bundle.rootfs, HOST_ID)
    linux = bundle.config["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [dict(m) for m in MAP]
    linux["gidMappings"] = [dict(m) for m in MAP]
    return bundle



def test_id_and_maps_inside(rt: Runtime, mapped_bundle: Bundle) -> None:
    """config-linux.md "User namespace mappings": "uidMappings (array of objects, OPTIONAL) describes the
    user namespace uid mappings from the host to the container"; the process is root inside."""
    out = run_ok(rt, mapped_bundle, "sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map")
    lines = out.splitlines()
    assert lines[:2] == ["0", "0"]
    assert [line.split() for line in lines[2:]] == [["0", str(HOST_ID), str(SIZE)]] * 2


def test_user_namespace_is_new(rt: Runtime, mapped_bundle: Bundle) -> None:
    """config-linux.md "Namespaces": "user ... the container will be able to remap user and group IDs
    from the host to local users and groups within the container" (a new namespace, not the host's)."""
    inside = run_ok(rt, mapped_bundle, "readlink", "/proc/self/ns/user").strip()
    assert inside != os.readlink("/proc/self/ns/user")


def test_files_created_inside_belong_to_mapped_ids(rt: Runtime, mapped_bundle: Bundle, shared_dir: Path) -> None:
    """Ids inside map to host ids: a file made by container root is owned by host 100000, a file
    chowned to 5:6 inside (with CAP_CHOWN) is owned by host 100005:100006 (seen through a bind mount)."""
    out_dir = shared_dir / "out"
    out_dir.mkdir()
    os.chown(out_dir, HOST_ID, HOST_ID)
    mapped_bundle.add_bind(out_dir, "/mnt/out")
    for caps in mapped_bundle.config["process"]["capabilities"].values():
        caps.append("CAP_CHOWN")
    run_ok(rt, mapped_bundle, "sh", "-c", "touch /mnt/out/root-file; touch /mnt/out/other; chown 5:6 /mnt/out/other")
    root_file, other = (out_dir / "root-file").stat(), (out_dir / "other").stat()
    assert (root_file.st_uid, root_file.st_gid) == (HOST_ID, HOST_ID)
    assert (other.st_uid, other.st_gid) == (HOST_ID + 5, HOST_ID + 6)


def test_unmapped_owner_shows_as_overflow_id(rt: Runtime, mapped_bundle: Bundle) -> None:
    """A host file whose owner is outside the mapping shows as the overflow id (65534) inside."""
    (mapped_bundle.rootfs / "host-owned").touch()  # made by host root: owner 0:0, unmapped
    out = run_ok(rt, mapped_bundle, "stat", "-c", "%u %g", "/host-owned")
    assert out.split() == ["65534", "65534"]


@pytest.fixture
def userns_holder() -> Iterator[int]:
    """A helper process in a new user namespace mapped 0 → 100000 (65536) by this (root) process."""
    host_user = os.readlink("/proc/self/ns/user")
    with subprocess.Popen(["unshare", "--user", "sleep", "300"]) as proc:
        try:
            deadline = time.monotonic() + 5
            while os.readlink(f"/proc/{proc.pid}/ns/user") == host_user:
                assert time.monotonic() < deadline, "unshare --user did not take effect"
                time.sleep(0.01)
            for name in ("uid_map", "gid_map"):
                Path(f"/proc/{proc.pid}/{name}").write_text(f"0 {HOST_ID} {SIZE}\n")
            yield proc.pid
        finally:
            proc.kill()


def test_join_user_namespace_by_path(rt: Runtime, mapped_bundle: Bundle, userns_holder: int) -> None:
    """config-linux.md "Namespaces": "path ... the runtime MUST place the container process in the
    namespace specified by that path" (the user namespace, with the mappings it already has)."""
    path = f"/proc/{userns_holder}/ns/user"
    for ns in mapped_bundle.config["linux"]["namespaces"]:
        if ns["type"] == "user":
            ns["path"] = path
    out = run_ok(rt, mapped_bundle, "sh", "-c", "readlink /proc/self/ns/user; id -u; cat /proc/self/uid_map")
    lines = out.splitlines()
    assert lines[0] == os.readlink(path)
    assert lines[1] == "0"
    assert lines[2].split() == ["0", str(HOST_ID), str(SIZE)]


def test_overlapping_mappings_are_an_error(rt: Runtime, mapped_bundle: Bundle) -> None:
    """user_namespaces(7): ranges of a map must not overlap, the kernel refuses such a map; the runtime
    fails the create (exit 1) and leaves nothing (leak check)."""
    mapped_bundle.config["linux"]["uidMappings"] = [
        {"containerID": 0, "hostID": HOST_ID, "size": 1000},
        {"containerID": 500, "hostID": HOST_ID + 5000, "size": 1000},
    ]
    mapped_bundle.set_args("true")
    code, _, err = rt.run_container(mapped_bundle)
    assert code == 1, f"exit {code}, stderr: {err}"
    assert err.strip()
    assert rt.container_ids() == []
    if not rt.is_runc:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
