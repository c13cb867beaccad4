"""The systemd cgroup driver without systemd: the D-Bus wire format (checked against a real dbus-daemon and
sd-bus's busctl), cgroupsPath parsing and slice expansion, the unit properties, state round trips.

The driver against a real systemd is tested in the cgroup v2 VM: tests/test_cgroups_systemd.py.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyrunc.cgroups import dbus, from_state
from pyrunc.cgroups.devices import WILDCARD, Rule, container_rules
from pyrunc.cgroups.systemd import (
    Systemd,
    SystemdV1Manager,
    SystemdV2Manager,
    Unit,
    _systemd_root,
    cpu_mask,
    cpu_quota_properties,
    device_properties,
    expand_slice,
    parse_cgroups_path,
    resource_properties,
    version_number,
)
from pyrunc.errors import CgroupError

UINT64_MAX = 2**64 - 1

# -- marshalling ----------------------------------------------------------------------------------------
ROUND_TRIPS = [
    ("y", [255]),
    ("b", [True]),
    ("nqiu", [-2, 65535, -(2**31), 2**32 - 1]),
    ("xt", [-(2**63), UINT64_MAX]),
    ("d", [-2.5]),
    ("sog", ["héllo", "/org/freedesktop/systemd1", "a(sv)"]),
    ("as", [["", "a", "bc"]]),
    ("au", [[1, 2, 4294967295]]),
    ("ay", [b"\x00\x0f\xff"]),
    ("at", [[]]),
    ("v", [("t", 7)]),
    ("v", [("a(ss)", [("/dev/char/1:3", "rwm"), ("char-*", "m")])]),
    ("a(sv)", [[("Delegate", ("b", True)), ("PIDs", ("au", [42])), ("AllowedCPUs", ("ay", b"\x03"))]]),
    ("ssa(sv)a(sa(sv))", ["runc-x.scope", "replace", [("Slice", ("s", "system.slice"))], [("a", [("b", ("y", 1))])]]),
    ("a{sv}", [{"Version": ("s", "252"), "Tasks": ("t", 3)}]),
    ("(ybx)", [(1, False, -1)]),
    ("ya(ytv)", [9, [(1, 2, ("s", "x")), (3, 4, ("ad", [1.5]))]]),
]


@pytest.mark.parametrize(("signature", "values"), ROUND_TRIPS)
def test_marshal_round_trip(signature, values):
    assert dbus.unmarshal(signature, dbus.marshal(signature, values)) == values


def test_fixed_types_align_to_their_size():
    # y at 0, t padded to 8; the padding is zeros
    assert dbus.marshal("yt", [1, 2]) == b"\x01" + bytes(7) + struct.pack("<Q", 2)
    assert dbus.marshal("yq", [1, 2]) == b"\x01\x00" + struct.pack("<H", 2)
    assert dbus.marshal("yu", [1, 2]) == b"\x01" + bytes(3) + struct.pack("<I", 2)


def test_array_length_excludes_the_padding_before_its_first_element():
    # u32 length at 0, 4 bytes of padding (8-aligned elements), one element: the length is 8, not 12
    assert dbus.marshal("at", [[5]]) == struct.pack("<I", 8) + bytes(4) + struct.pack("<Q", 5)
    # after a 4-byte value the length field ends 8-aligned: no padding at all
    assert dbus.marshal("uat", [1, [5]]) == struct.pack("<II", 1, 8) + struct.pack("<Q", 5)
    # an empty array of structs still pads to the (absent) first element
    assert dbus.marshal("ya(sv)", [1, []]) == b"\x01" + bytes(3) + struct.pack("<I", 0)


def test_struct_and_dict_entries_start_8_aligned():
    data = dbus.marshal("ya(yy)", [7, [(1, 2), (3, 4)]])
    # y, pad, length (8..?), elements at 8 and 16
    assert data == b"\x07" + bytes(3) + struct.pack("<I", 10) + b"\x01\x02" + bytes(6) + b"\x03\x04"
    assert dbus.marshal("a{yy}", [{1: 2}]) == struct.pack("<I", 2) + bytes(4) + b"\x01\x02"


def test_strings_carry_length_and_nul():
    assert dbus.marshal("s", ["ab"]) == struct.pack("<I", 2) + b"ab\x00"
    assert dbus.marshal("g", ["as"]) == b"\x02as\x00"
    assert dbus.marshal("v", [("u", 1)]) == b"\x01u\x00" + b"\x00" + struct.pack("<I", 1)


def test_big_endian_messages_are_read():
    body = struct.pack(">I", 3) + b"abc\x00" + struct.pack(">I", 5)
    assert dbus.unmarshal("su", body, ">") == ["abc", 5]
    fields = [(dbus.REPLY_SERIAL, ("u", 9)), (dbus.SIGNATURE, ("g", "su"))]
    head = b"B\x02\x00\x01" + struct.pack(">II", len(body), 4)
    array = b"".join(bytes([code]) + b"\x01" + sig.encode() + b"\x00" + bytes(-(3 + len(sig)) % 4)
                     + (struct.pack(">I", value) if sig == "u" else bytes([len(value)]) + value.encode() + b"\x00")
                     + bytes(0) for code, (sig, value) in fields)
    # the two fields: (5, u 9) is 8 bytes; (8, g "su") starts 8-aligned
    header = head + struct.pack(">I", len(array)) + array
    message = dbus.decode_message(header + bytes(-len(header) % 8) + body)
    assert (message.type, message.serial, message.fields[dbus.REPLY_SERIAL], message.body) == (2, 4, 9, ["abc", 5])


def test_message_encoding_round_trip():
    fields = {dbus.PATH: "/org/freedesktop/systemd1", dbus.INTERFACE: "org.freedesktop.systemd1.Manager",
              dbus.MEMBER: "StartTransientUnit", dbus.DESTINATION: "org.freedesktop.systemd1"}
    data = dbus.encode_message(dbus.METHOD_CALL, 7, fields, "ss", ["u.scope", "replace"])
    assert len(data) == dbus.header_size(data[:16])[0]
    message = dbus.decode_message(data)
    assert (message.type, message.serial, message.member, message.path, message.body) == (
        dbus.METHOD_CALL, 7, "StartTransientUnit", "/org/freedesktop/systemd1", ["u.scope", "replace"])
    assert message.fields[dbus.SIGNATURE] == "ss"


@pytest.mark.parametrize("signature", ["a", "(", "()", "(s", "a{", "z", "{sv"])
def test_invalid_signatures_are_refused(signature):
    with pytest.raises(dbus.DBusError, match="InvalidSignature"):
        dbus.marshal(signature, [None])


def test_truncated_body_is_an_error():
    with pytest.raises(dbus.DBusError, match="truncated"):
        dbus.unmarshal("s", struct.pack("<I", 10) + b"ab")


def test_socket_addresses():
    assert dbus.socket_addresses("unix:path=/run/dbus/system_bus_socket") == ["/run/dbus/system_bus_socket"]
    assert dbus.socket_addresses("tcp:host=x,port=1;unix:abstract=/tmp/dbus-%41b,guid=00") == ["\0/tmp/dbus-Ab"]
    assert dbus.socket_addresses("unix:path=/a%2cb,guid=1") == ["/a,b"]
    assert dbus.socket_addresses("tcp:host=x") == []


# -- against a real dbus-daemon -------------------------------------------------------------------------
@pytest.fixture
def bus(tmp_path: Path) -> Iterator[str]:
    """A private dbus-daemon (session configuration): its address."""
    if not shutil.which("dbus-daemon"):
        pytest.skip("dbus-daemon not installed")
    socket_path = tmp_path / "bus"
    daemon = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", f"--address=unix:path={socket_path}", "--print-address"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        address = daemon.stdout.readline().strip()  # printed once it listens
        assert address.startswith(f"unix:path={socket_path}"), address
        yield address
    finally:
        daemon.kill()
        daemon.wait()


def test_hello_list_names_and_get_name_owner(bus: str):
    with dbus.Connection.open(bus, bus=True) as connection:
        assert connection.unique_name.startswith(":")
        names = connection.call(dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "ListNames")[0]
        assert {"org.freedesktop.DBus", connection.unique_name} <= set(names)
        owner = connection.call(dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "GetNameOwner", "s",
                                ["org.freedesktop.DBus"])
        assert owner == ["org.freedesktop.DBus"]
        acquired = connection.wait_signal(lambda m: m.member == "NameAcquired", time.monotonic() + 5)
        assert acquired.body == [connection.unique_name]


def test_error_reply_is_a_cgroup_error_with_the_dbus_name(bus: str):
    with dbus.Connection.open(bus, bus=True) as connection:
        with pytest.raises(CgroupError) as caught:
            connection.call(dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "GetNameOwner", "s", ["org.example.None"])
        assert caught.value.name == "org.freedesktop.DBus.Error.NameHasNoOwner"
        assert str(caught.value).startswith("org.freedesktop.DBus.Error.NameHasNoOwner: ")
        assert "org.example.None" in str(caught.value)
        # the connection is still usable after an error
        assert connection.call(dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "GetId")[0]


def test_matched_signal_reaches_the_subscriber(bus: str):
    """What waiting for systemd's JobRemoved does on a bus: AddMatch, then the signal arrives."""
    with dbus.Connection.open(bus, bus=True) as listener, dbus.Connection.open(bus, bus=True) as emitter:
        rule = "type='signal',interface='org.freedesktop.systemd1.Manager',member='JobRemoved'"
        listener.call(dbus.BUS_NAME, dbus.BUS_PATH, dbus.BUS_NAME, "AddMatch", "s", [rule])
        emitter.send(dbus.SIGNAL, {dbus.PATH: "/org/freedesktop/systemd1", dbus.MEMBER: "JobRemoved",
                                   dbus.INTERFACE: "org.freedesktop.systemd1.Manager"},
                     "uoss", [7, "/org/freedesktop/systemd1/job/7", "runc-x.scope", "done"])
        message = listener.wait_signal(lambda m: m.member == "JobRemoved", time.monotonic() + 5)
        assert message.body == [7, "/org/freedesktop/systemd1/job/7", "runc-x.scope", "done"]


