"""Every raw system call pyrunc makes that Python's `os` module does not offer, through ctypes.

Each wrapper raises `OSError(errno, "call(arguments)")` so that the error names the call and the path.
Syscalls newer than glibc's wrappers go through `syscall(2)` with their numbers; the numbers from 424 on
are the same on every architecture.
"""

from __future__ import annotations

import ctypes
import os

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

# Namespaces (linux/sched.h)
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags (linux/mount.h)
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_I_VERSION = 1 << 23
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25

MNT_FORCE = 1
MNT_DETACH = 2

# prctl(2)
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# openat2(2) resolve flags and open_tree/move_mount/mount_setattr
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = os.O_CLOEXEC
MOVE_MOUNT_F_EMPTY_PATH = 0x00000004
MOUNT_ATTR_RDONLY = 0x00000001
MOUNT_ATTR_NOSUID = 0x00000002
MOUNT_ATTR_NODEV = 0x00000004
MOUNT_ATTR_NOEXEC = 0x00000008
MOUNT_ATTR__ATIME = 0x00000070
MOUNT_ATTR_RELATIME = 0x00000000
MOUNT_ATTR_NOATIME = 0x00000010
MOUNT_ATTR_STRICTATIME = 0x00000020
MOUNT_ATTR_NODIRATIME = 0x00000080
MOUNT_ATTR_IDMAP = 0x00100000
MOUNT_ATTR_NOSYMFOLLOW = 0x00200000

_ARCH_NUMBERS = {
    "x86_64": {"pivot_root": 155, "bpf": 321, "ioprio_set": 251, "sched_setattr": 314},
    "aarch64": {"pivot_root": 41, "bpf": 280, "ioprio_set": 30, "sched_setattr": 274},
}
_COMMON_NUMBERS = {
    "pidfd_send_signal": 424,
    "open_tree": 428,
    "move_mount": 429,
    "clone3": 435,
    "close_range": 436,
    "openat2": 437,
    "pidfd_open": 434,
    "mount_setattr": 442,
}


def syscall_number(name: str) -> int:
    """The number of a syscall that glibc does not wrap, for this machine's architecture."""
    if name in _COMMON_NUMBERS:
        return _COMMON_NUMBERS[name]
    return _ARCH_NUMBERS[os.uname().machine][name]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _bytes(value: str | bytes | None) -> bytes | None:
    if value is None:
        return None
    return value.encode() if isinstance(value, str) else value


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(
        _libc.mount(_bytes(source), _bytes(target), _bytes(fstype), ctypes.c_ulong(flags), _bytes(data)),
        f"mount {source or 'none'} on {target} (type {fstype or 'none'}, flags {flags:#x}, data {data!r})",
    )


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_bytes(target), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_syscall(syscall_number("pivot_root"), _bytes(new_root), _bytes(put_old)), f"pivot_root {new_root}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def setns(fd: int, nstype: int = 0, what: str = "") -> None:
    _check(_libc.setns(fd, nstype), f"setns {what or fd}")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(
        _libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)),
        f"prctl({option})",
    )


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_libc.setdomainname(raw, len(raw)), f"setdomainname {name}")


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_libc.sethostname(raw, len(raw)), f"sethostname {name}")


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dirfd: int, path: str, flags: int, mode: int = 0, resolve: int = 0) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return _check(
        _syscall(syscall_number("openat2"), dirfd, _bytes(path), ctypes.byref(how), ctypes.sizeof(how)),
        f"openat2 {path}",
    )


def open_tree(dirfd: int, path: str, flags: int) -> int:
    return _check(_syscall(syscall_number("open_tree"), dirfd, _bytes(path), ctypes.c_uint(flags)), f"open_tree {path}")


def move_mount(from_dirfd: int, from_path: str, to_dirfd: int, to_path: str, flags: int) -> None:
    _check(
        _syscall(
            syscall_number("move_mount"), from_dirfd, _bytes(from_path), to_dirfd, _bytes(to_path), ctypes.c_uint(flags)
        ),
        f"move_mount to {to_path}",
    )


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def mount_setattr(
    dirfd: int, path: str, flags: int, attr_set: int = 0, attr_clr: int = 0, propagation: int = 0, userns_fd: int = 0
) -> None:
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    _check(
        _syscall(syscall_number("mount_setattr"), dirfd, _bytes(path), ctypes.c_uint(flags), ctypes.byref(attr),
                 ctypes.sizeof(attr)),
        f"mount_setattr {path}",
    )


def pidfd_open(pid: int) -> int:
    return _check(_syscall(syscall_number("pidfd_open"), pid, 0), f"pidfd_open {pid}")


def pidfd_send_signal(pidfd: int, sig: int) -> None:
    _check(_syscall(syscall_number("pidfd_send_signal"), pidfd, sig, None, 0), f"pidfd_send_signal {sig}")


