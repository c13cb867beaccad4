"""Id-mapped bind mounts: the clone of the source is given a user namespace that maps its ids.

The kernel takes the mapping from a user namespace descriptor, so one is made for the purpose: a
child process unshares CLONE_NEWUSER, its maps are written from here, its /proc/PID/ns/user is
opened, and the child is ended. The child reports its own pid as the mounted /proc names it (the init
may be in a pid namespace of its own while /proc is still the host's, so fork()'s pid would be wrong).
"""

from __future__ import annotations

import _signal
import os

from .. import syscalls as s
from ..errors import RootfsError
from . import detached
from .options import MountOptions

TYPE_CHECKING = False  # collections.abc costs milliseconds at start-up; Sequence only annotates
if TYPE_CHECKING:
    from collections.abc import Sequence


def wanted(mount: dict, options: MountOptions) -> bool:
    return bool(options.idmap or mount.get("uidMappings") or mount.get("gidMappings"))


def apply(tree: int, mount: dict, options: MountOptions, container_uids: Sequence[dict],
          container_gids: Sequence[dict]) -> None:
    """Id-map the detached clone `tree` when the mount asks for it (mappings, or idmap/ridmap alone:
    then the container's own mappings)."""
    if not wanted(mount, options):
        return
    uid_map = mount.get("uidMappings") or list(container_uids)
    gid_map = mount.get("gidMappings") or list(container_gids)
    if not uid_map or not gid_map:
        raise RootfsError("an id-mapped mount needs uidMappings and gidMappings (on the mount or in linux)")
    userns = user_namespace(uid_map, gid_map)
    try:
        detached.set_attributes(tree, 0, s.MOUNT_ATTR_IDMAP, recursive=options.idmap == "ridmap",
                                userns_fd=userns)
    finally:
        os.close(userns)


def _map_text(mappings: list[dict]) -> str:
    return "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n" for m in mappings)


def user_namespace(uid_map: list[dict], gid_map: list[dict]) -> int:
    """An fd of a new user namespace with these mappings (made by a short-lived child)."""
    ready_r, ready_w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        try:
            os.close(ready_r)
            os.close(hold_w)
            s.unshare(s.CLONE_NEWUSER)
            os.write(ready_w, os.readlink("/proc/self").encode())
            os.read(hold_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(hold_r)
    try:
        proc_pid = os.read(ready_r, 32).decode()
        if not proc_pid.isdigit():
            raise RootfsError("could not create a user namespace for an id-mapped mount")
        with open(f"/proc/{proc_pid}/uid_map", "w") as f:
            f.write(_map_text(uid_map))
        with open(f"/proc/{proc_pid}/gid_map", "w") as f:
            f.write(_map_text(gid_map))
        return os.open(f"/proc/{proc_pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise RootfsError(f"id-mapped mount: {err}") from None
    finally:
        os.close(ready_r)
        os.close(hold_w)
        os.kill(pid, _signal.SIGKILL)
        os.waitpid(pid, 0)