def test_busctl_and_our_marshalling_agree_both_ways(bus: str):
    """sd-bus (busctl) marshals a StartTransientUnit-like call to us; we decode it, send the same values
    back as the reply, and busctl decodes our bytes (the daemon validates every message in between)."""
    if not shutil.which("busctl"):
        pytest.skip("busctl not installed")
    signature = "ssa(sv)a(sa(sv))ytxdbayaua{sv}(ib)o"
    args = ["runc-x.scope", "replace", "3", "Delegate", "b", "true", "PIDs", "au", "2", "1", "4294967295",
            "CPUQuotaPerSecUSec", "t", str(UINT64_MAX), "1", "aux", "1", "X", "s", "v", "7", "9", "-9", "2.5",
            "false", "3", "1", "2", "255", "2", "7", "8", "2", "a", "y", "3", "b", "as", "1", "q", "-4", "true",
            "/o/p"]
    expected = ["runc-x.scope", "replace",
                [("Delegate", ("b", True)), ("PIDs", ("au", [1, 4294967295])),
                 ("CPUQuotaPerSecUSec", ("t", UINT64_MAX))],
                [("aux", [("X", ("s", "v"))])], 7, 9, -9, 2.5, False, b"\x01\x02\xff", [7, 8],
                {"a": ("y", 3), "b": ("as", ["q"])}, (-4, True), "/o/p"]
    with dbus.Connection.open(bus, bus=True) as connection:
        busctl = subprocess.Popen(
            ["busctl", f"--address={bus}", "--json=short", "--", "call", connection.unique_name, "/x", "org.x.Y",
             "Z", signature, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 10
            call = connection.read_message(deadline)
            while call.type != dbus.METHOD_CALL:
                call = connection.read_message(deadline)
            assert call.fields[dbus.SIGNATURE] == signature
            assert call.body == expected
            connection.send(dbus.METHOD_RETURN, {dbus.REPLY_SERIAL: call.serial,
                                                 dbus.DESTINATION: call.fields[dbus.SENDER]}, signature, call.body)
            out, err = busctl.communicate(timeout=10)
        finally:
            busctl.kill()
            busctl.wait()
    assert busctl.returncode == 0, err
    reply = json.loads(out)
    assert reply["type"] == signature
    assert reply["data"][2] == [["Delegate", {"type": "b", "data": True}],
                                ["PIDs", {"type": "au", "data": [1, 4294967295]}],
                                ["CPUQuotaPerSecUSec", {"type": "t", "data": UINT64_MAX}]]
    assert reply["data"][9:] == [[1, 2, 255], [7, 8],
                                 {"a": {"type": "y", "data": 3}, "b": {"type": "as", "data": ["q"]}},
                                 [-4, True], "/o/p"]


def test_unreachable_socket_is_a_dbus_error(tmp_path: Path):
    with pytest.raises(dbus.DBusError, match=r"NoServer: .*/nothing"):
        dbus.Connection.open(f"unix:path={tmp_path}/nothing", bus=False)


def test_connect_systemd_prefers_the_system_bus(bus: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", bus)
    with dbus.connect_systemd() as connection:
        assert connection.bus and connection.unique_name


def test_without_bus_or_private_socket_systemd_is_unreachable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    if os.path.exists("/run/systemd/private"):
        pytest.skip("systemd's private socket exists here")
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    with pytest.raises(CgroupError) as caught:
        Systemd()
    assert str(caught.value) == (f"cannot reach systemd: system bus: {tmp_path}/no-bus: No such file or directory; "
                                 "private socket: /run/systemd/private: No such file or directory")


# -- unit names and paths -------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "path"), [
    ("system.slice", "/system.slice"),
    ("a-b.slice", "/a.slice/a-b.slice"),
    ("test-a-b.slice", "/test.slice/test-a.slice/test-a-b.slice"),
    ("-.slice", "/"),
])
def test_expand_slice(name, path):
    assert expand_slice(name) == path


@pytest.mark.parametrize("name", ["system", ".slice", "a--b.slice", "-a.slice", "a-.slice", "a/b.slice", "x.scope"])
def test_expand_slice_refuses_invalid_names(name):
    with pytest.raises(CgroupError, match="not a valid slice name"):
        expand_slice(name)


@pytest.mark.parametrize(("cgroups_path", "unit", "slice_", "cgroup"), [
    (None, "runc-ctr.scope", "system.slice", "/system.slice/runc-ctr.scope"),
    ("", "runc-ctr.scope", "system.slice", "/system.slice/runc-ctr.scope"),
    ("system.slice:docker:abc", "docker-abc.scope", "system.slice", "/system.slice/docker-abc.scope"),
    ("machine-pods.slice:libpod:x1", "libpod-x1.scope", "machine-pods.slice",
     "/machine.slice/machine-pods.slice/libpod-x1.scope"),
    (":crio:y", "crio-y.scope", "system.slice", "/system.slice/crio-y.scope"),
    ("-:p:z", "p-z.scope", "-.slice", "/p-z.scope"),
    ("system.slice::n", "n.scope", "system.slice", "/system.slice/n.scope"),
    ("system.slice:ignored:pod-a.slice", "pod-a.slice", "system.slice", "/pod.slice/pod-a.slice"),
])
def test_parse_cgroups_path(cgroups_path, unit, slice_, cgroup):
    parsed = parse_cgroups_path(cgroups_path, "ctr")
    assert (parsed.name, parsed.slice, parsed.cgroup) == (unit, slice_, cgroup)
    assert parsed.is_slice == unit.endswith(".slice")


@pytest.mark.parametrize(("cgroups_path", "message"), [
    ("/a/b", "is not \"slice:prefix:name\""),
    ("a:b", "is not \"slice:prefix:name\""),
    ("system.slice:p:", "has no name"),
    ("sys/tem.slice:p:n", "not a valid slice name"),
    ("system:p:n", "not a valid slice name"),
    ("system.slice:p:bad/name", "not a valid systemd unit name"),
    ("system.slice:p:a--b.slice", "not a valid slice name"),
])
def test_parse_cgroups_path_refuses(cgroups_path, message):
    with pytest.raises(CgroupError, match=message):
        parse_cgroups_path(cgroups_path, "ctr")


@pytest.mark.parametrize(("init", "root"), [("/init.scope", "/"), ("/", "/"), (None, "/"), ("/a/init.scope", "/a"),
                                            ("/lxc/x", "/lxc/x")])
def test_systemd_root_drops_init_scope(init, root):
    assert _systemd_root(init) == root


def test_start_properties_of_a_scope_and_of_a_slice():
    scope = dict((n, v) for n, _, v in parse_cgroups_path("", "c1").start_properties(42, v2=True))
    assert scope == {"Description": "pyrunc container c1", "Slice": "system.slice", "PIDs": [42], "Delegate": True,
                     "DefaultDependencies": False, "MemoryAccounting": True, "CPUAccounting": True,
                     "IOAccounting": True, "TasksAccounting": True}
    v1_slice = parse_cgroups_path("parent.slice::c-x.slice", "c1").start_properties(42, v2=False)
    names = [n for n, _, _ in v1_slice]
    assert ("Wants", "as", ["parent.slice"]) in v1_slice
    assert "PIDs" not in names and "Delegate" not in names and "BlockIOAccounting" in names


@pytest.mark.parametrize(("text", "number"), [("252.38-1~deb12u1", 252), ("v245.4-1.fc32", 245), ('"249"', 249),
                                             ("unknown", -1)])
def test_version_number(text, number):
    assert version_number(text) == number


# -- properties -----------------------------------------------------------------------------------------
def test_cpu_mask_is_little_endian_by_cpu():
    assert cpu_mask("0-3", "x") == b"\x0f"
    assert cpu_mask("0-3,9", "x") == b"\x0f\x02"
    assert cpu_mask("8", "x") == b"\x00\x01"
    with pytest.raises(CgroupError, match="is not a list"):
        cpu_mask("0-x", "linux.resources.cpu.cpus")


@pytest.mark.parametrize(("quota", "period", "expected"), [
    (50000, 100000, [("CPUQuotaPeriodUSec", "t", 100000), ("CPUQuotaPerSecUSec", "t", 500000)]),
    (12345, 0, [("CPUQuotaPerSecUSec", "t", 130000)]),  # 123450 us/s rounded up to whole percents
    (-1, 50000, [("CPUQuotaPeriodUSec", "t", 50000), ("CPUQuotaPerSecUSec", "t", UINT64_MAX)]),
    (0, 0, []),
])
def test_cpu_quota(quota, period, expected):
    assert cpu_quota_properties(quota, period) == expected


RESOURCES = {
    "memory": {"limit": 64 << 20, "reservation": 32 << 20, "swap": 96 << 20},
    "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1", "mems": "0"},
    "pids": {"limit": 50},
    "blockIO": {"weight": 500},
}


