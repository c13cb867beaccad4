"""linux.netDevices (pyrunc/netdevices.py) against real interfaces and a real network namespace.

This kernel has no `dummy` driver: a test device is one end of a veth pair whose other end stays on the
host (deleting that end deletes both, wherever the moved end is). The "container" is a `sleep` in a new
network namespace; listings come from `ip -j` run in that namespace through nsenter.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyrunc import netdevices
from pyrunc.errors import ConfigError, PyruncError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="moving network devices needs root")

REPO = Path(__file__).resolve().parent.parent
V4 = "10.231.7.1/24"
V4_PEER = ("10.231.8.1", "10.231.8.2/32")
V6 = "fd00:231:7::1/64"
_count = 0


def ip(*args: str, netns_pid: int | None = None, check: bool = True) -> subprocess.CompletedProcess:
    prefix = ["nsenter", f"--net=/proc/{netns_pid}/ns/net"] if netns_pid else []
    return subprocess.run([*prefix, "ip", *args], capture_output=True, text=True, check=check)


def link(name: str, netns_pid: int | None = None) -> dict | None:
    """`ip -j addr show NAME` in the host or the holder's namespace; None when there is no such device."""
    done = ip("-j", "addr", "show", "dev", name, netns_pid=netns_pid, check=False)
    return json.loads(done.stdout)[0] if done.returncode == 0 else None


def addresses(entry: dict) -> set[str]:
    found = set()
    for a in entry["addr_info"]:
        if a.get("scope") == "global":
            peer = f" peer {a['address']}" if a.get("address") else ""
            found.add(f"{a['local']}{peer}/{a['prefixlen']}")
    return found


def names_in(netns_pid: int) -> set[str]:
    return {entry["ifname"] for entry in json.loads(ip("-j", "link", netns_pid=netns_pid).stdout)}


def is_mount_point(path: Path) -> bool:
    return any(line.split()[4] == str(path) for line in Path("/proc/self/mountinfo").read_text().splitlines())


def unique_name() -> str:
    global _count
    _count += 1
    return f"pnd{os.getpid() % 100000}x{_count}"  # at most 15 bytes


@pytest.fixture
def device() -> Iterator[str]:
    """A host veth end, down, with an IPv4, an IPv4 peer and an IPv6 address, mtu 1400."""
    name = unique_name()
    ip("link", "add", name, "type", "veth", "peer", "name", f"{name}p")
    try:
        ip("addr", "add", V4, "dev", name)
        ip("addr", "add", V4_PEER[0], "peer", V4_PEER[1], "dev", name)
        ip("addr", "add", V6, "dev", name, "nodad")
        ip("link", "set", name, "mtu", "1400")
        yield name
    finally:
        ip("link", "del", f"{name}p", check=False)
        ip("link", "del", name, check=False)


def expected_addresses() -> set[str]:
    return {V4, f"{V4_PEER[0]} peer {V4_PEER[1]}", V6}


@pytest.fixture
def holder() -> Iterator[subprocess.Popen]:
    """A process in a new network namespace, standing in for the container's init."""
    host_net = os.readlink("/proc/self/ns/net")
    with subprocess.Popen(["unshare", "--net", "sleep", "300"]) as proc:
        try:
            deadline = time.monotonic() + 5
            while os.readlink(f"/proc/{proc.pid}/ns/net") == host_net:
                assert time.monotonic() < deadline, "unshare --net did not take effect"
                time.sleep(0.01)
            yield proc
        finally:
            proc.kill()


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """The container's state directory; any netns pin left by a failed test is unmounted."""
    yield tmp_path
    pin = tmp_path / netdevices.NETNS_PIN
    if is_mount_point(pin):
        subprocess.run(["umount", "-l", str(pin)], check=False)


def config(devices: dict, netns: dict | None = None) -> dict:
    return {"linux": {"namespaces": [netns or {"type": "network"}], "netDevices": devices}}


# --- check_net_devices: before anything is made ------------------------------------------------

