"""config-linux.md "Network Devices": `linux.netDevices` moves host interfaces into the container.

"netDevices (object, OPTIONAL) - A set of network devices that MUST be made available in the container";
"name (string, OPTIONAL) - the name of the network device inside the container namespace"; "The runtime
MUST preserve existing network interface attributes, including all permanent IP addresses ... with
global scope"; "The runtime MUST set the network device state to "up" after moving it"; "The runtime
MUST check if moving the network interface to the container namespace is possible".

pyrunc also returns the devices to the host at delete (under their original names, with their
addresses). runc 1.1.5 predates the field and ignores it: every test here is a strict xfail for runc.

The kernel here has no `dummy` driver: a test device is a veth end whose peer stays on the host.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator

import pytest
from helpers import Bundle, Runtime, new_id

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="moving network devices needs root")

NEWER_THAN_RUNC = "linux.netDevices is runtime-spec 1.2, newer than runc 1.1.5"
ADDRESS = "10.232.9.1/24"
ADDRESS6 = "fd00:232:9::1/64"


def _host_link(name: str) -> dict | None:
    done = subprocess.run(["ip", "-j", "addr", "show", "dev", name], capture_output=True, text=True)
    return json.loads(done.stdout)[0] if done.returncode == 0 else None


def _global_addresses(entry: dict) -> set[str]:
    return {f"{a['local']}/{a['prefixlen']}" for a in entry["addr_info"] if a.get("scope") == "global"}


@pytest.fixture
def veth() -> Iterator[str]:
    """A host interface (veth end) with an IPv4 and an IPv6 address, up; removed afterwards."""
    name = f"psd{os.getpid() % 100000}{new_id()[1:5]}"
    subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", f"{name}p"], check=True)
    try:
        subprocess.run(["ip", "addr", "add", ADDRESS, "dev", name], check=True)
        subprocess.run(["ip", "addr", "add", ADDRESS6, "dev", name, "nodad"], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "link", "del", f"{name}p"], capture_output=True)
        subprocess.run(["ip", "link", "del", name], capture_output=True)


@pytest.fixture
def host_device(veth: str, xfail_runc: Callable[[str], None]) -> str:
    xfail_runc(NEWER_THAN_RUNC)
    return veth


def test_device_is_moved_in_renamed_and_back_at_delete(rt: Runtime, bundle: Bundle, host_device: str) -> None:
    """Inside: the device under its new name, up, with its addresses. After delete: back on the host
    under its own name with its addresses (pyrunc; the spec leaves the way back to the namespace)."""
    bundle.config["linux"]["netDevices"] = {host_device: {"name": "ctr0"}}
    bundle.set_args("ip", "addr", "show", "ctr0")
    code, out, err = rt.run_container(bundle)
    assert code == 0, f"exit {code}, stderr: {err}"
    assert "ctr0" in out and ",UP" in out, out
    assert f"inet {ADDRESS}" in out and f"inet6 {ADDRESS6}" in out, out
    back = _host_link(host_device)
    assert back is not None, "the device did not come back to the host after delete"
    assert _global_addresses(back) == {ADDRESS, ADDRESS6}
    assert "UP" in back["flags"]


def test_device_stays_in_the_container_until_delete(rt: Runtime, bundle: Bundle, host_device: str) -> None:
    """While the container exists (even stopped), the device is not on the host; delete returns it."""
    bundle.config["linux"]["netDevices"] = {host_device: {}}
    bundle.set_args("true")
    cid = new_id()
    rt.create(cid, bundle)
    try:
        assert _host_link(host_device) is None, "the device is still on the host after create"
        rt.start(cid)
        rt.wait_status(cid, "stopped")
        assert _host_link(host_device) is None, "the device left the stopped container before delete"
    finally:
        rt.delete(cid, force=True)
    assert _global_addresses(_host_link(host_device)) == {ADDRESS, ADDRESS6}


def test_missing_device_fails_create(rt: Runtime, bundle: Bundle, xfail_runc: Callable[[str], None]) -> None:
    """"The runtime MUST check if moving the network interface ... is possible": no such device → error,
    and nothing left behind (the leak check)."""
    xfail_runc(NEWER_THAN_RUNC)
    bundle.config["linux"]["netDevices"] = {"psdmissing0": {}}
    cid = new_id()
    result = rt.create(cid, bundle, check=False)
    assert result.returncode == 1, f"create exited {result.returncode}: {result.stderr}"
    assert "psdmissing0" in result.stderr
    assert cid not in rt.container_ids()


def test_name_taken_in_the_container_fails_create(rt: Runtime, bundle: Bundle, host_device: str) -> None:
    """"If a network device with the specified name already exists in the container namespace, the
    runtime MUST generate an error": `lo` always exists in a new network namespace."""
    bundle.config["linux"]["netDevices"] = {host_device: {"name": "lo"}}
    cid = new_id()
    result = rt.create(cid, bundle, check=False)
    assert result.returncode == 1, f"create exited {result.returncode}: {result.stderr}"
    assert host_device in result.stderr
    assert _global_addresses(_host_link(host_device)) == {ADDRESS, ADDRESS6}


def test_without_a_network_namespace_create_fails(rt: Runtime, bundle: Bundle, host_device: str) -> None:
    """Devices cannot be moved into the host's own namespace: create errors, the device stays put."""
    linux = bundle.config["linux"]
    linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
    linux["netDevices"] = {host_device: {}}
    result = rt.create(new_id(), bundle, check=False)
    assert result.returncode == 1, f"create exited {result.returncode}: {result.stderr}"
    assert "netDevices" in result.stderr
    assert _host_link(host_device) is not None


def test_failed_create_after_the_move_returns_the_device(rt: Runtime, bundle: Bundle, veth: str) -> None:
    """runtime.md "Errors": after a failed create the environment MUST be as if it had never been
    attempted. The mount fails inside the init, after the device was moved: it must be back.
    (runc ignores netDevices, so it passes there too.)"""
    bundle.config["linux"]["netDevices"] = {veth: {"name": "ctr0"}}
    bundle.config["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/nonexistent-psd",
                                    "options": ["rbind"]})
    result = rt.create(new_id(), bundle, check=False)
    assert result.returncode == 1, f"create exited {result.returncode}: {result.stderr}"
    back = _host_link(veth)
    assert back is not None, "the device was not returned to the host"
    assert _global_addresses(back) == {ADDRESS, ADDRESS6}
    assert "UP" in back["flags"]