def test_v2_properties():
    assert resource_properties(RESOURCES, v2=True) == [
        ("MemoryMax", "t", 64 << 20),
        ("MemoryLow", "t", 32 << 20),
        ("MemorySwapMax", "t", 32 << 20),  # the spec's swap is memory+swap
        ("CPUWeight", "t", 39),
        ("CPUQuotaPeriodUSec", "t", 100000),
        ("CPUQuotaPerSecUSec", "t", 500000),
        ("TasksMax", "t", 50),
        ("AllowedCPUs", "ay", b"\x03"),
        ("AllowedMemoryNodes", "ay", b"\x01"),
    ]


def test_v1_properties():
    assert resource_properties(RESOURCES, v2=False) == [
        ("MemoryLimit", "t", 64 << 20),
        ("CPUShares", "t", 1024),
        ("BlockIOWeight", "t", 500),
        ("CPUQuotaPeriodUSec", "t", 100000),
        ("CPUQuotaPerSecUSec", "t", 500000),
        ("TasksMax", "t", 50),
        ("AllowedCPUs", "ay", b"\x03"),
        ("AllowedMemoryNodes", "ay", b"\x01"),
    ]


def test_unlimited_values_are_infinity():
    props = resource_properties({"memory": {"limit": -1, "swap": -1}, "pids": {"limit": -1}}, v2=True)
    assert props == [("MemoryMax", "t", UINT64_MAX), ("MemorySwapMax", "t", UINT64_MAX), ("TasksMax", "t", UINT64_MAX)]
    # an unlimited memory takes swap along (as plan_v2 does)
    assert resource_properties({"memory": {"limit": -1}}, v2=True) == [
        ("MemoryMax", "t", UINT64_MAX), ("MemorySwapMax", "t", UINT64_MAX)]


