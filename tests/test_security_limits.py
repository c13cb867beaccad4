"""rlimits, sysctls, process attributes (personality, scheduler, ioprio, affinity, oom) and LSM checks."""

from __future__ import annotations

import os
import resource
import subprocess

import pytest
from test_security_helpers import BUSYBOX, CHILD_FAILED, run_child

from pyrunc import syscalls
from pyrunc.errors import SecurityError
from pyrunc.security import lsm, process_attrs, rlimits, sysctl

UNLIMITED = 2**64 - 1


def limits_table(text: str) -> dict[str, tuple[str, str]]:
    """/proc/PID/limits → {"Max open files": ("1000", "1000"), ...}."""
    table = {}
    for line in text.splitlines()[1:]:
        name, soft, hard = line[:26].strip(), *line[26:].split()[:2]
        table[name] = (soft, hard)
    return table


def test_every_rlimit_name() -> None:
    assert len(rlimits.NAMES) == 16
    rlimits.check_rlimits([{"type": name, "soft": 1, "hard": 2} for name in rlimits.NAMES])


@pytest.mark.parametrize(("entry", "message"), [
    ({"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}, "unknown rlimit 'RLIMIT_BOGUS' in process.rlimits[0]"),
    ({"type": "RLIMIT_CORE", "soft": 2, "hard": 1}, "RLIMIT_CORE: soft limit 2 is above the hard limit 1"),
])
def test_bad_rlimits(entry: dict, message: str) -> None:
    with pytest.raises(SecurityError) as raised:
        rlimits.check_rlimits([entry])
    assert str(raised.value) == message


def test_rlimits_applied_in_the_process() -> None:
    wanted = [
        {"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": UNLIMITED},
        {"type": "RLIMIT_FSIZE", "soft": 2**30, "hard": 2**31},
    ]
    result = run_child(lambda: rlimits.apply_rlimits(wanted), ["busybox", "cat", "/proc/self/limits"])
    assert result.status == 0, result.err
    table = limits_table(result.out)
    assert table["Max open files"] == ("512", "1000")
    assert table["Max core file size"] == ("0", "unlimited")
    assert table["Max file size"] == (str(2**30), str(2**31))


def test_rlimits_applied_by_pid_from_the_runtime() -> None:
    with subprocess.Popen([BUSYBOX, "sh", "-c", "read x; cat /proc/self/limits"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True) as child:
        rlimits.apply_rlimits([{"type": "RLIMIT_MSGQUEUE", "soft": 4096, "hard": 8192}], pid=child.pid)
        out, _ = child.communicate("go\n", timeout=10)
    assert limits_table(out)["Max msgqueue size"] == ("4096", "8192")


def test_raising_the_hard_limit_without_cap_sys_resource_is_one_clear_line() -> None:
    _, held, _ = syscalls.capget()
    if held >> 24 & 1:
        pytest.skip("this host grants CAP_SYS_RESOURCE")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    wanted = [{"type": "RLIMIT_NOFILE", "soft": hard + 1, "hard": hard + 1}]
    result = run_child(lambda: rlimits.apply_rlimits(wanted))
    assert result.status == CHILD_FAILED
    assert result.err.splitlines()[0] == (
        f"SecurityError: cannot set RLIMIT_NOFILE to soft {hard + 1}, hard {hard + 1}: Operation not permitted "
        f"(the hard limit is {hard}; raising it needs CAP_SYS_RESOURCE)"
    )


@pytest.mark.parametrize(("key", "namespaces", "message"), [
    ("kernel.panic", {"ipc", "network", "uts"}, "sysctl 'kernel.panic' is not in a separate kernel namespace"),
    ("vm.swappiness", {"ipc", "network", "uts"}, "sysctl 'vm.swappiness' is not in a separate kernel namespace"),
    ("net.ipv4.ip_forward", {"ipc"}, "sysctl 'net.ipv4.ip_forward' needs the container's own network namespace"),
    ("kernel.shmmax", {"network"}, "sysctl 'kernel.shmmax' needs the container's own ipc namespace"),
    ("fs.mqueue.queues_max", set(), "sysctl 'fs.mqueue.queues_max' needs the container's own ipc namespace"),
    ("kernel.domainname", {"ipc"}, "sysctl 'kernel.domainname' needs the container's own uts namespace"),
    ("net/../kernel/panic", {"network"}, "sysctl 'net/../kernel/panic' is not a valid key"),
])
def test_refused_sysctls(key: str, namespaces: set[str], message: str) -> None:
    with pytest.raises(SecurityError) as raised:
        sysctl.check_sysctls({key: "1"}, namespaces)
    assert str(raised.value) == message


def test_namespaced_sysctls_are_accepted() -> None:
    sysctl.check_sysctls({"kernel.shmmax": "1", "fs.mqueue.msg_max": "1", "net.ipv4.ip_forward": "1",
                          "net/ipv4/conf/eth0.1/forwarding": "1", "kernel.hostname": "x"}, {"ipc", "network", "uts"})
    assert sysctl.key_path("net/ipv4/conf/eth0.1/forwarding") == "net/ipv4/conf/eth0.1/forwarding"
    assert sysctl.key_path("kernel.shm_rmid_forced") == "kernel/shm_rmid_forced"


def read_sysctl(key: str) -> str:
    with open("/proc/sys/" + sysctl.key_path(key)) as f:
        return f.read()


def test_sysctls_written_inside_namespaces_only() -> None:
    values = {"kernel.shmmni": "1234", "net/ipv4/ip_forward": "1", "kernel.domainname": "pyrunc.test"}
    host = {key: read_sysctl(key) for key in values}

    def step() -> dict:
        syscalls.unshare(syscalls.CLONE_NEWIPC | syscalls.CLONE_NEWNET | syscalls.CLONE_NEWUTS)
        sysctl.apply_sysctls(values)
        return {key: read_sysctl(key).strip() for key in values}

    assert run_child(step).json() == values
    assert {key: read_sysctl(key) for key in values} == host


def test_sysctl_write_error_names_the_key() -> None:
    def step() -> None:
        syscalls.unshare(syscalls.CLONE_NEWIPC)
        sysctl.apply_sysctls({"kernel.shmmni": "not-a-number"})

    result = run_child(step)
    assert result.status == CHILD_FAILED
    assert "SecurityError: cannot set sysctl kernel.shmmni to 'not-a-number': /proc/sys/kernel/shmmni: " \
           "Invalid argument\n" in result.err


def test_personality_linux32() -> None:
    result = run_child(lambda: process_attrs.apply_personality({"domain": "LINUX32"}),
                       ["busybox", "cat", "/proc/self/personality"])
    assert (result.status, result.out) == (0, "00000008\n")


def test_scheduler_batch_with_nice() -> None:
    def step() -> list[int]:
        process_attrs.apply_scheduler({"policy": "SCHED_BATCH", "nice": 7, "flags": ["SCHED_FLAG_RESET_ON_FORK"]})
        return [os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)]

    assert run_child(step).json() == [os.SCHED_BATCH | os.SCHED_RESET_ON_FORK, 7]


def test_scheduler_the_kernel_refuses() -> None:
    result = run_child(lambda: process_attrs.apply_scheduler({"policy": "SCHED_ISO"}))
    assert result.status == CHILD_FAILED
    assert "SecurityError: cannot set scheduler policy SCHED_ISO: Invalid argument\n" in result.err


def test_io_priority() -> None:
    result = run_child(lambda: process_attrs.apply_io_priority({"class": "IOPRIO_CLASS_BE", "priority": 6}),
                       ["busybox", "sh", "-c", "exec /usr/bin/ionice -p $$"])
    assert (result.status, result.out) == (0, "best-effort: prio 6\n")


def test_cpu_affinity() -> None:
    assert process_attrs.parse_cpu_list("0-3,7") == {0, 1, 2, 3, 7}
    assert process_attrs.parse_cpu_list("5") == {5}
    for bad in ("", "3-1", "a", "1,,2", "-1", "0-"):
        with pytest.raises(SecurityError, match="invalid CPU list"):
            process_attrs.parse_cpu_list(bad)

    def step() -> list[int]:
        process_attrs.apply_cpu_affinity("0")
        return sorted(os.sched_getaffinity(0))

    assert run_child(step).json() == [0]


def test_oom_score_adj() -> None:
    def step() -> str:
        process_attrs.apply_oom_score_adj(500)
        with open(f"/proc/{os.getpid()}/oom_score_adj") as f:
            return f.read().strip()

    assert run_child(step).json() == "500"


def test_lowering_oom_score_adj_without_cap_sys_resource() -> None:
    _, held, _ = syscalls.capget()
    if held >> 24 & 1:
        pytest.skip("this host grants CAP_SYS_RESOURCE")
    result = run_child(lambda: process_attrs.apply_oom_score_adj(-1000))
    assert result.status == CHILD_FAILED
    assert "SecurityError: cannot set oomScoreAdj to -1000: Permission denied (lowering it needs CAP_SYS_RESOURCE)\n" \
           in result.err


@pytest.mark.parametrize(("process", "linux", "message"), [
    ({}, {"personality": {"domain": "LINUX64"}}, "unknown personality domain 'LINUX64' in linux.personality"),
    ({}, {"personality": {"domain": "LINUX", "flags": ["X"]}}, "linux.personality.flags ['X'] are not supported"),
    ({"scheduler": {"policy": "SCHED_FAST"}}, {}, "unknown scheduler policy 'SCHED_FAST' in process.scheduler"),
    ({"scheduler": {"policy": "SCHED_RR", "flags": ["SCHED_FLAG_X"]}}, {},
     "unknown scheduler flag 'SCHED_FLAG_X' in process.scheduler.flags"),
    ({"ioPriority": {"class": "IOPRIO_CLASS_X"}}, {},
     "unknown I/O priority class 'IOPRIO_CLASS_X' in process.ioPriority"),
    ({"ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 8}}, {},
     "process.ioPriority.priority 8 is not between 0 and 7"),
    ({"execCPUAffinity": {"final": "0-"}}, {}, "invalid CPU list '0-' in process.execCPUAffinity"),
])
def test_bad_process_attributes(process: dict, linux: dict, message: str) -> None:
    with pytest.raises(SecurityError) as raised:
        process_attrs.check(process, linux)
    assert str(raised.value) == message


def test_good_process_attributes() -> None:
    process_attrs.check(
        {"scheduler": {"policy": "SCHED_DEADLINE", "runtime": 1, "deadline": 2, "period": 3},
         "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0},
         "execCPUAffinity": {"initial": "0", "final": "0-1"}},
        {"personality": {"domain": "LINUX"}},
    )


@pytest.mark.parametrize(("process", "linux", "message"), [
    ({"apparmorProfile": "docker-default"}, {},
     "process.apparmorProfile 'docker-default' is set but AppArmor is not enabled on this host"),
    ({"selinuxLabel": "system_u:system_r:container_t:s0"}, {},
     "selinux label is specified in config, but selinux is disabled or not supported"),
    ({}, {"mountLabel": "system_u:object_r:container_file_t:s0"},
     "linux.mountLabel is specified in config, but selinux is disabled or not supported"),
])
def test_lsm_fields_refused_without_the_lsm(process: dict, linux: dict, message: str) -> None:
    if lsm.apparmor_enabled() or lsm.selinux_enabled():
        pytest.skip("this host runs an LSM")
    with pytest.raises(SecurityError) as raised:
        lsm.check(process, linux)
    assert str(raised.value) == message
    lsm.check({}, {})
