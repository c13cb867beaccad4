"""seccomp profiles compiled with libseccomp and loaded with seccomp(2) in a forked child."""

from __future__ import annotations

import errno
import json
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from test_security_helpers import CHILD_FAILED, run_child, status_fields

from pyrunc import syscalls
from pyrunc.errors import SecurityError
from pyrunc.security import identity, seccomp

ALLOW_ALL_BUT = {"defaultAction": "SCMP_ACT_ALLOW"}


def profile(*rules: dict, **extra: object) -> dict:
    return {**ALLOW_ALL_BUT, **extra, "syscalls": list(rules)}


def errno_of(call: Callable[[], object]) -> int:
    try:
        call()
    except OSError as e:
        return e.errno or 0
    return 0


def test_blocked_syscall_returns_configured_errno_and_status_says_filter(tmp_path: Path) -> None:
    filt = seccomp.prepare(profile(
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EROFS},
        {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"},
        {"names": ["no_such_syscall_at_all"], "action": "SCMP_ACT_KILL"},
    ))

    def step() -> dict:
        seccomp.load(filt)
        with open("/proc/self/status") as f:
            status = status_fields(f.read())
        return {"seccomp": status["Seccomp"], "mkdir": errno_of(lambda: os.mkdir(tmp_path / "d")),
                "rmdir": errno_of(lambda: os.rmdir(tmp_path))}

    assert run_child(step).json() == {"seccomp": "2", "mkdir": errno.EROFS, "rmdir": errno.EPERM}
    assert not (tmp_path / "d").exists()


def test_default_errno_ret_and_allow_list() -> None:
    filt = seccomp.prepare({
        "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": errno.ENOSYS,
        "syscalls": [{"names": ["write", "exit_group", "exit", "execve", "brk", "mmap", "munmap", "arch_prctl",
                                "access", "openat", "read", "close", "newfstatat", "fstat", "getuid", "getpid",
                                "set_tid_address", "rseq", "prlimit64", "mprotect", "ioctl", "set_robust_list",
                                "rt_sigaction", "rt_sigprocmask", "getppid", "uname"],
                      "action": "SCMP_ACT_ALLOW"}],
    })

    def step() -> None:
        seccomp.load(filt)
        os.write(1, json.dumps({"getcwd": errno_of(os.getcwd), "getpid": os.getpid() > 0}).encode())
        os._exit(0)

    assert run_child(step).json() == {"getcwd": errno.ENOSYS, "getpid": True}


