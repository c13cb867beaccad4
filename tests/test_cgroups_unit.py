"""cgroups library without real cgroups: conversions, plans, placement, device rules, the BPF generator
(checked by an interpreter of its instructions), fake v1/v2 trees in a temp dir, stats parsing."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.cgroups import bpf, devices, from_state, manager_for, paths, resources
from pyrunc.cgroups.devices import WILDCARD, Rule
from pyrunc.cgroups.v1 import V1Manager
from pyrunc.cgroups.v2 import V2Manager
from pyrunc.errors import CgroupError

# -- conversions ------------------------------------------------------------------------------------


def test_shares_to_weight_matches_the_spec_formula():
    assert resources.shares_to_weight(2) == 1
    assert resources.shares_to_weight(1024) == 39
    assert resources.shares_to_weight(262144) == 10000


def test_blkio_weight_to_io_weight():
    assert resources.blkio_weight_to_io_weight(10) == 1
    assert resources.blkio_weight_to_io_weight(500) == 4950
    assert resources.blkio_weight_to_io_weight(1000) == 10000


@pytest.mark.parametrize(("swap", "limit", "expected"), [
    (0, 0, 0), (-1, 1 << 20, -1), (0, -1, -1), (3 << 20, 1 << 20, 2 << 20), (1 << 20, 1 << 20, 0),
])
def test_swap_to_v2(swap, limit, expected):
    assert resources.swap_to_v2(swap, limit) == expected


@pytest.mark.parametrize(("swap", "limit", "message"), [
    (1 << 20, 0, "needs a memory limit"), (1 << 20, 2 << 20, "below the memory limit"),
])
def test_swap_to_v2_refuses_nonsense(swap, limit, message):
    with pytest.raises(CgroupError, match=message):
        resources.swap_to_v2(swap, limit)


# -- plans ------------------------------------------------------------------------------------------
FULL = {
    "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 128 << 20, "kernel": 1 << 20,
               "kernelTCP": 8 << 20, "swappiness": 10, "disableOOMKiller": True, "useHierarchy": True},
    "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 1000, "realtimeRuntime": 900,
            "realtimePeriod": 1000, "cpus": "0", "mems": "0", "idle": 0},
    "pids": {"limit": 32},
    "blockIO": {"weight": 500, "leafWeight": 300,
                "weightDevice": [{"major": 8, "minor": 0, "weight": 600, "leafWeight": 200}],
                "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 100}]},
    "hugepageLimits": [{"pageSize": "2MB", "limit": 4 << 21}],
    "network": {"classID": 0x100001, "priorities": [{"name": "eth0", "priority": 5}]},
    "rdma": {"mlx5_1": {"hcaHandles": 3, "hcaObjects": 10000}},
    "unified": {"cgroup.max.depth": "4"},
}


def test_plan_v1_writes_every_field_to_its_file():
    plan = resources.plan_v1(FULL)
    assert [(w.controller, w.file, w.value) for w in plan] == [
        ("memory", "memory.limit_in_bytes", str(64 << 20)),  # limit raised first: new cgroup is unlimited
        ("memory", "memory.memsw.limit_in_bytes", str(128 << 20)),
        ("memory", "memory.soft_limit_in_bytes", str(32 << 20)),
        ("memory", "memory.kmem.tcp.limit_in_bytes", str(8 << 20)),
        ("memory", "memory.swappiness", "10"),
        ("memory", "memory.oom_control", "1"),
        ("cpu", "cpu.shares", "1024"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"),
        ("cpu", "cpu.cfs_burst_us", "1000"),
        ("cpu", "cpu.rt_period_us", "1000"),
        ("cpu", "cpu.rt_runtime_us", "900"),
        ("cpuset", "cpuset.cpus", "0"),
        ("cpuset", "cpuset.mems", "0"),
        ("cpu", "cpu.idle", "0"),
        ("pids", "pids.max", "32"),
        ("blkio", "blkio.weight", "500"),
        ("blkio", "blkio.leaf_weight", "300"),
        ("blkio", "blkio.weight_device", "8:0 600"),
        ("blkio", "blkio.leaf_weight_device", "8:0 200"),
        ("blkio", "blkio.throttle.read_bps_device", "8:0 1048576"),
        ("blkio", "blkio.throttle.write_iops_device", "8:0 100"),
        ("hugetlb", "hugetlb.2MB.limit_in_bytes", str(4 << 21)),
        ("net_cls", "net_cls.classid", str(0x100001)),
        ("net_prio", "net_prio.ifpriomap", "eth0 5"),
        ("rdma", "rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
        ("unified", "cgroup.max.depth", "4"),
    ]
    assert plan[16].fallback == ("blkio.bfq.weight", "500")


def test_plan_v1_lowers_memsw_after_the_limit_and_raises_it_before():
    lower = resources.plan_v1({"memory": {"limit": 1 << 20, "swap": 2 << 20}}, current_memory_limit=8 << 20)
    assert [w.file for w in lower] == ["memory.limit_in_bytes", "memory.memsw.limit_in_bytes"]
    higher = resources.plan_v1({"memory": {"limit": 16 << 20, "swap": 32 << 20}}, current_memory_limit=8 << 20)
    assert [w.file for w in higher] == ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]


def test_plan_v2_converts_v1_values():
    v2 = {key: value for key, value in FULL.items() if key != "network"}
    v2["cpu"] = {k: v for k, v in FULL["cpu"].items() if not k.startswith("realtime")}
    plan = resources.plan_v2(v2)
    assert [(w.file, w.value) for w in plan] == [
        ("memory.swap.max", str(64 << 20)),
        ("memory.max", str(64 << 20)),
        ("memory.low", str(32 << 20)),
        ("cpu.weight", "39"),
        ("cpu.max", "50000 100000"),
        ("cpu.max.burst", "1000"),
        ("cpuset.cpus", "0"),
        ("cpuset.mems", "0"),
        ("cpu.idle", "0"),
        ("pids.max", "32"),
        ("io.bfq.weight", "500"),
        ("io.bfq.weight", "8:0 600"),
        ("io.max", "8:0 rbps=1048576"),
        ("io.max", "8:0 wiops=100"),
        ("hugetlb.2MB.max", str(4 << 21)),
        ("rdma.max", "mlx5_1 hca_handle=3 hca_object=10000"),
        ("cgroup.max.depth", "4"),
    ]
    assert plan[10].fallback == ("io.weight", "4950")
    assert plan[11].fallback == ("io.weight", "8:0 5960")


def test_plan_v2_swap_equal_to_the_limit_disables_swap():
    plan = resources.plan_v2({"memory": {"limit": 8 << 20, "swap": 8 << 20}})
    assert [(w.file, w.value) for w in plan] == [("memory.swap.max", "0"), ("memory.max", str(8 << 20))]
    assert [w.file for w in resources.plan_v2({"memory": {"limit": 8 << 20}})] == ["memory.max"]


def test_plan_v2_unlimited_values_are_max():
    plan = resources.plan_v2({"memory": {"limit": -1}, "cpu": {"quota": -1, "period": 100000}, "pids": {"limit": -1}})
    assert [(w.file, w.value) for w in plan] == [
        ("memory.swap.max", "max"), ("memory.max", "max"), ("cpu.max", "max 100000"), ("pids.max", "max")]


@pytest.mark.parametrize(("res", "message"), [
    ({"memory": {"limit": -5}}, r"memory\.limit: -5"),
    ({"cpu": {"cpus": "0-4095"}}, r"cpu\.cpus: '0-4095' names \[.*\] which this host does not have"),
    ({"cpu": {"cpus": "zero"}}, r"cpu\.cpus: 'zero' is not a list"),
    ({"blockIO": {"weight": 5}}, r"blockIO\.weight: 5"),
    ({"memory": {"limit": 2 << 20, "swap": 1 << 20}}, "below the memory limit"),
    ({"unified": {"../x": "1"}}, "not a cgroup file name"),
])
def test_nonsense_values_are_refused_by_both_planners(res, message):
    for plan in (resources.plan_v1, resources.plan_v2):
        with pytest.raises(CgroupError, match=message):
            plan(res)


def test_v1_refuses_a_swappiness_above_100():
    with pytest.raises(CgroupError, match=r"memory\.swappiness: 101"):
        resources.plan_v1({"memory": {"swappiness": 101}})


def test_v2_refuses_what_only_v1_has():
    with pytest.raises(CgroupError, match="real-time"):
        resources.plan_v2({"cpu": {"realtimeRuntime": 100}})
    with pytest.raises(CgroupError, match="net_cls/net_prio"):
        resources.plan_v2({"network": {"classID": 1}})


# -- placement --------------------------------------------------------------------------------------
MOUNTINFO = """\
25 30 0:22 / /sys rw,nosuid - sysfs sysfs rw
33 25 0:28 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
34 33 0:29 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
35 33 0:30 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
36 33 0:31 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
37 33 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
38 33 0:33 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,pids
"""


def test_parse_mountinfo_finds_each_controller_and_the_unified_mount():
    v1, v2 = paths.parse_mountinfo(MOUNTINFO)
    assert sorted(v1) == ["cpu", "cpuacct", "memory", "name=systemd", "pids"]
    assert v1["cpu"] is v1["cpuacct"]
    assert v1["memory"].root == "/docker/abc"
    assert v1["pids"].mountpoint == "/sys/fs/cgroup/with space"
    assert v2.mountpoint == "/sys/fs/cgroup/unified"


def test_parse_proc_cgroup():
    own = paths.parse_proc_cgroup("4:memory:/a/b\n3:cpu,cpuacct:/c\n1:name=systemd:/\n0::/u\n")
    assert own == {"memory": "/a/b", "cpu": "/c", "cpuacct": "/c", "name=systemd": "/", "": "/u"}


@pytest.mark.parametrize(("given", "expected"), [
    ("/a/../b", "/b"), ("a/b/", "a/b"), ("../../x", "x"), ("..", ""), ("/", "/"),
])
def test_clean_cannot_climb(given, expected):
    assert paths.clean(given) == expected


def test_hierarchy_dir_absolute_relative_and_mount_root():
    mount = paths.Mount("/sys/fs/cgroup/memory", "/")
    assert paths.hierarchy_dir(mount, "/own", "/ctr") == "/sys/fs/cgroup/memory/ctr"
    assert paths.hierarchy_dir(mount, "/own", "ctr") == "/sys/fs/cgroup/memory/own/ctr"
    assert paths.hierarchy_dir(mount, "/own/leaf", "ctr", parent_of_own=True) == "/sys/fs/cgroup/memory/own/ctr"
    nested = paths.Mount("/sys/fs/cgroup/memory", "/docker/abc")
    assert paths.hierarchy_dir(nested, "/docker/abc/sub", "ctr") == "/sys/fs/cgroup/memory/sub/ctr"


def test_systemd_driver_without_systemd_says_so():
    if os.path.isdir("/run/systemd/system"):
        pytest.skip("systemd runs here")
    with pytest.raises(CgroupError, match=r"systemd is not running \(no /run/systemd/system\)"):
        manager_for({}, "x", systemd=True)


def test_state_round_trip_rebuilds_the_same_manager():
    v1 = V1Manager({"cpu": "/c/x", "memory": "/m/x"}, "/u/x", ["/c/x", "/m/x"], [("c", 4, 5)])
    again = from_state(v1.to_state())
    assert (again.paths, again.unified, again.created, again.device_extras) == (
        v1.paths, v1.unified, v1.created, v1.device_extras)
    v2 = V2Manager("/sys/fs/cgroup/x", created=["/sys/fs/cgroup/x"])
    again = from_state(v2.to_state())
    assert (again.path, again.root, again.created) == (v2.path, v2.root, v2.created)


@pytest.mark.parametrize("state", [
    {"version": 1, "paths": {"freezer": "/nonexistent"}},
    {"version": 2, "path": "/nonexistent", "root": "/sys/fs/cgroup",
     "systemd": {"unit": "runc-x.scope", "slice": "system.slice"}},  # no D-Bus on the hot paths
])
def test_import_and_state_path_stay_light(state: dict):
    """state/kill/delete/ps: importing the package, from_state, is_frozen and pids load nothing heavy."""
    heavy = {"typing", "json", "subprocess", "ctypes", "socket", "mmap", "pyrunc.cgroups.dbus"}
    code = (f"import sys, pyrunc.cgroups as c; m = c.from_state({state!r}); m.is_frozen(); m.pids();"
            f" print(sorted({heavy!r} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# -- devices ----------------------------------------------------------------------------------------
def test_container_rules_are_deny_all_then_linux_devices_then_config_then_defaults():
    """linux.devices entries are allowed right after the config's last allow-all/deny-all rule, so that a
    later explicit deny for one of them still wins (last match wins)."""
    config = {"linux": {"resources": {"devices": [{"allow": False, "access": "rwm"},
                                                  {"allow": True, "type": "c", "major": 1, "minor": 11,
                                                   "access": "r"}]},
                        "devices": [{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229}]}}
    rules = devices.container_rules(config)
    assert [r.v1_line() for r in rules[:4]] == ["a", "a", "c 10:229 rwm", "c 1:11 r"]
    assert rules[-1] == devices.DEFAULT_ALLOWED[-1]
    default_allow, rest = devices.effective(rules)
    assert not default_allow
    assert rest[0].v1_line() == "c 10:229 rwm"
    assert rest[1].v1_line() == "c 1:11 r"
    assert [r.v1_line() for r in rest[2:4]] == ["c *:* m", "b *:* m"]


def test_partial_type_a_rule_becomes_char_and_block():
    rules = devices.parse_resource_rules([{"allow": False, "type": "a", "major": 7, "access": "rw"}])
    assert [r.v1_line() for r in rules] == ["c 7:* rw", "b 7:* rw"]


@pytest.mark.parametrize("entry", [{"type": "x"}, {"access": "rwx"}, {"access": ""}, {"major": -2}])
def test_bad_device_rules_are_refused(entry):
    with pytest.raises(CgroupError, match=r"linux\.resources\.devices\[0\]"):
        devices.parse_resource_rules([{"allow": True, **entry}])


# -- the BPF generator ------------------------------------------------------------------------------
def decode(code: bytes) -> list[tuple[int, int, int, int, int]]:
    """(opcode, dst, src, off, imm) per instruction."""
    out = []
    for i in range(0, len(code), 8):
        op, regs, off, imm = struct.unpack_from("<BBhi", code, i)
        out.append((op, regs & 0xF, regs >> 4, off, imm))
    return out


def run_program(code: bytes, dev_type: int, access: int, major: int, minor: int) -> int:
    """Interpret the instructions the generator uses, on a bpf_cgroup_dev_ctx."""
    ctx = struct.pack("<III", (access << 16) | dev_type, major, minor)
    regs = [0] * 11
    insns = decode(code)
    pc = 0
    while True:
        op, dst, src, off, imm = insns[pc]
        pc += 1
        if op == bpf.LDX_MEM_W:
            assert src == 1, "only the context is read"
            regs[dst] = struct.unpack_from("<I", ctx, off)[0]
        elif op == bpf.ALU32_AND_K:
            regs[dst] &= imm & 0xFFFFFFFF
        elif op == bpf.ALU32_RSH_K:
            regs[dst] >>= imm
        elif op == bpf.ALU32_MOV_K:
            regs[dst] = imm & 0xFFFFFFFF
        elif op == bpf.ALU32_MOV_X:
            regs[dst] = regs[src]
        elif op == bpf.JMP_JNE_K:
            pc += off if regs[dst] != imm else 0
        elif op == bpf.JMP_JNE_X:
            pc += off if regs[dst] != regs[src] else 0
        elif op == bpf.EXIT:
            return regs[0]
        else:
            raise AssertionError(f"unexpected opcode {op:#x}")


def test_program_for_one_rule_decodes_to_the_expected_instructions():
    code = bpf.program(False, [Rule(True, "c", 1, 3, "rw")])
    assert decode(code) == [
        (bpf.LDX_MEM_W, 2, 1, 0, 0), (bpf.ALU32_AND_K, 2, 0, 0, 0xFFFF),
        (bpf.LDX_MEM_W, 3, 1, 0, 0), (bpf.ALU32_RSH_K, 3, 0, 0, 16),
        (bpf.LDX_MEM_W, 4, 1, 4, 0), (bpf.LDX_MEM_W, 5, 1, 8, 0),
        (bpf.JMP_JNE_K, 2, 0, 7, 2),  # not a char device: skip the 7 remaining instructions of the block
        (bpf.ALU32_MOV_X, 1, 3, 0, 0), (bpf.ALU32_AND_K, 1, 0, 0, 6),  # r1 = requested & (r|w)
        (bpf.JMP_JNE_X, 1, 3, 4, 0),  # asked for more than r|w
        (bpf.JMP_JNE_K, 4, 0, 3, 1), (bpf.JMP_JNE_K, 5, 0, 2, 3),
        (bpf.ALU32_MOV_K, 0, 0, 0, 1), (bpf.EXIT, 0, 0, 0, 0),
        (bpf.ALU32_MOV_K, 0, 0, 0, 0), (bpf.EXIT, 0, 0, 0, 0),  # default: deny
    ]


def reference(rules: list[Rule], dev_type: str, access: str, major: int, minor: int) -> bool:
    """Last matching rule wins; the reset rule sets the default; deny when nothing matches."""
    verdict = False
    for rule in rules:
        matches = (rule.type in ("a", dev_type) and rule.major in (WILDCARD, major)
                   and rule.minor in (WILDCARD, minor) and set(access) <= set(rule.access))
        if rule.is_reset() or matches:
            verdict = rule.allow
    return verdict


rule_strategy = st.builds(
    Rule, st.booleans(), st.sampled_from("cb"), st.sampled_from([WILDCARD, 1, 5]),
    st.sampled_from([WILDCARD, 3, 9]), st.sampled_from(["r", "w", "m", "rw", "rm", "wm", "rwm"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(rule_strategy, st.sampled_from([Rule(b, "a", WILDCARD, WILDCARD, "rwm")
                                                          for b in (True, False)])), max_size=8),
       st.sampled_from("cb"), st.sampled_from(["r", "w", "m", "rw", "rwm"]), st.sampled_from([1, 5, 7]),
       st.sampled_from([3, 9, 11]))
def test_program_decides_like_last_match_wins(rules, dev_type, access, major, minor):
    code = bpf.program(*devices.effective(rules))
    bits = sum(bpf.ACCESS_BITS[c] for c in access)
    got = run_program(code, bpf.DEV_TYPE[dev_type], bits, major, minor)
    assert bool(got) == reference(rules, dev_type, access, major, minor)


# -- fake cgroupfs trees ----------------------------------------------------------------------------
def touch(directory: Path, *names: str, content: str = "") -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_text(content)


def test_fake_v1_tree_gets_each_value_and_fallbacks(tmp_path):
    dirs = {c: tmp_path / c / "ctr" for c in ("memory", "cpu", "pids", "blkio", "cpuset")}
    touch(dirs["memory"], "memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.swappiness")
    touch(dirs["cpu"], "cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us")
    touch(dirs["pids"], "pids.max")
    touch(dirs["blkio"], "blkio.bfq.weight")  # no blkio.weight: like this host, BFQ's file is used
    touch(dirs["cpuset"], "cpuset.cpus", "cpuset.mems")
    m = V1Manager({c: str(d) for c, d in dirs.items()})
    m.resources = {"memory": {"limit": 1 << 20, "swap": 2 << 20, "swappiness": 0},
                   "cpu": {"shares": 256, "quota": 20000, "period": 50000, "cpus": "0"},
                   "pids": {"limit": -1}, "blockIO": {"weight": 300}}
    m.create()
    assert m.created == []  # every directory existed: nothing of ours to remove later
    read = {f"{c}/{p.name}": p.read_text() for c, d in dirs.items() for p in d.iterdir()}
    assert read == {
        "memory/memory.limit_in_bytes": str(1 << 20), "memory/memory.memsw.limit_in_bytes": str(2 << 20),
        "memory/memory.swappiness": "0", "cpu/cpu.shares": "256", "cpu/cpu.cfs_quota_us": "20000",
        "cpu/cpu.cfs_period_us": "50000", "pids/pids.max": "max", "blkio/blkio.bfq.weight": "300",
        "cpuset/cpuset.cpus": "0", "cpuset/cpuset.mems": "",
    }


def test_fake_v1_missing_file_is_an_error_naming_it(tmp_path):
    touch(tmp_path / "cpu" / "ctr", "cpu.shares")
    m = V1Manager({"cpu": str(tmp_path / "cpu" / "ctr")})
    m.resources = {"cpu": {"realtimeRuntime": 100}}
    with pytest.raises(CgroupError, match=r"cpu\.rt_runtime_us: not supported on this host"):
        m.create()
    m.resources = {"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}
    with pytest.raises(CgroupError, match=r"hugetlb\.2MB\.limit_in_bytes: the hugetlb controller is not mounted"):
        m.create()


def test_rootless_without_limits_runs_without_cgroups_but_limits_need_them():
    m = V1Manager({"pids": "/proc/pyrunc-cannot-mkdir-here/ctr"})
    m.rootless = True
    m.create()
    assert (m.dirs(), m.pids(), m.to_state()["paths"]) == ([], [], {})
    m = V1Manager({"pids": "/proc/pyrunc-cannot-mkdir-here/ctr"})
    m.rootless, m.resources = True, {"pids": {"limit": 5}}
    with pytest.raises(CgroupError, match="mkdir /proc/pyrunc-cannot-mkdir-here"):
        m.create()


def test_fake_v1_creates_and_removes_only_its_own_directories(tmp_path):
    existing = tmp_path / "pids" / "pod"
    existing.mkdir(parents=True)
    leaf = existing / "ctr"
    m = V1Manager({"pids": str(leaf)})
    m._make_dirs()
    assert m.created == [str(leaf)]
    m.destroy()
    assert not leaf.exists()
    assert existing.exists()


def make_fake_v2(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "cg2"
    touch(root, "cgroup.controllers", content="cpu memory pids io")
    touch(root, "cgroup.subtree_control")
    leaf = root / "ctr"
    touch(leaf, "memory.max", "memory.swap.max", "cpu.weight", "cpu.max", "pids.max", "io.weight")
    touch(leaf, "cgroup.controllers", content="cpu memory pids io")
    return root, leaf


def test_fake_v2_tree_gets_converted_values_and_controllers_enabled(tmp_path):
    root, leaf = make_fake_v2(tmp_path)
    m = V2Manager(str(leaf), root=str(root))
    m.resources = {"memory": {"limit": 8 << 20, "swap": 24 << 20}, "cpu": {"shares": 2048, "quota": 10000},
                   "pids": {"limit": 7}, "blockIO": {"weight": 1000}}
    m.create()
    assert (root / "cgroup.subtree_control").read_text() == "+cpu +memory +pids +io"
    assert {p.name: p.read_text() for p in leaf.iterdir() if p.name != "cgroup.controllers"} == {
        "memory.max": str(8 << 20), "memory.swap.max": str(16 << 20), "cpu.weight": "79", "cpu.max": "10000",
        "pids.max": "7", "io.weight": "10000"}


def test_fake_v2_unified_key_of_a_disabled_controller_is_refused(tmp_path):
    root, leaf = make_fake_v2(tmp_path)
    touch(leaf, "hugetlb.2MB.max")
    m = V2Manager(str(leaf), root=str(root))
    with pytest.raises(CgroupError, match=r"unified\.hugetlb\.2MB\.max: the hugetlb controller is not enabled"):
        m.update({"unified": {"hugetlb.2MB.max": "0"}})
    assert (leaf / "hugetlb.2MB.max").read_text() == ""


def test_v1_stats_shape_from_fake_files(tmp_path):
    from pyrunc.cgroups.stats import v1_stats

    cpuacct, memory, pids = tmp_path / "cpuacct", tmp_path / "memory", tmp_path / "pids"
    touch(cpuacct)
    (cpuacct / "cpuacct.usage").write_text("5000\n")
    (cpuacct / "cpuacct.usage_percpu").write_text("3000 2000 \n")
    (cpuacct / "cpuacct.stat").write_text("user 2\nsystem 1\n")
    touch(memory)
    (memory / "memory.usage_in_bytes").write_text("4096\n")
    (memory / "memory.limit_in_bytes").write_text("9223372036854771712\n")
    (memory / "memory.failcnt").write_text("3\n")
    (memory / "memory.stat").write_text("cache 10\nrss 20\n")
    touch(pids)
    (pids / "pids.current").write_text("2\n")
    (pids / "pids.max").write_text("max\n")
    data = v1_stats({"cpuacct": str(cpuacct), "memory": str(memory), "pids": str(pids)})
    assert data["cpu"]["usage"] == {"total": 5000, "percpu": [3000, 2000], "percpu_kernel": [], "percpu_user": [],
                                    "kernel": 10_000_000, "user": 20_000_000}
    assert data["memory"]["usage"] == {"limit": 9223372036854771712, "usage": 4096, "max": 0, "failcnt": 3}
    assert data["memory"]["cache"] == 10
    assert data["memory"]["raw"] == {"cache": 10, "rss": 20}
    assert data["pids"] == {"current": 2, "limit": 0}


def test_v2_stats_shape_from_fake_files(tmp_path):
    from pyrunc.cgroups.stats import v2_stats

    d = tmp_path / "ctr"
    touch(d)
    (d / "cpu.stat").write_text("usage_usec 7\nuser_usec 4\nsystem_usec 3\nnr_periods 2\nnr_throttled 1\n"
                                "throttled_usec 5\n")
    (d / "memory.current").write_text("100\n")
    (d / "memory.max").write_text("1000\n")
    (d / "memory.swap.current").write_text("10\n")
    (d / "memory.swap.max").write_text("max\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
    (d / "memory.stat").write_text("file 9\nanon 91\n")
    (d / "io.stat").write_text("254:0 rbytes=512 wbytes=1024 rios=1 wios=2 dbytes=0 dios=0\n")
    data = v2_stats(str(d))
    assert data["cpu"] == {"usage": {"total": 7000, "kernel": 3000, "user": 4000},
                           "throttling": {"periods": 2, "throttledPeriods": 1, "throttledTime": 5000}}
    assert data["memory"]["usage"] == {"limit": 1000, "usage": 100, "max": 0, "failcnt": 4}
    assert data["memory"]["swap"]["usage"] == 110
    assert data["memory"]["swap"]["limit"] == 2**64 - 1
    assert data["memory"]["cache"] == 9
    assert data["blkio"]["ioServiceBytesRecursive"] == [
        {"major": 254, "minor": 0, "op": "Read", "value": 512},
        {"major": 254, "minor": 0, "op": "Write", "value": 1024},
    ]



@pytest.mark.parametrize("plan", [resources.plan_v1, resources.plan_v2])
def test_blkio_weight_zero_means_unset(plan):
    """Docker sends "blockIO": {"weight": 0} in every config; runc reads 0 as "not set"."""
    assert not [w for w in plan({"blockIO": {"weight": 0, "leafWeight": 0}}) if "weight" in w.file]


def test_sub_cgroups_stay_below_the_container_and_must_exist(tmp_path) -> None:
    from pyrunc.cgroups.v1 import V1Manager
    from pyrunc.cgroups.v2 import V2Manager

    for name in ("pids/c/sub", "memory/c", "unified/c/sub"):
        (tmp_path / name).mkdir(parents=True)
    v1 = V1Manager({"pids": str(tmp_path / "pids/c"), "memory": str(tmp_path / "memory/c")},
                   str(tmp_path / "unified/c"))
    sub = v1.sub_cgroups({"pids": "/sub"})
    assert sub.paths == {"pids": str(tmp_path / "pids/c/sub"), "memory": str(tmp_path / "memory/c")}
    assert sub.unified == str(tmp_path / "unified/c")
    with pytest.raises(CgroupError, match="no such sub-cgroup"):
        v1.sub_cgroups({"": "sub"})  # memory/c/sub is missing
    with pytest.raises(CgroupError, match="not below the container's cgroup"):
        v1.sub_cgroups({"pids": "../.."})
    with pytest.raises(CgroupError, match="no rdma controller"):
        v1.sub_cgroups({"rdma": "sub"})
    v2 = V2Manager(str(tmp_path / "unified/c"), str(tmp_path / "unified"))
    assert v2.sub_cgroups({"": "sub"}).path == str(tmp_path / "unified/c/sub")
    with pytest.raises(CgroupError, match="without a <controller>: prefix"):
        v2.sub_cgroups({"pids": "sub"})
