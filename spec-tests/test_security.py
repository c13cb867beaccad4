"""What the container process may do: capabilities, no_new_privs, seccomp (with notify), rlimits,
oom_score_adj and sysctl (config.md "Linux Process", config-linux.md "Seccomp", "Sysctl")."""

from __future__ import annotations

import array
import fcntl
import json
import os
import select
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import Bundle, Runtime, new_id, run_ok

# Capability numbers from linux/capability.h.
CAPS = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_FOWNER": 3, "CAP_KILL": 5, "CAP_SETGID": 6,
        "CAP_SETUID": 7, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_RAW": 13, "CAP_SYS_CHROOT": 18,
        "CAP_AUDIT_WRITE": 29}  # fmt: skip



def status_fields(rt: Runtime, bundle: Bundle) -> dict[str, str]:
    """The container process's own /proc/self/status as a dict."""
    out = run_ok(rt, bundle, "cat", "/proc/self/status")
    return {k: v.strip() for k, v in (line.split(":", 1) for line in out.splitlines() if ":" in line)}


def assert_refused(rt: Runtime, bundle: Bundle, names: str) -> None:
    """`run` fails with exit 1, one stderr line naming the problem (pyrunc), and no state entry."""
    cid = new_id()
    bundle.set_args("true")
    code, _, err = rt.run_container(bundle, cid)
    assert code == 1, f"exit {code}, stderr: {err}"
    assert err.strip(), "no error message on stderr"
    assert cid not in rt.container_ids()
    if not rt.is_runc:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in err, err
        assert names in lines[0], f"the message does not name {names!r}: {lines[0]!r}"


def mask(*names: str) -> str:
    return f"{sum(1 << CAPS[n] for n in names):016x}"


# --- capabilities ---------------------------------------------------------------------------------

def test_capability_sets_of_root(rt: Runtime, bundle: Bundle) -> None:
    """config.md "Linux Process": capabilities "bounding", "effective", "inheritable", "permitted" and
    "ambient" are the process's sets (root: execve keeps permitted = bounding, effective = permitted)."""
    bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SYS_CHROOT"]
    inheritable = ["CAP_KILL", "CAP_NET_RAW"]
    bundle.config["process"]["capabilities"] = {
        "bounding": bounding, "effective": bounding, "permitted": bounding,
        "inheritable": inheritable, "ambient": inheritable,
    }
    status = status_fields(rt, bundle)
    assert status["CapBnd"] == mask(*bounding)
    assert status["CapPrm"] == mask(*bounding)
    assert status["CapEff"] == mask(*bounding)
    assert status["CapInh"] == mask(*inheritable)
    assert status["CapAmb"] == mask(*inheritable)


def test_ambient_capabilities_of_non_root_user(rt: Runtime, bundle: Bundle) -> None:
    """config.md "Linux Process": "ambient (array of strings, OPTIONAL) the ambient capabilities that are
    kept for the process": a non-root process keeps exactly its ambient set across execve."""
    bounding = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"]
    kept = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["capabilities"] = {
        "bounding": bounding, "effective": kept, "permitted": kept, "inheritable": kept, "ambient": kept,
    }
    status = status_fields(rt, bundle)
    assert status["Uid"].split()[0] == "1000"
    assert status["CapBnd"] == mask(*bounding)
    for field in ("CapPrm", "CapEff", "CapInh", "CapAmb"):
        assert status[field] == mask(*kept), field


def test_no_capabilities_for_non_root_without_ambient(rt: Runtime, bundle: Bundle) -> None:
    """A non-root process without ambient capabilities has empty permitted and effective sets."""
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    bundle.config["process"]["capabilities"] = {k: ["CAP_KILL"] for k in ("bounding", "effective", "permitted")}
    status = status_fields(rt, bundle)
    assert (status["CapPrm"], status["CapEff"], status["CapAmb"]) == ("0" * 16,) * 3
    assert status["CapBnd"] == mask("CAP_KILL")


def test_unknown_capability_is_an_error(rt: Runtime, bundle: Bundle, xfail_runc) -> None:
    """config.md "Linux Process": capabilities: "Any value which cannot be mapped to a relevant kernel
    interface MUST cause an error"."""
    xfail_runc('config.md "Linux Process": capabilities: "Any value which cannot be mapped to a relevant '
               'kernel interface MUST cause an error"; runc 1.1.5 only warns about an unknown capability and runs')
    bundle.config["process"]["capabilities"]["bounding"].append("CAP_NO_SUCH_THING")
    assert_refused(rt, bundle, "CAP_NO_SUCH_THING")


