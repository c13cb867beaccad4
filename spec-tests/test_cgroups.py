"""cgroups (config-linux.md "Control groups", "Device allowlist", memory/cpu/pids/blockIO, "Unified"),
read back from the container's own cgroup found through /proc/<pid>/cgroup, on v1 (or hybrid) and pure v2.

The same tests run on this host (v1) and in the cgroup v2 VM (`scripts/cgroup2-vm/run.py`): each value is
checked in the file the host's cgroup version uses.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import CGROUP_MOUNT, CGROUP_PARENT, Bundle, Runtime, new_id, process_gone

pytestmark = pytest.mark.cgroup

V2 = (CGROUP_MOUNT / "cgroup.controllers").exists()
MIB = 1 << 20


def _cgroup_mounts() -> dict[str, Path]:
    """Mount point of each v1 controller (and "" for a cgroup2 mount), from our mount table."""
    mounts: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        fstype, options = fields[sep + 1], fields[sep + 3].split(",")
        if fstype == "cgroup2":
            mounts.setdefault("", Path(fields[4]))
        elif fstype == "cgroup":
            for option in options:
                mounts.setdefault(option, Path(fields[4]))
    return mounts


class ContainerCgroup:
    """The cgroup directories of a process: one per v1 controller, or the single v2 one."""

    def __init__(self, pid: int) -> None:
        mounts = _cgroup_mounts()
        self.dirs: dict[str, Path] = {}
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                if controller in mounts:
                    self.dirs[controller] = mounts[controller] / path.lstrip("/")

    def path(self, file: str) -> Path:
        """`file` in the directory of its controller ("memory.max" → v2 dir, "memory.limit_in_bytes" → memory)."""
        return self.dirs["" if V2 else file.split(".", 1)[0]] / file

    def read(self, file: str) -> str | None:
        try:
            return self.path(file).read_text().strip()
        except (FileNotFoundError, KeyError):
            return None

    def keyed(self, file: str) -> dict[str, int]:
        """A "key value" lines file (memory.events, memory.oom_control) as a dict."""
        return {k: int(v) for k, _, v in (line.partition(" ") for line in (self.read(file) or "").splitlines())}


def started(rt: Runtime, bundle: Bundle, *args: str, cid: str | None = None) -> tuple[str, int]:
    """Create and start a container running args: (id, host pid of its init)."""
    cid = cid or new_id()
    bundle.set_args(*args)
    rt.create(cid, bundle)
    rt.start(cid)
    return cid, rt.state(cid)["pid"]


def created(rt: Runtime, bundle: Bundle, resources: dict) -> ContainerCgroup:
    """A created container (sleeping, not started) with the given linux.resources: its cgroup."""
    bundle.config["linux"]["resources"].update(resources)
    bundle.set_args("sleep", "1000")
    cid = new_id()
    rt.create(cid, bundle)
    return ContainerCgroup(rt.state(cid)["pid"])


def wait_until(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll `predicate`; generous by default: the cgroup v2 VM runs programs 12-45x slower than the host."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def files_of_new_cgroup(controller: str, *names: str) -> list[str]:
    """Those of `names` that a new cgroup gets in `controller`'s hierarchy (the root cgroup lacks many)."""
    probe = (CGROUP_MOUNT if V2 else _cgroup_mounts()[controller]) / f"{CGROUP_PARENT}-probe"
    probe.mkdir()
    try:
        return [n for n in names if (probe / n).exists()]
    finally:
        probe.rmdir()


def has_swap_accounting() -> bool:
    """v1 needs memsw files (swap accounting) for linux.resources.memory.swap; v2 has memory.swap.max."""
    return bool(files_of_new_cgroup("memory", "memory.swap.max" if V2 else "memory.memsw.limit_in_bytes"))


def shares_to_weight(shares: int) -> int:
    """The runtime-spec's (and runc's) cpu.shares → cpu.weight conversion for cgroup v2."""
    return 1 + ((shares - 2) * 9999) // 262142


def allow_caps(bundle: Bundle, *caps: str) -> None:
    for kind in ("bounding", "effective", "permitted"):
        bundle.config["process"]["capabilities"][kind] += list(caps)


# -- values read back ------------------------------------------------------------------------------

