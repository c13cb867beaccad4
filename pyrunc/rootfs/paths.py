"""Resolving paths inside the container's root without ever leaving it.

Every path a config names inside the rootfs (mount destinations, devices, masked and read-only paths)
is opened relative to a descriptor of the root with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS):
symlinks are followed as if the root were `/`, `..` stops at the root, and /proc magic links are
refused. Missing components are created one at a time relative to the descriptor of their parent, and
the caller then acts on the descriptor it got back (a mount on `/proc/self/fd/N`, a move_mount onto the
descriptor), so a symlink swapped in after the check cannot redirect anything to the host.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

from .. import syscalls

RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS


def fd_path(fd: int) -> str:
    """The magic link of an open descriptor, usable as a mount(2) target before the pivot."""
    return f"/proc/self/fd/{fd}"


def split(path: str) -> list[str]:
    return [part for part in path.split("/") if part and part != "."]


class Root:
    """An O_PATH descriptor of a root directory and safe operations below it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

    @cached_property
    def real_path(self) -> str:
        """The root as the kernel names it (descriptors inside it read back with this prefix)."""
        return os.readlink(fd_path(self.fd))

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, path: str, flags: int = os.O_PATH) -> int:
        """openat2 of `path` inside the root; raises FileNotFoundError etc. like os.open."""
        return syscalls.openat2(self.fd, "/".join(split(path)) or ".", flags, resolve=RESOLVE)

    @contextmanager
    def opened(self, path: str, flags: int = os.O_PATH) -> Iterator[int]:
        fd = self.open(path, flags)
        try:
            yield fd
        finally:
            os.close(fd)

    def exists(self, path: str) -> bool:
        try:
            os.close(self.open(path))
        except FileNotFoundError:
            return False
        return True

    def make_dirs(self, path: str, mode: int = 0o755) -> int:
        """Open directory `path`, creating each missing component; returns an O_PATH descriptor."""
        fd = os.dup(self.fd)
        done: list[str] = []
        try:
            for part in split(path):
                done.append(part)
                fd = self._step(fd, "/".join(done), part, mode)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _step(self, parent_fd: int, so_far: str, name: str, mode: int) -> int:
        """Open the directory `so_far` (resolved from the root), creating `name` in `parent_fd` if missing."""
        try:
            try:
                return self.open(so_far, os.O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                try:
                    os.mkdir(name, mode, dir_fd=parent_fd)
                except FileExistsError:
                    pass  # a dangling symlink: the open below reports it
                return self.open(so_far, os.O_PATH | os.O_DIRECTORY)
        finally:
            os.close(parent_fd)

    def parent_and_name(self, path: str, mode: int = 0o755) -> tuple[int, str]:
        """A descriptor of the (created) parent directory of `path` and its last component."""
        parts = split(path)
        if not parts:
            raise IsADirectoryError(0, "the root itself", path)
        return self.make_dirs("/".join(parts[:-1]), mode), parts[-1]

    def make_file(self, path: str, mode: int = 0o644) -> int:
        """Open `path`, creating it as an empty regular file when missing; returns an O_PATH descriptor."""
        try:
            return self.open(path)
        except FileNotFoundError:
            pass
        parent, name = self.parent_and_name(path)
        try:
            # O_EXCL|O_NOFOLLOW never follows a symlink that appeared in the meantime
            os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY | os.O_CLOEXEC,
                             mode, dir_fd=parent))
        except FileExistsError:
            pass
        finally:
            os.close(parent)
        return self.open(path)

    def is_symlink(self, path: str) -> bool:
        """Whether the last component of `path` (its parent resolved inside the root) is a symlink."""
        parts = split(path)
        if not parts:
            return False
        try:
            parent = self.open("/".join(parts[:-1]))
        except FileNotFoundError:
            return False
        try:
            return stat.S_ISLNK(os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode)
        except FileNotFoundError:
            return False
        finally:
            os.close(parent)