@pytest.mark.parametrize("enabled", [True, False])
def test_no_new_privileges(rt: Runtime, bundle: Bundle, enabled: bool) -> None:
    """config.md "Process": "noNewPrivileges (bool, OPTIONAL) setting noNewPrivileges to true prevents the
    process from gaining additional privileges"."""
    bundle.config["process"]["noNewPrivileges"] = enabled
    assert status_fields(rt, bundle)["NoNewPrivs"] == ("1" if enabled else "0")


# --- seccomp --------------------------------------------------------------------------------------

def _seccomp(bundle: Bundle, syscalls: list[dict], **extra) -> None:
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"], "syscalls": syscalls, **extra,
    }


def test_seccomp_errno_rule(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Seccomp": a rule's action applies to the named syscalls; "errnoRet (uint, OPTIONAL)
    - the errno return code to use" (1 = EPERM); the process runs in seccomp filter mode (2)."""
    _seccomp(bundle, [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}])
    out = run_ok(rt, bundle, "sh", "-c",
                 "grep '^Seccomp:' /proc/self/status; mkdir /dev/shm/blocked 2>&1; "
                 "test -d /dev/shm/blocked || echo absent; touch /dev/shm/file && echo touched")
    lines = out.splitlines()
    assert lines[0].split() == ["Seccomp:", "2"]
    assert "Operation not permitted" in lines[1], lines
    assert lines[2:] == ["absent", "touched"]


def test_seccomp_errno_without_errno_ret(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Seccomp": errnoRet: "If not specified then its default value is EPERM"."""
    _seccomp(bundle, [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}])
    out = run_ok(rt, bundle, "sh", "-c", "mkdir /dev/shm/blocked 2>&1; true")
    assert "Operation not permitted" in out


def test_seccomp_args_filter(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Seccomp": "args (array of objects, OPTIONAL) - the specific syscall in seccomp"
    with index, value and op: only kill(..., SIGUSR1) is refused, kill(..., 0) still works."""
    _seccomp(bundle, [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                       "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}]}])
    out = run_ok(rt, bundle, "sh", "-c",
                 'trap "" USR1; kill -USR1 $$ 2>/dev/null && echo usr1-sent; kill -0 $$ && echo zero-sent')
    assert out.splitlines() == ["zero-sent"]


def test_seccomp_errno_ret_value(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Seccomp": "errnoRet (uint, OPTIONAL) - the errno return code to use" (28 = ENOSPC)."""
    _seccomp(bundle, [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}])
    out = run_ok(rt, bundle, "sh", "-c", "mkdir /dev/shm/blocked 2>&1; true")
    assert "No space left on device" in out


def _x86_64_syscall_names() -> list[str]:
    import pyseccomp

    names = []
    for number in range(512):
        try:
            names.append(pyseccomp.resolve_syscall(pyseccomp.Arch.X86_64, number).decode())
        except (ValueError, OSError):
            continue
    return names