def test_check_accepts_an_existing_device(device: str) -> None:
    netdevices.check_net_devices(config({device: {"name": "eth0"}}))
    netdevices.check_net_devices({"linux": {}})


@pytest.mark.parametrize(("cfg", "message"), [
    ({"linux": {"netDevices": {"lo": {}}}}, "needs a network namespace"),
    (config({"lo": {}}, {"type": "network", "path": "/proc/self/ns/net"}), "is the runtime's own"),
    (config({"pndmissing0": {}}), "linux.netDevices.pndmissing0: no network device pndmissing0 on the host"),
    (config({"lo": {"name": "a/b"}}), "linux.netDevices.lo.name: 'a/b' contains '/'"),
    (config({"lo": {"name": "x" * 16}}), "longer than 15 bytes"),
    (config({"lo": {"name": ".."}}), "not a valid interface name"),
    (config({"a b": {}}), "linux.netDevices.a b: 'a b' contains"),
])  # fmt: skip
def test_check_refuses(cfg: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        netdevices.check_net_devices(cfg)


def test_check_refuses_two_devices_with_one_name(device: str) -> None:
    with pytest.raises(ConfigError, match="name ctr0 is also given to"):
        netdevices.check_net_devices(config({device: {"name": "ctr0"}, "lo": {"name": "ctr0"}}))


def test_check_refuses_lo_as_a_name_in_a_new_namespace(device: str) -> None:
    with pytest.raises(ConfigError, match="name lo is taken"):
        netdevices.check_net_devices(config({device: {"name": "lo"}}))


def test_check_and_a_config_without_devices_never_import_pyroute2(device: str) -> None:
    code = (f"import sys; from pyrunc import netdevices as n; n.check_net_devices({config({device: {}})!r}); "
            "n.move_in({'linux': {}}, 1, '/nonexistent'); n.move_back('/nonexistent'); "
            "assert 'pyroute2' not in sys.modules, 'pyroute2 imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


# --- move_in / move_back ------------------------------------------------------------------------

def test_move_in_renames_keeps_addresses_and_sets_up(device: str, holder: subprocess.Popen, state_dir: Path) -> None:
    netdevices.move_in(config({device: {"name": "ctr0"}}), holder.pid, str(state_dir))
    try:
        assert link(device) is None, "the device is still on the host"
        inside = link("ctr0", holder.pid)
        assert inside is not None, f"ctr0 missing in the container: {names_in(holder.pid)}"
        assert addresses(inside) == expected_addresses()
        assert "UP" in inside["flags"], "the spec: the device MUST be up in the container"
        assert inside["mtu"] == 1400
        assert is_mount_point(state_dir / netdevices.NETNS_PIN)
        recorded = json.loads((state_dir / netdevices.RECORD).read_text())
        assert [(d["name"], d["inside"], d["up"]) for d in recorded] == [(device, "ctr0", False)]
    finally:
        netdevices.move_back(str(state_dir))


def test_move_back_after_the_container_exited(device: str, holder: subprocess.Popen, state_dir: Path) -> None:
    """The pinned namespace outlives its processes: delete still finds the device and returns it."""
    ip("link", "set", device, "up")
    netdevices.move_in(config({device: {"name": "ctr0"}}), holder.pid, str(state_dir))
    holder.kill()
    holder.wait()
    netdevices.move_back(str(state_dir))
    back = link(device)
    assert back is not None, "the device did not come back to the host"
    assert addresses(back) == expected_addresses()
    assert "UP" in back["flags"]
    assert back["mtu"] == 1400
    assert not is_mount_point(state_dir / netdevices.NETNS_PIN)
    assert os.listdir(state_dir) == []


def test_move_back_restores_a_down_device_down(device: str, holder: subprocess.Popen, state_dir: Path) -> None:
    netdevices.move_in(config({device: {}}), holder.pid, str(state_dir))
    assert "UP" in link(device, holder.pid)["flags"]
    netdevices.move_back(str(state_dir))
    back = link(device)
    assert "UP" not in back["flags"]
    assert addresses(back) == expected_addresses()


def test_name_template_is_resolved_by_the_kernel(device: str, holder: subprocess.Popen, state_dir: Path) -> None:
    netdevices.move_in(config({device: {"name": "eth%d"}}), holder.pid, str(state_dir))
    try:
        assert names_in(holder.pid) == {"lo", "eth0"}
        assert json.loads((state_dir / netdevices.RECORD).read_text())[0]["inside"] == "eth0"
    finally:
        netdevices.move_back(str(state_dir))
    assert link(device) is not None


def test_name_taken_in_the_container_fails_and_moves_nothing(device: str, holder: subprocess.Popen,
                                                             state_dir: Path) -> None:
    ip("link", "add", "taken0", "type", "veth", "peer", "name", "taken1", netns_pid=holder.pid)
    message = f"linux.netDevices.{device}: a device named taken0 already exists"
    with pytest.raises(PyruncError, match=re.escape(message)):
        netdevices.move_in(config({device: {"name": "taken0"}}), holder.pid, str(state_dir))
    netdevices.move_back(str(state_dir))
    assert addresses(link(device)) == expected_addresses()
    assert os.listdir(state_dir) == []


def test_a_failure_half_way_is_undone_by_move_back(device: str, holder: subprocess.Popen, state_dir: Path) -> None:
    """The record is written as devices move: move_back returns those moved before the failure."""
    message = "linux.netDevices.pndmissing0: no network device pndmissing0 on the host"
    with pytest.raises(PyruncError, match=re.escape(message)):
        netdevices.move_in(config({device: {"name": "ctr0"}, "pndmissing0": {}}), holder.pid, str(state_dir))
    assert names_in(holder.pid) == {"lo", "ctr0"}
    netdevices.move_back(str(state_dir))
    assert addresses(link(device)) == expected_addresses()
    assert not is_mount_point(state_dir / netdevices.NETNS_PIN)


def test_move_back_survives_a_vanished_device(device: str, holder: subprocess.Popen, state_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    netdevices.move_in(config({device: {"name": "ctr0"}}), holder.pid, str(state_dir))
    ip("link", "del", "ctr0", netns_pid=holder.pid)
    netdevices.move_back(str(state_dir))
    assert "linux.netDevices." + device in capsys.readouterr().err
    assert not is_mount_point(state_dir / netdevices.NETNS_PIN)
    assert os.listdir(state_dir) == []


def test_move_back_leaves_the_device_when_its_name_was_taken_on_the_host(
        device: str, holder: subprocess.Popen, state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    netdevices.move_in(config({device: {"name": "ctr0"}}), holder.pid, str(state_dir))
    ip("link", "add", device, "type", "veth", "peer", "name", f"{device}q")
    try:
        netdevices.move_back(str(state_dir))
        assert f"the host has another device named {device}" in capsys.readouterr().err
        assert "ctr0" in names_in(holder.pid)
        assert not is_mount_point(state_dir / netdevices.NETNS_PIN)
    finally:
        ip("link", "del", f"{device}q", check=False)


def test_a_joined_namespace_keeps_the_devices(device: str, holder: subprocess.Popen, state_dir: Path) -> None:
    """A namespace given by path belongs to its maker: no pin, nothing moved back (as runc)."""
    path = f"/proc/{holder.pid}/ns/net"
    netdevices.move_in(config({device: {}}, {"type": "network", "path": path}), holder.pid, str(state_dir))
    assert os.listdir(state_dir) == []
    netdevices.move_back(str(state_dir))
    assert addresses(link(device, holder.pid)) == expected_addresses()
    assert link(device) is None


def test_move_back_with_an_unreadable_record_still_drops_the_pin(device: str, holder: subprocess.Popen,
                                                                 state_dir: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    netdevices.move_in(config({device: {}}), holder.pid, str(state_dir))
    (state_dir / netdevices.RECORD).write_text("{not json")
    netdevices.move_back(str(state_dir))
    assert "devices not moved back" in capsys.readouterr().err
    assert not is_mount_point(state_dir / netdevices.NETNS_PIN)
    assert os.listdir(state_dir) == []
