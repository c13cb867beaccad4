"""/dev inside the container: device nodes, /dev/ptmx and the standard symlinks.

Nodes are made with mknod relative to the descriptor of their (safely resolved) parent directory; where
mknod is not allowed (inside a user namespace) the host's node is bind-mounted onto an empty file.
"""

from __future__ import annotations

import errno
import os
import stat

from ..errors import RootfsError
from ..inroot import Root
from . import detached

#: the devices every container gets (runc's list), unless linux.devices names the same path
DEFAULT_DEVICES = (
    {"path": "/dev/null", "type": "c", "major": 1, "minor": 3},
    {"path": "/dev/zero", "type": "c", "major": 1, "minor": 5},
    {"path": "/dev/full", "type": "c", "major": 1, "minor": 7},
    {"path": "/dev/random", "type": "c", "major": 1, "minor": 8},
    {"path": "/dev/urandom", "type": "c", "major": 1, "minor": 9},
    {"path": "/dev/tty", "type": "c", "major": 5, "minor": 0},
)
DEVICE_TYPES = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK, "p": stat.S_IFIFO}
_DEFAULT_MODE = 0o666

_SYMLINKS = (("/proc/self/fd", "fd"), ("/proc/self/fd/0", "stdin"), ("/proc/self/fd/1", "stdout"),
             ("/proc/self/fd/2", "stderr"))


def needs_dev_setup(config: dict) -> bool:
    """runc fills /dev unless the config bind-mounts a /dev of its own."""
    for mount in config.get("mounts") or ():
        if os.path.normpath(mount.get("destination", "")) == "/dev" and (
                mount.get("type") == "bind" or {"bind", "rbind"} & set(mount.get("options") or ())):
            return False
    return True


def all_devices(config: dict) -> list[dict]:
    listed = list((config.get("linux") or {}).get("devices") or ())
    paths = {os.path.normpath(d.get("path", "")) for d in listed}
    return listed + [d for d in DEFAULT_DEVICES if d["path"] not in paths]


def setup_dev(root: Root, config: dict, *, in_userns: bool) -> None:
    old_umask = os.umask(0)
    try:
        for index, device in enumerate(all_devices(config)):
            try:
                create_device(root, device, bind=in_userns)
            except OSError as err:
                raise RootfsError(f"linux.devices[{index}] ({device.get('path')}): {err}") from None
    finally:
        os.umask(old_umask)
    dev = root.make_dirs("/dev")
    try:
        _replace_with_symlink(dev, "ptmx", "pts/ptmx")
        links = [*_SYMLINKS, *((("/proc/kcore", "core"),) if os.path.exists("/proc/kcore") else ())]
        for target, name in links:
            try:
                os.symlink(target, name, dir_fd=dev)
            except FileExistsError:
                pass
    finally:
        os.close(dev)


def _replace_with_symlink(dir_fd: int, name: str, target: str) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    os.symlink(target, name, dir_fd=dir_fd)


def create_device(root: Root, device: dict, *, bind: bool) -> None:
    """mknod the device (an existing file is left alone, as runc), or bind the host's node."""
    if not bind:
        file_mode = device.get("fileMode")
        mode = (_DEFAULT_MODE if file_mode is None else file_mode) & 0o7777
        kind = DEVICE_TYPES[device["type"]]
        number = 0 if kind == stat.S_IFIFO else os.makedev(device.get("major", 0), device.get("minor", 0))
        parent, name = root.parent_and_name(device["path"])
        try:
            os.mknod(name, mode | kind, number, dir_fd=parent)
            os.chown(name, device.get("uid", 0), device.get("gid", 0), dir_fd=parent, follow_symlinks=False)
            return
        except FileExistsError:
            return
        except PermissionError:
            pass  # no CAP_MKNOD over this filesystem: bind the host's node instead
        finally:
            os.close(parent)
    _bind_host_device(root, device["path"])


def _bind_host_device(root: Root, path: str) -> None:
    source = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        if stat.S_ISDIR(os.fstat(source).st_mode):
            raise IsADirectoryError(errno.EISDIR, "the host's node is a directory", path)
        dest = root.make_file(path, 0o600)
        try:
            os.close(detached.bind(source, dest))
        finally:
            os.close(dest)
    finally:
        os.close(source)


def mount_console(slave_fd: int, rootfs: str = "/") -> None:
    """With process.terminal: bind the pty slave onto <rootfs>/dev/console (created empty when missing),
    resolved inside the rootfs."""
    try:
        with Root(rootfs) as root:
            console = root.make_file("/dev/console", 0o000)
            try:
                os.close(detached.bind(slave_fd, console))
            finally:
                os.close(console)
    except OSError as err:
        raise RootfsError(f"/dev/console: {err}") from None