# Capabilities (linux/capability.h): capget/capset with version-3 structs (two 32-bit words per set).
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def capget(pid: int = 0) -> tuple[int, int, int]:
    """(effective, permitted, inheritable) bitmasks of a thread (0: the caller)."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, pid)
    data = (_CapData * 2)()
    _check(_libc.capget(ctypes.byref(header), data), f"capget({pid})")
    effective, permitted, inheritable = (
        getattr(data[0], field) | getattr(data[1], field) << 32 for field in ("effective", "permitted", "inheritable")
    )
    return effective, permitted, inheritable


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    for word in (0, 1):
        shift = 32 * word
        data[word].effective = (effective >> shift) & 0xFFFFFFFF
        data[word].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[word].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), data),
           f"capset(effective={effective:#x}, permitted={permitted:#x}, inheritable={inheritable:#x})")


# seccomp(2), personality(2), sched_setattr(2), ioprio_set(2)
_ARCH_NUMBERS["x86_64"]["seccomp"] = 317
_ARCH_NUMBERS["aarch64"]["seccomp"] = 277
SECCOMP_SET_MODE_FILTER = 1


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_char_p)]


def seccomp_set_mode_filter(program: bytes, flags: int) -> int:
    """Load a classic BPF program (8-byte `struct sock_filter` entries); returns the listener fd or 0."""
    prog = _SockFprog(len(program) // 8, program)
    return _check(_syscall(syscall_number("seccomp"), SECCOMP_SET_MODE_FILTER, ctypes.c_uint(flags),
                           ctypes.byref(prog)), f"seccomp(SECCOMP_SET_MODE_FILTER, flags={flags:#x})")


def personality(persona: int) -> int:
    """Set the execution domain; returns the previous one."""
    return _check(_libc.personality(ctypes.c_ulong(persona)), f"personality({persona:#x})")


class SchedAttr(ctypes.Structure):
    _fields_ = [
        ("size", ctypes.c_uint32),
        ("sched_policy", ctypes.c_uint32),
        ("sched_flags", ctypes.c_uint64),
        ("sched_nice", ctypes.c_int32),
        ("sched_priority", ctypes.c_uint32),
        ("sched_runtime", ctypes.c_uint64),
        ("sched_deadline", ctypes.c_uint64),
        ("sched_period", ctypes.c_uint64),
    ]


def sched_setattr(pid: int, attr: SchedAttr) -> None:
    attr.size = ctypes.sizeof(attr)
    _check(_syscall(syscall_number("sched_setattr"), pid, ctypes.byref(attr), 0),
           f"sched_setattr(policy={attr.sched_policy}, flags={attr.sched_flags:#x})")


IOPRIO_WHO_PROCESS = 1


def ioprio_set(pid: int, ioclass: int, level: int) -> None:
    _check(_syscall(syscall_number("ioprio_set"), IOPRIO_WHO_PROCESS, pid, (ioclass << 13) | level),
           f"ioprio_set(class={ioclass}, priority={level})")


# The new mount API beyond open_tree/move_mount (linux/mount.h): a filesystem context made into a
# detached mount, so mounts can be made on descriptors without going through /proc/self/fd.
MOVE_MOUNT_T_EMPTY_PATH = 0x00000040
FSOPEN_CLOEXEC = 1
FSMOUNT_CLOEXEC = 1
FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_CREATE = 6
MS_POSIXACL = 1 << 16


def fsopen(fstype: str) -> int:
    return _check(_syscall(430, _bytes(fstype), ctypes.c_uint(FSOPEN_CLOEXEC)), f"fsopen {fstype}")


def fsconfig(fs_fd: int, cmd: int, key: str | None = None, value: str | None = None) -> None:
    _check(_syscall(431, fs_fd, ctypes.c_uint(cmd), _bytes(key), _bytes(value), 0), f"fsconfig {key or cmd}")


def fsmount(fs_fd: int, attr_flags: int = 0) -> int:
    return _check(_syscall(432, fs_fd, ctypes.c_uint(FSMOUNT_CLOEXEC), ctypes.c_uint(attr_flags)), "fsmount")


def bpf(cmd: int, attr: ctypes.Array, what: str) -> int:
    """bpf(2) with a caller-packed `union bpf_attr` buffer (e.g. ctypes.create_string_buffer)."""
    return _check(_syscall(syscall_number("bpf"), cmd, attr, ctypes.sizeof(attr)), what)


KEYCTL_JOIN_SESSION_KEYRING = 1
_KEYCTL_NUMBERS = {"x86_64": 250, "aarch64": 219}


def join_new_session_keyring() -> None:
    """Give the calling process a new anonymous session keyring (keyctl(2) has no glibc wrapper)."""
    number = _KEYCTL_NUMBERS[os.uname().machine]
    _check(_syscall(number, KEYCTL_JOIN_SESSION_KEYRING, None), "keyctl(JOIN_SESSION_KEYRING)")


CLONE_INTO_CGROUP = 0x200000000
_SIGCHLD = 17  # the same on every Linux architecture pyrunc runs on


class _CloneArgs(ctypes.Structure):
    """struct clone_args (linux/sched.h), the version with `cgroup` (CLONE_ARGS_SIZE_VER2)."""

    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size", "tls", "set_tid",
        "set_tid_size", "cgroup")]


def clone3_fork(flags: int, cgroup_fd: int = -1) -> int:
    """`os.fork()` through clone3 with `flags` (CLONE_NEW* namespaces the child is born in), and born in
    the cgroup v2 directory open as `cgroup_fd` (CLONE_INTO_CGROUP) unless it is -1. Returns 0 in the
    child, its pid in the parent.

    The interpreter's fork bookkeeping is done as `os.fork()` does it (PyOS_BeforeFork, then
    PyOS_AfterFork_Child or _Parent), and clone3 is called with the GIL held: the child must resume
    holding it."""
    api = ctypes.PyDLL(None, use_errno=True)  # a PyDLL keeps the GIL during the call
    clone3 = api.syscall
    clone3.restype = ctypes.c_long
    if cgroup_fd >= 0:
        flags |= CLONE_INTO_CGROUP
    args = _CloneArgs(flags=flags, exit_signal=_SIGCHLD, cgroup=max(cgroup_fd, 0))
    api.PyOS_BeforeFork()
    pid = clone3(ctypes.c_long(syscall_number("clone3")), ctypes.byref(args), ctypes.c_size_t(ctypes.sizeof(args)))
    err = ctypes.get_errno() if pid < 0 else 0
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    api.PyOS_AfterFork_Parent()
    if pid < 0:
        raise OSError(err, f"clone3({flags:#x}): {os.strerror(err)}")
    return pid