@pytest.mark.parametrize(("memory", "swap_max"), [
    ({"limit": 64 * 2**20, "swap": 64 * 2**20}, 0),  # swap equal to the limit: no swap at all
    ({"swap": 64 * 2**20}, None),  # a swap-only update: cgroupfs converts it with the limit in force
])
def test_swap_edge_cases(memory, swap_max):
    props = dict((n, v) for n, _, v in resource_properties({"memory": memory}, v2=True))
    assert props.get("MemorySwapMax") == swap_max


def test_unified_keys_systemd_knows():
    unified = {"memory.high": "max", "memory.min": "1048576", "pids.max": "10", "cpu.max": "max 20000",
               "cpu.weight": "200", "cpuset.cpus": "1", "io.weight": "default 100"}
    assert resource_properties({"unified": unified}, v2=True) == [
        ("MemoryHigh", "t", UINT64_MAX), ("MemoryMin", "t", 1 << 20), ("TasksMax", "t", 10),
        ("CPUQuotaPeriodUSec", "t", 20000), ("CPUQuotaPerSecUSec", "t", UINT64_MAX),
        ("CPUWeight", "t", 200), ("AllowedCPUs", "ay", b"\x02"),
    ]  # io.weight: cgroupfs only
    with pytest.raises(CgroupError, match=r"unified\.memory\.max: 'lots'"):
        resource_properties({"unified": {"memory.max": "lots"}}, v2=True)