def test_argument_filters() -> None:
    """personality(0xffffffff) only queries: allowed; any other value is refused. A repeated index is an OR."""
    filt = seccomp.prepare(profile(
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO",
         "args": [{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_NE"}]},
        {"names": ["setpgid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EDOM,
         "args": [{"index": 1, "value": 3, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 5, "op": "SCMP_CMP_EQ"}]},
    ))

    def step() -> dict:
        seccomp.load(filt)
        return {
            "query": errno_of(lambda: syscalls.personality(0xFFFFFFFF)),
            "set": errno_of(lambda: syscalls.personality(0)),
            "pgid3": errno_of(lambda: os.setpgid(0, 3)),
            "pgid5": errno_of(lambda: os.setpgid(0, 5)),
            "pgid0": errno_of(lambda: os.setpgid(0, 0)),
        }

    assert run_child(step).json() == {
        "query": 0, "set": errno.EPERM, "pgid3": errno.EDOM, "pgid5": errno.EDOM, "pgid0": 0,
    }


def test_masked_eq_blocks_matching_values() -> None:
    filt = seccomp.prepare(profile({"names": ["umask"], "action": "SCMP_ACT_KILL_PROCESS",
                                    "args": [{"index": 0, "value": 0o070, "valueTwo": 0o020,
                                              "op": "SCMP_CMP_MASKED_EQ"}]}))

    def step() -> None:
        seccomp.load(filt)
        os.umask(0o007)  # (0o007 & 0o070) != 0o020: allowed
        os.write(1, b"alive\n")
        os.umask(0o027)  # (0o027 & 0o070) == 0o020: killed

    result = run_child(step)
    assert result.out == "alive\n"
    assert result.status == -31  # SIGSYS


@pytest.mark.parametrize("flags", [["SECCOMP_FILTER_FLAG_LOG"], ["SECCOMP_FILTER_FLAG_SPEC_ALLOW"],
                                   ["SECCOMP_FILTER_FLAG_TSYNC"]])
def test_flags_load(flags: list[str]) -> None:
    filt = seccomp.prepare(profile({"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}, flags=flags))
    assert filt.flags == seccomp.FLAGS[flags[0]]

    def step() -> int:
        seccomp.load(filt)
        return errno_of(os.getcwd)

    assert run_child(step).json() == errno.EPERM


def test_wait_killable_recv_without_notify_is_refused_by_the_kernel() -> None:
    filt = seccomp.prepare(profile({"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                                   flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]))
    result = run_child(lambda: seccomp.load(filt))
    assert result.status == CHILD_FAILED
    assert "SecurityError: cannot load the seccomp filter (flags 0x20): Invalid argument\n" in result.err


def test_non_root_without_no_new_privs_loads_before_identity() -> None:
    process = {"noNewPrivileges": False}
    assert seccomp.must_load_before_identity(process)
    assert not seccomp.must_load_before_identity({"noNewPrivileges": True})
    filt = seccomp.prepare(profile({"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.ENOSPC}))
    caps = identity.parse_capabilities(None)

    def too_late() -> None:
        identity.switch_identity({"uid": 1000, "gid": 1000}, caps)
        seccomp.load(filt)

    def early() -> int:
        seccomp.load(filt)
        identity.switch_identity({"uid": 1000, "gid": 1000}, caps)
        return errno_of(os.getcwd)

    def nnp_late() -> int:
        identity.switch_identity({"uid": 1000, "gid": 1000}, caps)
        identity.set_no_new_privs()
        seccomp.load(filt)
        return errno_of(os.getcwd)

    late = run_child(too_late)
    assert late.status == CHILD_FAILED
    assert "needs CAP_SYS_ADMIN or noNewPrivileges" in late.err
    assert run_child(early).json() == errno.ENOSPC
    assert run_child(nnp_late).json() == errno.ENOSPC


def test_architectures_added() -> None:
    filt = seccomp.prepare(profile({"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"},
                                   architectures=["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]))
    native_only = seccomp.prepare(profile({"names": ["getcwd"], "action": "SCMP_ACT_ERRNO"}))
    assert len(filt.program) > len(native_only.program)


@pytest.mark.parametrize(("config", "message"), [
    ({"defaultAction": "SCMP_ACT_NOPE"}, "unknown seccomp action 'SCMP_ACT_NOPE' in linux.seccomp.defaultAction"),
    (profile({"names": ["getcwd"], "action": "SCMP_ACT_BOGUS"}),
     "unknown seccomp action 'SCMP_ACT_BOGUS' in linux.seccomp.syscalls[0]"),
    (profile(architectures=["SCMP_ARCH_Z80"]),
     "unknown seccomp architecture 'SCMP_ARCH_Z80' in linux.seccomp.architectures"),
    (profile(flags=["SECCOMP_FILTER_FLAG_FAST"]),
     "unknown seccomp flag 'SECCOMP_FILTER_FLAG_FAST' in linux.seccomp.flags"),
    (profile({"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "op": "SCMP_CMP_ABOUT"}]}),
     "linux.seccomp.syscalls[0]: unknown seccomp operator 'SCMP_CMP_ABOUT'"),
    (profile({"names": ["getcwd"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}),
     "linux.seccomp.syscalls[0]: argument index 6 is not between 0 and 5"),
    (profile({"names": ["getcwd"], "action": "SCMP_ACT_KILL", "errnoRet": 5}),
     "linux.seccomp.syscalls[0]: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_KILL"),
    ({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/x"},
     "SCMP_ACT_NOTIFY cannot be used as linux.seccomp.defaultAction"),
    (profile({"names": ["read", "write"], "action": "SCMP_ACT_NOTIFY"}, listenerPath="/x"),
     "linux.seccomp.syscalls[0]: SCMP_ACT_NOTIFY cannot be used for the write syscall"),
    (profile({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}),
     "linux.seccomp uses SCMP_ACT_NOTIFY but has no listenerPath"),
])
def test_bad_profiles(config: dict, message: str) -> None:
    with pytest.raises(SecurityError) as raised:
        seccomp.prepare(config)
    assert str(raised.value) == message


def test_every_action_compiles() -> None:
    for action in ("SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP",
                   "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY"):
        filt = seccomp.prepare(profile({"names": ["getcwd"], "action": action}, listenerPath="/x"))
        assert filt.notifies == (action == "SCMP_ACT_NOTIFY")


# struct seccomp_notif (80 bytes) / seccomp_notif_resp (24 bytes) and their ioctls (linux/seccomp.h)
_NOTIF = struct.Struct("=QII iI Q 6Q")
_NOTIF_RESP = struct.Struct("=QqiI")
SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101


def _agent(server: socket.socket, report_fd: int) -> None:
    """The seccomp agent: take the fd and state, answer one mkdir with ENOMEDIUM, report what it saw."""
    import fcntl
    import select

    conn, _ = server.accept()
    message, fds, _, _ = socket.recv_fds(conn, 65536, 1)
    if not select.select(fds, [], [], 10)[0]:
        return
    buf = bytearray(_NOTIF.size)
    fcntl.ioctl(fds[0], SECCOMP_IOCTL_NOTIF_RECV, buf)
    notif_id, pid, _, nr, *_ = _NOTIF.unpack(buf)
    fcntl.ioctl(fds[0], SECCOMP_IOCTL_NOTIF_SEND, bytearray(_NOTIF_RESP.pack(notif_id, 0, -errno.ENOMEDIUM, 0)))
    os.write(report_fd, json.dumps({"process_state": json.loads(message), "pid": pid, "nr": nr}).encode())


def test_notify_listener_answers_a_syscall(tmp_path: Path) -> None:
    listener = str(tmp_path / "agent.sock")
    filt = seccomp.prepare(profile({"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"},
                                   listenerPath=listener, listenerMetadata="hello",
                                   flags=["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]))
    assert filt.flags == seccomp.FLAG_NEW_LISTENER | seccomp.FLAGS["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(listener)
    server.listen(1)
    server.settimeout(10)
    report_r, report_w = os.pipe()
    agent = os.fork()
    if agent == 0:
        try:
            _agent(server, report_w)
        finally:
            os._exit(0)
    server.close()
    os.close(report_w)
    try:
        def step() -> dict:
            fd = seccomp.load(filt)
            state = {"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": os.getpid(), "bundle": "/b"}
            seccomp.send_listener(listener, fd, state, "hello")
            os.close(fd)
            return {"pid": os.getpid(), "mkdir": errno_of(lambda: os.mkdir(tmp_path / "d"))}

        seen = run_child(step).json()
        with os.fdopen(report_r) as report:
            agent_saw = json.load(report)
    finally:
        os.waitpid(agent, 0)
    assert seen["mkdir"] == errno.ENOMEDIUM
    assert agent_saw["pid"] == seen["pid"]
    assert agent_saw["nr"] == 83 if os.uname().machine == "x86_64" else agent_saw["nr"] > 0
    assert agent_saw["process_state"] == {
        "ociVersion": "1.2.0", "fds": ["seccompFd"], "pid": seen["pid"], "metadata": "hello",
        "state": {"ociVersion": "1.2.0", "id": "c1", "status": "creating", "pid": seen["pid"], "bundle": "/b"},
    }
    assert not (tmp_path / "d").exists()


def test_send_listener_to_a_missing_socket(tmp_path: Path) -> None:
    with pytest.raises(SecurityError, match=r"^cannot send the seccomp listener fd to .*/none: No such file"):
        seccomp.send_listener(str(tmp_path / "none"), 0, {"pid": 1})