def test_memory_values(rt: Runtime, bundle: Bundle) -> None:
    """memory.limit, reservation and swap (memory+swap in the spec; swap alone in v2's memory.swap.max)."""
    memory = {"limit": 100 * MIB, "reservation": 50 * MIB}
    swap = has_swap_accounting()
    if swap:
        memory["swap"] = 300 * MIB
    cg = created(rt, bundle, {"memory": memory})
    if V2:
        assert (cg.read("memory.max"), cg.read("memory.low")) == (str(100 * MIB), str(50 * MIB))
        if swap:
            assert cg.read("memory.swap.max") == str(200 * MIB)
    else:
        assert cg.read("memory.limit_in_bytes") == str(100 * MIB)
        assert cg.read("memory.soft_limit_in_bytes") == str(50 * MIB)
        if swap:
            assert cg.read("memory.memsw.limit_in_bytes") == str(300 * MIB)


def test_cpu_values(rt: Runtime, bundle: Bundle) -> None:
    """cpu.shares, quota, period, cpus and mems (v2: cpu.weight converted from shares, cpu.max)."""
    cg = created(rt, bundle, {"cpu": {"shares": 512, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"}})
    if V2:
        assert cg.read("cpu.weight") == str(shares_to_weight(512))
        assert cg.read("cpu.max") == "20000 100000"
    else:
        assert cg.read("cpu.shares") == "512"
        assert (cg.read("cpu.cfs_quota_us"), cg.read("cpu.cfs_period_us")) == ("20000", "100000")
    assert (cg.read("cpuset.cpus"), cg.read("cpuset.mems")) == ("0", "0")


@pytest.mark.parametrize(("limit", "expected"), [(42, "42"), (-1, "max")])
def test_pids_limit_value(rt: Runtime, bundle: Bundle, limit: int, expected: str) -> None:
    """pids.limit; -1 means unlimited ("max")."""
    assert created(rt, bundle, {"pids": {"limit": limit}}).read("pids.max") == expected


def io_weight_files() -> list[str]:
    """The I/O weight files a cgroup below the root has here, preferred first ([]: no weight-based scheduler)."""
    names = ("io.bfq.weight", "io.weight") if V2 else ("blkio.weight", "blkio.bfq.weight")
    return files_of_new_cgroup("blkio", *names)


def expected_io_weight(file: str, weight: int) -> tuple[str, str]:
    """What `file` reads after blockIO.weight: the weight itself, or v2's io.weight conversion."""
    value = str(weight if "bfq" in file or not V2 else 1 + ((weight - 10) * 9999) // 990)
    return value, f"default {value}"


def test_blkio_weight_value(rt: Runtime, bundle: Bundle) -> None:
    """blockIO.weight: blkio.weight (or BFQ's) on v1, io.bfq.weight or the converted io.weight on v2."""
    files = io_weight_files()
    if not files:
        pytest.skip("no blkio.weight/io.weight on this host (no weight-based I/O scheduler)")
    cg = created(rt, bundle, {"blockIO": {"weight": 500}})
    assert cg.read(files[0]) in expected_io_weight(files[0], 500), f"{files[0]}: {cg.read(files[0])!r}"


@pytest.mark.skipif(V2, reason="devices.list is cgroup v1 (v2 filters devices with a BPF program)")
def test_devices_list(rt: Runtime, bundle: Bundle) -> None:
    """Device allowlist: deny everything, then the configured rules and the default devices, in that order."""
    cg = created(rt, bundle, {"devices": [{"allow": False, "access": "rwm"},
                                          {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"}]})
    lines = set((cg.read("devices.list") or "").splitlines())
    assert "a *:* rwm" not in lines
    assert {"c 10:229 rw", "c 1:3 rwm", "c 1:5 rwm", "c 136:* rwm"} <= lines, lines


def _open_results(rt: Runtime, bundle: Bundle, rule: dict) -> str:
    """Open /dev/fuse (10:229, not a default device) as created by linux.devices and as mknod'ed inside."""
    bundle.config["linux"]["devices"] = [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                                          "fileMode": 0o666}]
    bundle.config["linux"]["resources"]["devices"].append(rule)
    allow_caps(bundle, "CAP_MKNOD")
    bundle.set_args("sh", "-c", "(: </dev/fuse) 2>&1; (: >/dev/fuse) 2>&1; mknod /dev/fuse2 c 10 229 && "
                    "(: </dev/fuse2) 2>&1; echo done")
    code, out, err = rt.run_container(bundle)
    assert code == 0 and out.strip().endswith("done"), f"exit {code}: {out} {err}"
    return out


def test_denied_device_cannot_be_opened(rt: Runtime, bundle: Bundle) -> None:
    """A linux.resources.devices deny rule stops opening the device, for a linux.devices node and for a
    node mknod'ed inside (mknod itself stays allowed: runc's default rules allow "m" on every device)."""
    out = _open_results(rt, bundle, {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"})
    assert out.count("Operation not permitted") == 3, out


def test_allowed_device_can_be_opened(rt: Runtime, bundle: Bundle) -> None:
    """The control for the test above: with an allow rule, no open is refused by the device cgroup."""
    out = _open_results(rt, bundle, {"allow": True, "type": "c", "major": 10, "minor": 229, "access": "rw"})
    assert "Operation not permitted" not in out, out


@pytest.mark.skipif(not V2, reason="linux.resources.unified applies to cgroup v2")
def test_unified_values(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Unified": each key is written to the file of that name in the container's cgroup."""
    cg = created(rt, bundle, {"unified": {"memory.high": str(64 * MIB), "pids.max": "17"}})
    assert (cg.read("memory.high"), cg.read("pids.max")) == (str(64 * MIB), "17")


@pytest.mark.skipif(V2, reason="checks the v1 refusal")
def test_unified_key_of_v1_controller_is_refused(rt: Runtime, bundle: Bundle) -> None:
    """config-linux.md "Unified": the runtime MUST error when a key's controller is not available on v2."""
    bundle.config["linux"]["resources"]["unified"] = {"memory.max": str(64 * MIB)}
    cid = new_id()
    result = rt.create(cid, bundle, check=False)
    assert result.returncode == 1 and result.stderr.strip(), result
    assert cid not in rt.container_ids()


# -- limits enforced -------------------------------------------------------------------------------

ALLOCATE = 'x=$(head -c 200000000 /dev/zero | tr "\\0" x)'  # the shell holds 200 MB in a variable


def memory_limit(limit: int) -> dict:
    """A memory limit with no swap beyond it (so that the allocation cannot escape to swap)."""
    memory = {"limit": limit}
    if has_swap_accounting():
        memory["swap"] = limit
    return {"memory": memory}


def test_memory_limit_oom_kills(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """A process allocating past memory.limit is OOM-killed (SIGKILL: status 137) and the OOM is counted."""
    out = tmp_path / "out"
    out.mkdir()
    bundle.add_bind(out, "/out")
    bundle.config["linux"]["resources"].update(memory_limit(32 * MIB))
    _, pid = started(rt, bundle, "sh", "-c", f"sh -c '{ALLOCATE}'; echo $? >/out/status; sleep 1000")
    status = out / "status"
    # The file appears (the redirection) before echo writes into it: wait for a whole line.
    wait_until(lambda: status.exists() and status.read_text().endswith("\n"), what="the allocating shell to end")
    assert status.read_text().strip() == "137"
    cg = ContainerCgroup(pid)
    kills = cg.keyed("memory.events")["oom_kill"] if V2 else cg.keyed("memory.oom_control").get("oom_kill")
    assert kills is None or kills >= 1, kills


def test_pids_limit_refuses_fork(rt: Runtime, bundle: Bundle) -> None:
    """With pids.limit 8 the shell (1 pid) starts 7 background sleeps; the 8th fork fails with EAGAIN."""
    bundle.config["linux"]["resources"]["pids"] = {"limit": 8}
    bundle.set_args("sh", "-c", "n=0; while [ $n -lt 20 ]; do sleep 1000 & n=$((n+1)); echo started $n; done")
    code, out, err = rt.run_container(bundle)
    started_count = [line for line in out.splitlines() if line.startswith("started")]
    assert len(started_count) == 7, (out, err)
    assert code != 0 and ("can't fork" in err or "Resource temporarily unavailable" in err), (code, err)


# -- kill --all and delete -------------------------------------------------------------------------

def test_kill_all_reaches_every_process(rt: Runtime, bundle: Bundle) -> None:
    """`kill --all`: without its own pid namespace the container's background child survives its init's
    death, so only a signal to every process of the cgroup kills both."""
    bundle.config["linux"]["namespaces"] = [n for n in bundle.config["linux"]["namespaces"] if n["type"] != "pid"]
    cid, pid = started(rt, bundle, "sh", "-c", "sleep 1000 & exec sleep 1001")
    cg = ContainerCgroup(pid)
    procs = cg.path("cgroup.procs") if V2 else cg.dirs["pids"] / "cgroup.procs"
    wait_until(lambda: len(procs.read_text().split()) == 2, what="two processes in the cgroup")
    pids = [int(p) for p in procs.read_text().split()]
    rt("kill", "--all", cid, "KILL", check=True)
    for p in pids:
        assert process_gone(p), f"pid {p} survived kill --all"
    rt.wait_status(cid, "stopped")
    rt.delete(cid)


def _dirs_exist(cg: ContainerCgroup) -> list[Path]:
    return [d for d in cg.dirs.values() if d.exists()]


def test_delete_removes_every_cgroup(rt: Runtime, bundle: Bundle) -> None:
    """delete removes the container's cgroup in every hierarchy."""
    cid, pid = started(rt, bundle, "sleep", "1000")
    cg = ContainerCgroup(pid)
    assert all(CGROUP_PARENT in str(d) for d in cg.dirs.values()) and _dirs_exist(cg)
    rt.kill(cid)
    rt.wait_status(cid, "stopped")
    rt.delete(cid)
    assert _dirs_exist(cg) == []


def test_failed_create_leaves_no_cgroup(rt: Runtime, bundle: Bundle) -> None:
    """A create that fails (args[0] does not exist) leaves no cgroup behind, in any hierarchy."""
    bundle.set_args("/no/such/program")
    bundle.config["linux"]["resources"]["pids"] = {"limit": 10}
    cid = new_id()
    result = rt.create(cid, bundle, check=False)
    if result.returncode == 0:  # a runtime may find out only at start
        rt.start(cid, check=False)
        rt.delete(cid, force=True, check=False)
    assert cid not in rt.container_ids()
    left = [p for p in CGROUP_MOUNT.glob(f"**/{CGROUP_PARENT}/{cid}") if p.is_dir()]
    assert left == []


def _make_cgroup_everywhere(name: str) -> list[Path]:
    """mkdir /<test parent>/<name> in every hierarchy (a "pod" cgroup made by someone else)."""
    made = []
    hierarchies = [CGROUP_MOUNT] if V2 else sorted({*_cgroup_mounts().values()})
    for hierarchy in hierarchies:
        for directory in (hierarchy / CGROUP_PARENT, hierarchy / CGROUP_PARENT / name):
            if directory.is_dir():
                continue
            directory.mkdir()
            made.append(directory)
            if (directory / "cpuset.cpus").exists() and not V2:
                for file in ("cpuset.cpus", "cpuset.mems"):
                    (directory / file).write_text((directory.parent / file).read_text())
            if V2:
                controllers = (directory / "cgroup.controllers").read_text().split()
                if directory.name == CGROUP_PARENT:
                    (directory / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in controllers))
    return made


def test_pre_existing_cgroup_is_left_in_place(rt: Runtime, bundle: Bundle, xfail_runc) -> None:
    """A cgroupsPath that exists before create (e.g. a pod's) is joined, and delete leaves it in place."""
    xfail_runc("runc 1.1.5 removes the container's cgroup directories on delete even when it did not "
               "create them")
    name = "pod-" + new_id()
    made = _make_cgroup_everywhere(name)
    try:
        bundle.config["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{name}"
        cid, pid = started(rt, bundle, "sleep", "1000")
        dirs = list(ContainerCgroup(pid).dirs.values())
        assert all(d.name == name for d in dirs)
        rt.kill(cid)
        rt.wait_status(cid, "stopped")
        rt.delete(cid)
        gone = [d for d in dirs if not d.exists()]
        assert gone == [], f"delete removed cgroups it did not create: {gone}"
    finally:
        for directory in reversed(made):
            if directory.exists() and not any(p.is_dir() for p in directory.iterdir()):
                wait_until(lambda d=directory: _rmdir(d), timeout=5, what=f"rmdir {directory}")


def _rmdir(directory: Path) -> bool:
    try:
        directory.rmdir()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def test_exec_cgroup_places_the_process_in_an_existing_sub_cgroup(rt: Runtime, bundle: Bundle) -> None:
    """`exec --cgroup [<controller>:]<path>` (runc): the process joins that sub-cgroup of the container's
    cgroup (v2: one path; v1: per controller, the others stay the container's); a missing one is an error."""
    cid, pid = started(rt, bundle, "sleep", "1000")
    cg = ContainerCgroup(pid)
    key = "" if V2 else "pids"
    flag = "sub" if V2 else "pids:sub"
    sub = cg.dirs[key] / "sub"
    sub.mkdir()
    try:
        result = rt("exec", "--cgroup", flag, cid, "cat", "/proc/self/cgroup", check=True)
        exec_dirs = {}
        mounts = _cgroup_mounts()
        for line in result.stdout.splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                if controller in mounts:
                    exec_dirs[controller] = mounts[controller] / path.lstrip("/")
        assert exec_dirs[key] == sub
        assert {c: d for c, d in exec_dirs.items() if c != key} == {c: d for c, d in cg.dirs.items() if c != key}
        missing = rt("exec", "--cgroup", flag.replace("sub", "no-such-sub"), cid, "true")
        assert missing.returncode != 0, missing
    finally:
        rt.kill(cid, check=False)
        rt.wait_status(cid, "stopped")
        wait_until(lambda: _rmdir(sub), timeout=10, what=f"rmdir {sub}")
    rt.delete(cid)
    assert _dirs_exist(cg) == []