def test_device_properties_of_the_default_container_rules():
    rules = container_rules({"linux": {"resources": {"devices": [{"allow": False, "access": "rwm"}]},
                                       "devices": [{"type": "b", "major": 7, "minor": 0, "path": "/dev/loop0"}]}})
    props = device_properties(rules)
    assert props[:2] == [("DevicePolicy", "s", "strict"), ("DeviceAllow", "a(ss)", [])]
    allowed = props[2][2]
    assert ("/dev/block/7:0", "rwm") in allowed
    assert ("/dev/char/1:3", "rwm") in allowed  # /dev/null
    assert ("char-136", "rwm") in allowed  # /dev/pts/*
    assert ("char-*", "m") in allowed and ("block-*", "m") in allowed


def test_device_properties_of_a_deny_list_leave_systemd_open():
    rules = [Rule(True, "a", WILDCARD, WILDCARD, "rwm"), Rule(False, "c", 1, 3, "rwm")]
    assert device_properties(rules) == [("DevicePolicy", "s", "auto"), ("DeviceAllow", "a(ss)", []),
                                        ("DeviceAllow", "a(ss)", [])]


def test_minor_only_rule_widens_to_the_type():
    rules = [Rule(False, "a", WILDCARD, WILDCARD, "rwm"), Rule(True, "c", WILDCARD, 5, "r")]
    assert device_properties(rules)[2] == ("DeviceAllow", "a(ss)", [("char-*", "r")])