def test_seccomp_default_action_with_allowlist(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Seccomp": "defaultAction (string, REQUIRED) - the default action for seccomp" and
    "defaultErrnoRet (uint, OPTIONAL) - the errno return code to use": everything but mkdir/mkdirat is
    allowed by rules, so those two fail with defaultErrnoRet (28 = ENOSPC)."""
    allowed = [n for n in _x86_64_syscall_names() if n not in ("mkdir", "mkdirat")]
    assert "execve" in allowed and "mkdir" not in allowed
    _seccomp(bundle, [{"names": allowed, "action": "SCMP_ACT_ALLOW"}],
             defaultErrnoRet=28)
    bundle.config["linux"]["seccomp"]["defaultAction"] = "SCMP_ACT_ERRNO"
    out = run_ok(rt, bundle, "sh", "-c", "mkdir /dev/shm/blocked 2>&1; touch /dev/shm/f && echo touched")
    assert "No space left on device" in out
    assert out.splitlines()[-1] == "touched"


@pytest.mark.parametrize(("field", "value"), [("defaultAction", "SCMP_ACT_NO_SUCH"),
                                              ("architectures", ["SCMP_ARCH_NO_SUCH"])])
def test_seccomp_unknown_value_is_an_error(rt: Runtime, bundle: Bundle, field: str, value) -> None:
    """config-linux.md "Seccomp": actions and architectures are closed sets ("A valid list of constants
    as of libseccomp v2.5.0 is shown below"); anything else cannot be applied: create fails."""
    _seccomp(bundle, [])
    bundle.config["linux"]["seccomp"][field] = value
    assert_refused(rt, bundle, "NO_SUCH")


def test_seccomp_unknown_rule_action_is_an_error(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Seccomp": "action (string, REQUIRED) - the action for seccomp rules"."""
    _seccomp(bundle, [{"names": ["mkdir"], "action": "SCMP_ACT_NO_SUCH"}])
    assert_refused(rt, bundle, "SCMP_ACT_NO_SUCH")


def test_seccomp_errno_ret_with_other_action_is_an_error(rt: Runtime, bundle: Bundle, xfail_runc) -> None:
    """config-linux.md "Seccomp": errnoRet: "When the action doesn't support an errno, the runtime MUST
    print and error and fail"."""
    xfail_runc('config-linux.md "Seccomp": errnoRet: "When the action doesn\'t support an errno, the runtime '
               'MUST print and error and fail"; runc 1.1.5 ignores errnoRet on SCMP_ACT_KILL')
    _seccomp(bundle, [{"names": ["mkdir"], "action": "SCMP_ACT_KILL", "errnoRet": 1}])
    assert_refused(rt, bundle, "errnoRet")


# --- seccomp notify -------------------------------------------------------------------------------

SECCOMP_NOTIF_SIZE, SECCOMP_NOTIF_RESP_SIZE = 80, 24


def _iowr(nr: int, size: int) -> int:
    return (3 << 30) | (size << 16) | (ord("!") << 8) | nr


NOTIF_RECV, NOTIF_SEND = _iowr(0, SECCOMP_NOTIF_SIZE), _iowr(1, SECCOMP_NOTIF_RESP_SIZE)


class NotifyAgent:
    """The seccomp agent at listenerPath: receives the fd and the containerProcessState, then answers
    every notified syscall with success (return value 0) without running it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.server.settimeout(30)
        self.state: dict | None = None
        self.answered: list[int] = []  # syscall numbers
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
            with conn:
                fds = array.array("i")
                msg, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4 * fds.itemsize))
                for level, kind, data in ancdata:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
                self.state = json.loads(msg)
            assert len(fds) == 1, f"{len(fds)} fds received"
            self._answer(fds[0])
        except BaseException as e:  # reported by the test
            self.error = e

    def _answer(self, fd: int) -> None:
        try:
            while not self.stop.is_set():
                ready, _, _ = select.select([fd], [], [], 0.1)
                if not ready:
                    continue
                notif = bytearray(SECCOMP_NOTIF_SIZE)
                try:
                    fcntl.ioctl(fd, NOTIF_RECV, notif)
                except OSError:  # the filter's last user exited, or the target was killed
                    if self.stop.wait(0.05):
                        return
                    continue
                notif_id, _pid, _flags, nr = struct.unpack_from("=QIIi", notif)
                self.answered.append(nr)
                fcntl.ioctl(fd, NOTIF_SEND, bytearray(struct.pack("=QqiI", notif_id, 0, 0, 0)))
        finally:
            os.close(fd)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def notify_agent(tmp_path: Path) -> Iterator[NotifyAgent]:
    agent = NotifyAgent(tmp_path / "agent.sock")
    yield agent
    agent.close()


def test_seccomp_notify(rt: Runtime, bundle: Bundle, notify_agent: NotifyAgent) -> None:
    """config-linux.md "Seccomp": with SCMP_ACT_NOTIFY "listenerPath ... the runtime sends the seccomp
    file descriptor ... along with the container process state" (containerProcessState with fds
    ["seccompFd"], the state, and listenerMetadata); the agent then answers the syscall: mkdir
    "succeeds" without creating anything."""
    _seccomp(bundle, [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
             listenerPath=str(notify_agent.path), listenerMetadata="spec-test")
    out = run_ok(rt, bundle, "sh", "-c",
                 "mkdir /dev/shm/answered && echo mkdir-ok; test -d /dev/shm/answered || echo absent")
    assert notify_agent.error is None, repr(notify_agent.error)
    assert out.splitlines() == ["mkdir-ok", "absent"]
    assert notify_agent.answered, "no syscall was notified"
    state = notify_agent.state
    assert state is not None
    assert state["fds"] == ["seccompFd"]
    assert state["metadata"] == "spec-test"
    assert state["pid"] > 0 and state["state"]["pid"] == state["pid"]
    assert state["state"]["bundle"] == str(bundle.path)


# --- rlimits, oom_score_adj -----------------------------------------------------------------------

def test_rlimits(rt: Runtime, bundle: Bundle) -> None:
    """config.md "POSIX process": rlimits "soft ... rlim.rlim_cur MUST match the configured value",
    "hard ... rlim.rlim_max MUST match the configured value" (below this host's hard limits)."""
    bundle.config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 4096},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
    ]
    limits = {}
    for line in run_ok(rt, bundle, "cat", "/proc/self/limits").splitlines()[1:]:
        parts = line[26:].split()
        limits[line[:26].strip()] = parts[:2]
    assert limits["Max open files"] == ["512", "1000"]
    assert limits["Max core file size"] == ["0", "4096"]
    assert limits["Max processes"] == ["300", "400"]


def test_unknown_rlimit_is_an_error(rt: Runtime, bundle: Bundle) -> None:
    """config.md "POSIX process": rlimits type: "The runtime MUST generate an error for any values which
    cannot be mapped to a relevant kernel interface"."""
    bundle.config["process"]["rlimits"].append({"type": "RLIMIT_NO_SUCH", "soft": 1, "hard": 1})
    assert_refused(rt, bundle, "RLIMIT_NO_SUCH")


def test_rlimit_above_the_runtime_hard_limit_is_an_error(rt: Runtime, bundle: Bundle) -> None:
    """config.md "POSIX process": "rlim.rlim_max MUST match the configured value": raising the hard limit
    needs CAP_SYS_RESOURCE, which this host's bounding set lacks, so the runtime cannot comply and fails."""
    import resource

    host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if host_hard == resource.RLIM_INFINITY or _holds_cap_sys_resource():
        pytest.skip("the runtime may raise RLIMIT_NOFILE here")
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": host_hard + 1}]
    assert_refused(rt, bundle, "RLIMIT_NOFILE")


def _holds_cap_sys_resource() -> bool:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("CapEff:"))
    return bool(int(line.split()[1], 16) >> 24 & 1)


