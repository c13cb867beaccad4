"""Resolving paths inside the container's root without ever leaving it.

Every path a config names inside the rootfs (mount destinations, devices, masked and read-only paths)
is opened relative to a descriptor of the root with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS):
symlinks are followed as if the root were `/`, `..` stops at the root, and /proc magic links are
refused. Missing components are created one at a time relative to the descriptor of their parent, and
the caller then acts on the descriptor it got back (a mount on `/proc/self/fd/N`, a move_mount onto the
descriptor), so a symlink swapped in after the check cannot redirect anything to the host.
"""

from __future__ import annotations

import errno
import os
import stat

from . import syscalls

RESOLVE = syscalls.RESOLVE_IN_ROOT | syscalls.RESOLVE_NO_MAGICLINKS
_MAX_SYMLINK_HOPS = 40  # the kernel's own limit (ELOOP)


def fd_path(fd: int) -> str:
    """The magic link of an open descriptor, usable as a mount(2) target before the pivot."""
    return f"/proc/self/fd/{fd}"


def split(path: str) -> list[str]:
    return [part for part in path.split("/") if part and part != "."]


class OpenedFd:
    """A descriptor as a context manager (contextlib costs milliseconds at start-up)."""

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __enter__(self) -> int:
        return self.fd

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


class Root:
    """An O_PATH descriptor of a root directory and safe operations below it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        self._real_path = ""

    @property
    def real_path(self) -> str:
        """The root as the kernel names it (descriptors inside it read back with this prefix)."""
        if not self._real_path:
            self._real_path = os.readlink(fd_path(self.fd))
        return self._real_path

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, path: str, flags: int = os.O_PATH) -> int:
        """openat2 of `path` inside the root; raises FileNotFoundError etc. like os.open."""
        return syscalls.openat2(self.fd, "/".join(split(path)) or ".", flags, resolve=RESOLVE)

    def opened(self, path: str, flags: int = os.O_PATH) -> OpenedFd:
        """`with root.opened(path) as fd:` the descriptor is closed at the end of the block."""
        return OpenedFd(self.open(path, flags))

    def make_dirs(self, path: str, mode: int = 0o755, _hops: int = 0) -> int:
        """Open directory `path`, creating each missing component; returns an O_PATH descriptor.

        A component that is a dangling symlink gets its target created (inside the root), as the
        kernel would resolve it."""
        try:
            return self.open(path, os.O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            pass
        parts = split(path)
        existing = len(parts) - 1  # the deepest directory that exists: usually the parent
        parent = self._open_dir_or_none(parts[:existing])
        while parent is None:
            existing -= 1
            parent = self._open_dir_or_none(parts[:existing])
        for index in range(existing, len(parts)):
            try:
                self._create_in(parent, "/".join(parts[:index]), parts[index], mode, _hops, directory=True)
            finally:
                os.close(parent)
            parent = self.open("/".join(parts[: index + 1]), os.O_PATH | os.O_DIRECTORY)
        return parent

    def make_file(self, path: str, mode: int = 0o644, _hops: int = 0) -> int:
        """Open `path`, creating it as an empty regular file when missing; returns an O_PATH descriptor."""
        try:
            return self.open(path)
        except FileNotFoundError:
            pass
        parts = split(path)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "the root itself", path)
        parent = self.make_dirs("/".join(parts[:-1]), _hops=_hops)
        try:
            self._create_in(parent, "/".join(parts[:-1]), parts[-1], mode, _hops, directory=False)
        finally:
            os.close(parent)
        return self.open(path)

    def _open_dir_or_none(self, parts: list[str]) -> int | None:
        try:
            return self.open("/".join(parts), os.O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            return None

    def _create_in(self, parent: int, parent_path: str, name: str, mode: int, hops: int, *, directory: bool) -> None:
        """Create `name` in the directory open as `parent` (`parent_path` in the root); never through a
        symlink: a dangling one has its target created instead, resolved from the root."""
        try:
            if directory:
                os.mkdir(name, mode, dir_fd=parent)
            else:
                os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_WRONLY | os.O_CLOEXEC,
                                 mode, dir_fd=parent))
            return
        except FileExistsError:
            if not stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
                return  # appeared meanwhile; the caller's open checks what it is
            target = os.readlink(name, dir_fd=parent)
        if hops >= _MAX_SYMLINK_HOPS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), name)
        full = target if target.startswith("/") else f"{parent_path}/{target}"
        make = self.make_dirs if directory else self.make_file
        os.close(make(full, mode, _hops=hops + 1))

    def parent_and_name(self, path: str) -> tuple[int, str]:
        """A descriptor of the (created) parent directory of `path`, and its last component."""
        parts = split(path)
        if not parts:
            raise IsADirectoryError(errno.EISDIR, "the root itself", path)
        return self.make_dirs("/".join(parts[:-1])), parts[-1]

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
