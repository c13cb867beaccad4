"""cgroups on this machine's real hierarchies, under a parent named pyrunc-cgtest-<pid> that the tests
create on every hierarchy and remove at the end (processes we put there killed first), even on failure.

Mode-agnostic unless marked: they run on v1/hybrid (this host) and on pure v2 (`make test-cgroup2`).
"""

from __future__ import annotations

import os
import select
import signal
import time
import traceback
from collections.abc import Callable, Iterator

import pytest

from pyrunc.cgroups import bpf, fs, manager_for, paths
from pyrunc.cgroups.devices import WILDCARD, Rule, effective
from pyrunc.errors import CgroupError

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.isdir(paths.CGROUP_ROOT), reason="needs root")

PURE_V2 = paths.is_pure_v2()
needs_v1 = pytest.mark.skipif(PURE_V2, reason="cgroup v1 files")
needs_hybrid_unified = pytest.mark.skipif(
    PURE_V2 or not os.path.exists("/sys/fs/cgroup/unified/cgroup.procs"), reason="a hybrid cgroup2 mount")
PARENT = f"pyrunc-cgtest-{os.getpid()}"
MiB = 1 << 20


def hierarchy_roots() -> list[str]:
    if PURE_V2:
        return [paths.CGROUP_ROOT]
    v1, v2 = paths.parse_mountinfo(paths.read_text("/proc/self/mountinfo"))
    return sorted({m.mountpoint for m in v1.values()} | ({v2.mountpoint} if v2 else set()))


def sweep(top: str) -> None:
    """Kill what we put under `top` and rmdir it bottom-up (only our own test tree)."""
    for _ in range(100):
        if not os.path.isdir(top):
            return
        for directory, _, _ in os.walk(top, topdown=False):
            for pid in (fs.read_optional(os.path.join(directory, "cgroup.procs")) or "").split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    continue
            try:
                os.rmdir(directory)
            except OSError:
                continue
        time.sleep(0.02)
    raise AssertionError(f"could not remove the test cgroup {top}")