# -- managers without systemd ---------------------------------------------------------------------------
def test_state_round_trip_is_placed_and_needs_no_dbus():
    v2 = SystemdV2Manager("/sys/fs/cgroup/system.slice/runc-x.scope")
    v2.unit = Unit("runc-x.scope", "system.slice")
    assert v2.v2_dir() is None  # not placed: stage-1 must not be forked into a cgroup that does not exist
    state = v2.to_state()
    assert state["systemd"] == {"unit": "runc-x.scope", "slice": "system.slice"}
    again = from_state(state)
    assert isinstance(again, SystemdV2Manager) and again.placed
    assert (again.path, again.unit.name, again.v2_dir()) == (v2.path, "runc-x.scope", v2.path)
    v1 = SystemdV1Manager({"memory": "/m/x.scope", "freezer": "/f/x.scope"}, "/u/x.scope", ["/f/x.scope"])
    v1.unit = Unit("x.scope", "system.slice")
    again = from_state(v1.to_state())
    assert isinstance(again, SystemdV1Manager) and again.placed
    assert (again.paths, again.unified, again.created) == (v1.paths, v1.unified, v1.created)


def test_v1_create_makes_only_what_systemd_does_not_and_a_failed_create_touches_no_unit(tmp_path: Path):
    """create() in the parent: the freezer directory (systemd leaves freezer alone), not the memory one.
    Its stage-1 never started the unit, so destroy() removes that directory and asks systemd nothing
    (there is no systemd here: any D-Bus call would fail)."""
    paths = {"memory": str(tmp_path / "memory/system.slice/runc-x.scope"),
             "freezer": str(tmp_path / "freezer/system.slice/runc-x.scope")}
    (tmp_path / "memory").mkdir()
    (tmp_path / "freezer").mkdir()
    manager = SystemdV1Manager(paths)
    manager.unit = Unit("runc-x.scope", "system.slice")
    manager.configure({"linux": {"resources": {"memory": {"limit": 1 << 30}}}})
    manager.create()
    assert os.path.isdir(paths["freezer"]) and not os.path.exists(tmp_path / "memory/system.slice")
    assert manager.created == [str(tmp_path / "freezer/system.slice"), paths["freezer"]]
    assert not manager.placed and manager.v2_dir() is None
    manager.destroy()
    assert os.listdir(tmp_path / "freezer") == []


def test_create_validates_resources_before_anything(tmp_path: Path):
    manager = SystemdV2Manager(str(tmp_path / "x.scope"))
    manager.unit = Unit("x.scope", "system.slice")
    manager.configure({"linux": {"resources": {"memory": {"limit": "lots"}}}})
    with pytest.raises(CgroupError, match=r"linux\.resources\.memory\.limit: 'lots'"):
        manager.create()
    rootless = SystemdV2Manager(str(tmp_path / "x.scope"))
    rootless.rootless = True
    with pytest.raises(CgroupError, match="--rootless is not supported"):
        rootless.create()
