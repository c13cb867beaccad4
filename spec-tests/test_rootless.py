"""Rootless containers: the runtime run by an unprivileged host user (config-linux.md "User namespace
mappings"; runc's rootless mode: auto-detected when not root, state under $XDG_RUNTIME_DIR).

The user is uid 1000 when it exists, else a throw-away system user made for the session. The bundle
comes from `RUNTIME spec --rootless` run as that user, in a directory owned by that user, with a copy of
the rootfs owned by that user; no `--root` is passed, so the runtime picks its rootless default.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import Runtime, ensure_rootfs, new_id


@dataclass
class RootlessUser:
    uid: int
    gid: int


@pytest.fixture(scope="module")
def rootless_user() -> Iterator[RootlessUser]:
    """uid 1000, or a throw-away system user removed at the end of the module."""
    try:
        entry = pwd.getpwuid(1000)
        yield RootlessUser(entry.pw_uid, entry.pw_gid)
        return
    except KeyError:
        pass
    name = f"pyrunc-rl-{os.getpid()}"
    subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", name], check=True)
    try:
        entry = pwd.getpwnam(name)
        yield RootlessUser(entry.pw_uid, entry.pw_gid)
    finally:
        subprocess.run(["userdel", name], check=True)


@dataclass
class RootlessSetup:
    user: RootlessUser
    runtime: str
    bundle: Path
    xdg: Path

    def __call__(self, *args: str, timeout: float = 20) -> subprocess.CompletedProcess:
        """Run the runtime as the user, with XDG_RUNTIME_DIR set and the default (rootless) state root."""
        cmd = ["setpriv", f"--reuid={self.user.uid}", f"--regid={self.user.gid}", "--clear-groups",
               "env", f"XDG_RUNTIME_DIR={self.xdg}", f"HOME={self.bundle}", self.runtime, *args]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                  cwd=self.bundle, timeout=timeout)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(cmd, proc.returncode, out.read().decode(), err.read().decode())

    @property
    def config_path(self) -> Path:
        return self.bundle / "config.json"

    def edit_config(self, **process) -> dict:
        """terminal off and the given process fields; returns the config written."""
        config = json.loads(self.config_path.read_text())
        config["process"].update(terminal=False, **process)
        self.config_path.write_text(json.dumps(config, indent=2))
        return config

    def state_entries(self) -> list[str]:
        """Entries of every state root under XDG_RUNTIME_DIR (pyrunc/, runc/ ...)."""
        return sorted(f"{d.name}/{e}" for d in self.xdg.iterdir() if d.is_dir() for e in os.listdir(d))


@pytest.fixture
def rootless(rt: Runtime, rootless_user: RootlessUser) -> Iterator[RootlessSetup]:
    top = Path(tempfile.mkdtemp(prefix="pyrunc-rootless-"))
    try:
        top.chmod(0o755)
        bundle, xdg = top / "bundle", top / "xdg"
        bundle.mkdir()
        xdg.mkdir(mode=0o700)
        subprocess.run(["cp", "-a", str(ensure_rootfs()), str(bundle / "rootfs")], check=True)
        subprocess.run(["chown", "-R", f"{rootless_user.uid}:{rootless_user.gid}", str(top)], check=True)
        setup = RootlessSetup(rootless_user, rt.path, bundle, xdg)
        result = setup("spec", "--rootless")
        assert result.returncode == 0, result.stderr
        yield setup
        leftovers = setup.state_entries()
        for entry in leftovers:
            setup("delete", "--force", entry.split("/", 1)[1])
        assert leftovers == [], f"state entries left: {leftovers}"
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_rootless_spec_maps_the_user(rootless: RootlessSetup) -> None:
    """`spec --rootless` maps container root to the calling user (one id) in a new user namespace."""
    config = json.loads(rootless.config_path.read_text())
    uid, gid = rootless.user.uid, rootless.user.gid
    assert {"type": "user"} in config["linux"]["namespaces"]
    assert config["linux"]["uidMappings"] == [{"containerID": 0, "hostID": uid, "size": 1}]
    assert config["linux"]["gidMappings"] == [{"containerID": 0, "hostID": gid, "size": 1}]


def test_rootless_run(rootless: RootlessSetup) -> None:
    """An unprivileged user runs a container: root inside, mapped to that user's single uid/gid."""
    rootless.edit_config(args=["sh", "-c", "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map"])
    result = rootless("run", new_id())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:2] == ["0", "0"]
    assert lines[2].split() == ["0", str(rootless.user.uid), "1"]
    assert lines[3].split() == ["0", str(rootless.user.gid), "1"]


def test_rootless_lifecycle_state_under_xdg_runtime_dir(rootless: RootlessSetup) -> None:
    """create/start/kill/delete as the user; the state lives under $XDG_RUNTIME_DIR, owned by the user."""
    rootless.edit_config(args=["sleep", "100"])
    cid = new_id()
    assert rootless("create", cid).returncode == 0
    entries = rootless.state_entries()
    assert [e.split("/", 1)[1] for e in entries] == [cid]
    assert (rootless.xdg / entries[0]).stat().st_uid == rootless.user.uid
    state = json.loads(rootless("state", cid).stdout)
    assert state["status"] == "created"
    assert Path(f"/proc/{state['pid']}/status").read_text().count(f"\t{rootless.user.uid}\t") >= 1
    assert rootless("start", cid).returncode == 0
    assert rootless("kill", cid, "KILL").returncode == 0
    result = rootless("delete", "--force", cid)
    assert result.returncode == 0, result.stderr
    assert rootless.state_entries() == []


def test_rootless_unallowed_mapping_is_an_error(rootless: RootlessSetup) -> None:
    """A range the user may not map (no /etc/subuid entry for 65536 ids): exit 1, nothing left."""
    config = rootless.edit_config(args=["true"])
    uid, gid = rootless.user.uid, rootless.user.gid
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1},
                                      {"containerID": 1, "hostID": 200000, "size": 65536}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1},
                                      {"containerID": 1, "hostID": 200000, "size": 65536}]
    rootless.config_path.write_text(json.dumps(config))
    result = rootless("run", new_id())
    assert result.returncode == 1, f"exit {result.returncode}: {result.stderr}"
    assert result.stderr.strip()
    if os.path.basename(rootless.runtime) != "runc":
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
        assert "uidMappings" in lines[0], lines[0]
    assert rootless.state_entries() == []