class Cgroups:
    """Makes managers under the test parent and forked children inside them; cleans everything."""

    def __init__(self) -> None:
        self.managers: list = []
        self.children: list[int] = []

    def manager(self, resources: dict | None = None, sub: str = "c1", **linux) -> object:
        config = {"linux": {"cgroupsPath": f"/{PARENT}/{sub}", "resources": resources or {}, **linux}}
        m = manager_for(config, sub)
        self.managers.append(m)
        return m

    def spawn(self, m, body: Callable[[], int]) -> int:
        """Fork a child that joins the cgroup(s) itself (like stage-1's join(0)), then runs body()."""
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 100
            try:
                os.close(ready_r)
                m.join(0)
                os.write(ready_w, b"j")
                os.close(ready_w)
                code = body()
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        self.children.append(pid)
        os.close(ready_w)
        joined = os.read(ready_r, 1)
        os.close(ready_r)
        assert joined == b"j", "the child could not join the cgroup"
        return pid

    def wait(self, pid: int, timeout: float = 20) -> int:
        """The child's wait status."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                self.children.remove(pid)
                return status
            time.sleep(0.005)
        raise AssertionError(f"child {pid} did not exit in {timeout}s")

    def cleanup(self) -> None:
        for pid in self.children:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except ChildProcessError:
                continue
        for m in reversed(self.managers):
            try:
                if m.is_frozen():
                    m.thaw()
                m.destroy()
            except CgroupError:
                continue
        for root in hierarchy_roots():
            sweep(os.path.join(root, PARENT))


@pytest.fixture
def cg() -> Iterator[Cgroups]:
    helper = Cgroups()
    try:
        yield helper
    finally:
        helper.cleanup()


def sleeper() -> int:
    time.sleep(60)
    return 0


def probe_devices() -> int:
    """Bit 0: writing /dev/kmsg (c 1:11) denied, bit 1: reading it denied, bit 2: /dev/null denied."""
    result = 0
    for bit, (path, flags) in enumerate((("/dev/kmsg", os.O_WRONLY), ("/dev/kmsg", os.O_RDONLY),
                                         ("/dev/null", os.O_RDWR))):
        try:
            os.close(os.open(path, flags))
        except PermissionError:
            result |= 1 << bit
    return result


def file_of(m, v1: tuple[str, str], v2: str) -> str:
    return os.path.join(m.path, v2) if PURE_V2 else os.path.join(m.paths[v1[0]], v1[1])


def read_of(m, v1: tuple[str, str], v2: str) -> str:
    return fs.read(file_of(m, v1, v2))


# -- placement, values, processes, removal -----------------------------------------------------------
def test_create_join_read_back_and_destroy_leaves_nothing(cg):
    m = cg.manager({"memory": {"limit": 64 * MiB}, "cpu": {"shares": 512, "quota": 20000, "period": 100000,
                                                           "cpus": "0"}, "pids": {"limit": 50}})
    m.create()
    assert m.created, "the test parent and the container cgroup were new"
    pid = cg.spawn(m, sleeper)
    assert m.pids() == [pid]
    for directory in m.dirs():
        assert str(pid) in fs.read(os.path.join(directory, "cgroup.procs")).split()
    assert read_of(m, ("memory", "memory.limit_in_bytes"), "memory.max") == str(64 * MiB)
    assert read_of(m, ("cpu", "cpu.shares"), "cpu.weight") == ("20" if PURE_V2 else "512")
    assert read_of(m, ("cpu", "cpu.cfs_quota_us"), "cpu.max") == ("20000 100000" if PURE_V2 else "20000")
    assert read_of(m, ("cpuset", "cpuset.cpus"), "cpuset.cpus") == "0"
    assert read_of(m, ("pids", "pids.max"), "pids.max") == "50"
    os.kill(pid, signal.SIGKILL)
    cg.wait(pid)
    created = list(m.created)
    m.destroy()
    assert [d for d in created if os.path.exists(d)] == []


def test_a_child_forked_into_the_cgroup_then_joining_is_in_every_hierarchy(cg):
    """fork_stage1 starts the child in the v2 directory (clone3 CLONE_INTO_CGROUP); its join(0) moves it
    into the rest (v1: through `tasks`) and skips the v2 write: /proc/self/cgroup names the container
    everywhere, and nothing else joined."""
    from pyrunc.process.clone import fork_stage1

    m = cg.manager({"pids": {"limit": 20}})
    m.create()
    report_r, report_w = os.pipe()
    pid, _ = fork_stage1(m)
    if pid == 0:
        code = 100
        try:
            os.close(report_r)
            m.join(0)
            with open("/proc/self/cgroup") as f:
                os.write(report_w, f"{int(m.born_in_v2)}\n{f.read()}".encode())
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    cg.children.append(pid)
    os.close(report_w)
    with os.fdopen(report_r) as report:
        born_in_v2, *lines = report.read().splitlines()
    assert os.waitstatus_to_exitcode(cg.wait(pid)) == 0
    assert born_in_v2 == ("1" if m.v2_dir() else "0")
    placed = {line.split(":", 2)[2] for line in lines if line.split(":", 2)[1] != "name=systemd" or not PURE_V2}
    assert all(path.endswith(f"/{PARENT}/c1") for path in placed), lines
    assert m.pids() == []


def test_a_child_born_in_new_namespaces_is_pid_1_there(tmp_path):
    """clone3 with namespace flags: the child is pid 1 of its new pid namespace, in new uts and net ones."""
    from pyrunc import syscalls
    from pyrunc.process.clone import fork_stage1

    report_r, report_w = os.pipe()
    flags = syscalls.CLONE_NEWPID | syscalls.CLONE_NEWUTS | syscalls.CLONE_NEWNET
    pid, born_in = fork_stage1(None, flags)
    if pid == 0:
        names = " ".join(os.readlink(f"/proc/self/ns/{ns}") for ns in ("uts", "net"))
        os.write(report_w, f"{os.getpid()} {names}".encode())
        os._exit(0)
    os.close(report_w)
    with os.fdopen(report_r) as report:
        inner_pid, *names = report.read().split()
    os.waitpid(pid, 0)
    assert born_in == flags
    assert inner_pid == "1"
    assert names != [os.readlink(f"/proc/self/ns/{ns}") for ns in ("uts", "net")]


def test_clone3_into_a_directory_that_is_no_cgroup_fails_and_forks_nothing(tmp_path):
    from pyrunc import syscalls

    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError, match="clone3"):
            if syscalls.clone3_fork(0, fd) == 0:
                os._exit(0)  # only if the kernel accepted it, which the assertion then reports
    finally:
        os.close(fd)


def test_a_pre_existing_cgroup_is_joined_and_left_in_place(cg):
    owner = cg.manager(sub="shared")
    owner.create()
    sharer = cg.manager(sub="shared")
    sharer.create()
    assert sharer.created == []
    sharer.destroy()
    assert all(os.path.isdir(d) for d in owner.dirs())
    owner.destroy()
    assert not any(os.path.isdir(d) for d in owner.dirs())


def test_relative_and_absent_paths_are_placed_under_our_own_cgroup():
    own = paths.parse_proc_cgroup(paths.read_text("/proc/self/cgroup"))
    m = manager_for({}, "ctr-id")
    if PURE_V2:
        assert m.path == os.path.normpath(f"{paths.CGROUP_ROOT}{os.path.dirname(own['']) or '/'}/ctr-id")
    else:
        v1, _ = paths.parse_mountinfo(paths.read_text("/proc/self/mountinfo"))
        for controller, directory in m.paths.items():
            assert directory == os.path.normpath(f"{v1[controller].mountpoint}{own[controller]}/ctr-id")
    assert m.created == []


def test_bad_values_fail_with_one_line_and_leave_nothing(cg):
    for resources, message in (({"cpu": {"cpus": "0-4095"}}, "which this host does not have"),
                               ({"memory": {"limit": -5}}, r"memory\.limit: -5")):
        m = cg.manager(resources, sub="bad")
        with pytest.raises(CgroupError, match=message) as caught:
            m.create()
        assert "\n" not in str(caught.value)
        assert not any(os.path.exists(d) for d in m.dirs())
        assert not any(os.path.exists(os.path.join(root, PARENT)) for root in hierarchy_roots())


@pytest.mark.skipif(not PURE_V2 and not os.path.exists("/sys/fs/cgroup/unified/cgroup.procs"), reason="no cgroup2")
def test_unified_keys_are_written_to_the_v2_cgroup_and_unknown_ones_refused(cg):
    m = cg.manager({"unified": {"cgroup.max.descendants": "5"}})
    m.create()
    assert fs.read(os.path.join(m.path if PURE_V2 else m.unified, "cgroup.max.descendants")) == "5"
    bad = cg.manager({"unified": {"cgroup.no_such_file": "1"}}, sub="bad")
    with pytest.raises(CgroupError, match=r"cgroup\.no_such_file: not supported"):
        bad.create()
    assert not any(os.path.exists(d) for d in bad.dirs())


# -- limits that bite -------------------------------------------------------------------------------
def test_memory_limit_oom_kills_an_allocating_child_and_is_reported(cg):
    m = cg.manager({"memory": {"limit": 32 * MiB, "swap": 32 * MiB}})
    m.create()
    watcher = m.oom_watcher()
    try:
        pid = cg.spawn(m, lambda: len(b"x" * (256 * MiB)) and 0)
        status = cg.wait(pid)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, f"status {status:#x}"
        assert watcher.wait(5), "no OOM notification"
    finally:
        watcher.close()
    stats = m.stats()
    assert stats["memory"]["usage"]["limit"] == 32 * MiB
    usage = stats["memory"]["usage"]
    assert usage["max"] == 32 * MiB or usage["failcnt"] > 0  # peak at the limit (v1 failcnt stays 0 on 6.x)


def test_pids_limit_refuses_a_fork(cg):
    m = cg.manager({"pids": {"limit": 1}})
    m.create()

    def try_fork() -> int:
        try:
            child = os.fork()
        except BlockingIOError:
            return 0  # EAGAIN: refused, as expected
        if child == 0:
            os._exit(0)
        return 1

    assert os.waitstatus_to_exitcode(cg.wait(cg.spawn(m, try_fork))) == 0


def test_freeze_stops_a_running_child_and_thaw_resumes_it(cg):
    m = cg.manager()
    m.create()
    ticks_r, ticks_w = os.pipe()

    def ticker() -> int:
        os.close(ticks_r)
        while True:
            os.write(ticks_w, b".")
            time.sleep(0.005)

    cg.spawn(m, ticker)
    os.close(ticks_w)

    def ticks_within(seconds: float) -> int:
        count, deadline = 0, time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if select.select([ticks_r], [], [], left)[0]:
                count += len(os.read(ticks_r, 4096))
        return count

    assert ticks_within(0.1) > 0
    m.freeze()
    assert m.is_frozen()
    if not PURE_V2:
        assert fs.read(os.path.join(m.paths["freezer"], "freezer.state")) == "FROZEN"
    ticks_within(0.02)  # a tick written just before the freeze
    assert ticks_within(0.2) == 0
    m.thaw()
    assert not m.is_frozen()
    assert ticks_within(0.2) > 0
    os.close(ticks_r)


def test_device_rules_allow_and_deny_opening(cg):
    """/dev/kmsg (c 1:11) only for writing, /dev/null through the default list; on v2 via the BPF program."""
    m = cg.manager({"devices": [{"allow": False, "access": "rwm"},
                                {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}]})
    m.create()

    assert os.waitstatus_to_exitcode(cg.wait(cg.spawn(m, probe_devices))) == 0b010  # only reading kmsg denied
    m.update({"devices": [{"allow": True, "access": "rwm"}]})
    assert os.waitstatus_to_exitcode(cg.wait(cg.spawn(m, probe_devices))) == 0
    m.update({"devices": [{"allow": False, "access": "rwm"}]})
    assert os.waitstatus_to_exitcode(cg.wait(cg.spawn(m, probe_devices))) == 0b011


def test_update_changes_a_running_child_and_check_before_update_refuses(cg):
    m = cg.manager({"memory": {"limit": 256 * MiB}, "pids": {"limit": 10}})
    m.create()
    ready_r, ready_w = os.pipe()

    def hold_memory() -> int:
        held = b"x" * (24 * MiB)
        os.write(ready_w, b"r")
        time.sleep(60)
        return len(held) and 0

    cg.spawn(m, hold_memory)
    assert os.read(ready_r, 1) == b"r"
    m.update({"memory": {"limit": 128 * MiB}, "pids": {"limit": 20}})
    assert read_of(m, ("memory", "memory.limit_in_bytes"), "memory.max") == str(128 * MiB)
    assert read_of(m, ("pids", "pids.max"), "pids.max") == "20"
    with pytest.raises(CgroupError, match="below the current usage"):
        m.update({"memory": {"limit": 4 * MiB, "checkBeforeUpdate": True}})
    assert read_of(m, ("memory", "memory.limit_in_bytes"), "memory.max") == str(128 * MiB)
    os.close(ready_r)
    os.close(ready_w)


def test_signal_all_reaches_grandchildren(cg):
    m = cg.manager()
    m.create()

    def parent_of_one() -> int:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        time.sleep(60)
        return 0

    pid = cg.spawn(m, parent_of_one)
    deadline = time.monotonic() + 5
    while len(m.pids()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(m.pids()) == 2
    m.signal_all(signal.SIGKILL)
    assert os.WTERMSIG(cg.wait(pid)) == signal.SIGKILL
    while m.pids() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert m.pids() == []
    assert not m.is_frozen()


def test_stats_report_usage(cg):
    m = cg.manager({"pids": {"limit": 5}})
    m.create()

    def busy() -> int:
        end = time.monotonic() + 0.05
        while time.monotonic() < end:
            pass
        time.sleep(60)
        return 0

    cg.spawn(m, busy)
    time.sleep(0.1)
    stats = m.stats()
    assert stats["cpu"]["usage"]["total"] > 10_000_000  # ns
    assert stats["pids"] == {"current": 1, "limit": 5}
    assert stats["memory"]["usage"]["usage"] > 0


# -- the eBPF device filter on this host's hybrid cgroup2 mount -------------------------------------
@needs_hybrid_unified
def test_bpf_device_program_filters_opens_in_a_cgroup2_and_is_replaced_on_update(cg):
    directory = os.path.join("/sys/fs/cgroup/unified", PARENT, "bpf")
    os.makedirs(directory)
    allow_all = Rule(True, "a", WILDCARD, WILDCARD, "rwm")
    bpf.install(directory, True, [Rule(False, "c", 1, 3, "rwm")])  # allow by default, deny /dev/null

    def probe() -> int:
        fs.write(os.path.join(directory, "cgroup.procs"), "0")
        result = 0
        for bit, path in enumerate(("/dev/null", "/dev/zero")):
            try:
                os.close(os.open(path, os.O_RDONLY))
            except PermissionError:
                result |= 1 << bit
        return result

    def run_probe() -> int:
        pid = os.fork()
        if pid == 0:
            code = 100
            try:
                code = probe()
            finally:
                os._exit(code)
        cg.children.append(pid)
        return os.waitstatus_to_exitcode(cg.wait(pid))

    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert len(bpf.attached_ids(fd, directory)) == 1
        assert run_probe() == 0b01  # /dev/null denied, /dev/zero allowed
        bpf.install(directory, *effective([allow_all]))
        assert len(bpf.attached_ids(fd, directory)) == 1, "the previous program was not detached"
        assert run_probe() == 0
    finally:
        os.close(fd)


@needs_v1
def test_v1_devices_list_is_the_rule_list(cg):
    m = cg.manager({"devices": [{"allow": False, "access": "rwm"}]},
                   devices=[{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}])
    m.create()
    listed = fs.read(os.path.join(m.paths["devices"], "devices.list")).splitlines()
    assert listed == ["c 10:229 rwm", "c *:* m", "b *:* m", "c 1:3 rwm", "c 1:8 rwm", "c 1:7 rwm", "c 5:0 rwm",
                      "c 1:5 rwm", "c 1:9 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm"]


def test_a_file_the_host_lacks_is_an_error_naming_it(cg):
    m = cg.manager({"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]})
    with pytest.raises(CgroupError, match=r"hugetlb\.3MB\.(limit_in_bytes|max)"):
        m.create()
    assert not any(os.path.exists(d) for d in m.dirs())


@needs_hybrid_unified
def test_v2_manager_on_the_hybrid_cgroup2_mount(cg):
    """Join, BPF devices, cgroup.freeze, cgroup.kill and removal of the v2 manager on a real cgroup2.

    The directories are made by the test: create() would enable controllers in the host's root
    subtree_control, which on this host belongs to the machine (the pure-v2 VM covers create())."""
    from pyrunc.cgroups.devices import container_rules
    from pyrunc.cgroups.v2 import V2Manager

    root = "/sys/fs/cgroup/unified"
    parent, leaf = os.path.join(root, PARENT), os.path.join(root, PARENT, "v2")
    os.makedirs(leaf)
    m = V2Manager(leaf, root=root, created=[parent, leaf])
    cg.managers.append(m)
    m.device_rules = container_rules({"linux": {"resources": {"devices": [
        {"allow": False, "access": "rwm"}, {"allow": True, "type": "c", "major": 1, "minor": 11, "access": "w"}]}}})
    m.apply_devices()

    assert os.waitstatus_to_exitcode(cg.wait(cg.spawn(m, probe_devices))) == 0b010
    pid = cg.spawn(m, sleeper)
    assert m.pids() == [pid]
    m.freeze()
    assert m.is_frozen()
    assert "frozen 1" in fs.read(os.path.join(leaf, "cgroup.events")).splitlines()
    m.thaw()
    assert not m.is_frozen()
    m.signal_all(signal.SIGKILL)  # through cgroup.kill
    assert os.WTERMSIG(cg.wait(pid)) == signal.SIGKILL
    m.destroy()
    assert not os.path.exists(parent)