def test_oom_score_adj(rt: Runtime, bundle: Bundle) -> None:
    """config.md "Linux Process": "oomScoreAdj (int, OPTIONAL) adjusts the oom-killer score in
    [pid]/oom_score_adj for the process's [pid] in a proc pseudo-filesystem"."""
    bundle.config["process"]["oomScoreAdj"] = 500
    assert run_ok(rt, bundle, "cat", "/proc/self/oom_score_adj").strip() == "500"


# --- sysctl ---------------------------------------------------------------------------------------

def test_namespaced_sysctls(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Sysctl": "sysctl (object, OPTIONAL) allows kernel parameters to be modified at
    runtime for the container": set in the container's ipc and network namespaces, not on the host."""
    host_shmmni = Path("/proc/sys/kernel/shmmni").read_text()
    host_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    wanted_forward = "0" if host_forward.strip() == "1" else "1"
    bundle.config["linux"]["sysctl"] = {"kernel.shmmni": "2048", "net.ipv4.ip_forward": wanted_forward}
    out = run_ok(rt, bundle, "cat", "/proc/sys/kernel/shmmni", "/proc/sys/net/ipv4/ip_forward")
    assert out.split() == ["2048", wanted_forward]
    assert Path("/proc/sys/kernel/shmmni").read_text() == host_shmmni
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_forward


def test_non_namespaced_sysctl_is_an_error(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Sysctl": a host-wide kernel parameter (kernel.panic) cannot be set for the
    container alone: the runtime refuses it and the host value stays."""
    host_panic = Path("/proc/sys/kernel/panic").read_text()
    bundle.config["linux"]["sysctl"] = {"kernel.panic": "7"}
    assert_refused(rt, bundle, "kernel.panic")
    assert Path("/proc/sys/kernel/panic").read_text() == host_panic


def test_sysctl_without_its_namespace_is_an_error(rt: Runtime, bundle: Bundle) -> None:
    """A namespaced sysctl whose namespace the container shares with the host would change the host."""
    host_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    bundle.config["linux"]["namespaces"] = [ns for ns in bundle.config["linux"]["namespaces"]
                                            if ns["type"] != "network"]
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "0" if host_forward.strip() == "1" else "1"}
    assert_refused(rt, bundle, "net.ipv4.ip_forward")
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_forward
