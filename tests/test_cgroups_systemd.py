"""`--systemd-cgroup` against a real systemd, in the cgroup v2 VM (`make test-cgroup2`).

The VM has no systemd, so the module boots one: systemd as PID 1 of new pid, mount and cgroup namespaces
("systemd in a container", container=pyrunc-test), rooted at a test cgroup of the VM, with a tmpfs /run,
its own cgroup2 mount, and a unit search path holding one empty target (nothing installed on the host gets
started; slices and scopes need no unit files). pyrunc runs in that systemd's pid, mount and cgroup
namespaces (nsenter), as it would on a host booted with systemd, and reaches it on /run/systemd/private
(there is no system bus), except in the last test, which starts one (dbus-daemon as dbus.service) and hides
the private socket from pyrunc. What systemd did is checked with systemctl and in the cgroup files.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO, Bundle, Runtime, new_id

from pyrunc.cgroups import paths

SYSTEMD = "/lib/systemd/systemd"
PYRUNC = REPO / ".venv" / "bin" / "pyrunc"
IN_VM = os.environ.get("CGROUP2_VM") == "1"
BOOT_TIMEOUT = 90.0
EXIT_TIMEOUT = 20.0
TARGET = "pyrunc-test.target"
# Debian's dbus units without their default dependencies (sysinit.target and co. are not on the unit path).
DBUS_UNITS = {
    "dbus.socket": "[Unit]\nDefaultDependencies=no\n[Socket]\nListenStream=/run/dbus/system_bus_socket\n",
    "dbus.service": ("[Unit]\nDefaultDependencies=no\nRequires=dbus.socket\n[Service]\nType=notify\n"
                     "ExecStart=/usr/bin/dbus-daemon --system --address=systemd: --nofork --nopidfile "
                     "--systemd-activation\n"),
}
# Run the rest of a command where systemd's private socket is out of sight (/run/systemd/system stays).
HIDE_PRIVATE_SOCKET = ("unshare", "--mount", "--propagation", "private", "sh", "-c",
                       'mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && exec "$@"', "sh")
MiB = 1 << 20

pytestmark = pytest.mark.skipif(
    not (IN_VM and os.geteuid() == 0 and os.path.exists(SYSTEMD) and paths.is_pure_v2()),
    reason="boots systemd as a container's PID 1: only inside the cgroup v2 VM (make test-cgroup2)")


class Systemd:
    """systemd running as PID 1 of its own namespaces, with its root at `cgroup` in the VM's hierarchy."""

    def __init__(self, workdir: Path) -> None:
        self.cgroup = Path(paths.CGROUP_ROOT) / f"pyrunc-systemd-{os.getpid()}"
        # Where pyrunc runs: inside systemd's tree, as from a service or a login session. (systemd cannot move
        # a process from outside its cgroup namespace into a unit: nsdelegate makes it a delegation boundary.)
        self.client_cgroup = self.cgroup / "pyrunc-test-client"
        self.log = workdir / "systemd.log"
        units = workdir / "units"
        units.mkdir()
        (units / TARGET).write_text("[Unit]\nDescription=pyrunc systemd driver tests\n")
        for name, text in DBUS_UNITS.items():
            (units / name).write_text(text)
        self.cgroup.mkdir()
        self.client_cgroup.mkdir()
        # Outer sh: PID 1 of the new pid namespace; it moves into the test cgroup, then a cgroup namespace is
        # made there (unshare's own process stays in the VM's root cgroup: the test cgroup must stay empty of
        # processes for systemd to hand controllers down). Inner sh: mounts, then becomes systemd.
        inner = ("mount -t proc proc /proc && umount /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup"
                 f" && mount -t tmpfs -o mode=0755 tmpfs /run && exec {SYSTEMD} --unit={TARGET} --log-target=console")
        outer = f"echo $$ > {self.cgroup}/cgroup.procs && exec unshare --cgroup -- sh -c '{inner}'"
        env = {"PATH": os.environ["PATH"], "container": "pyrunc-test", "SYSTEMD_UNIT_PATH": str(units)}
        started = time.monotonic()
        with self.log.open("wb") as log:
            self.launcher = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--propagation", "private", "--",
                 "sh", "-c", outer], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.pid = 0
        try:
            self.pid = self._wait_for_pid(started + BOOT_TIMEOUT)
            self._wait_until_running(started + BOOT_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        self.boot_seconds = time.monotonic() - started

    def _wait_for_pid(self, deadline: float) -> int:
        """The launcher's child once it is systemd (exec'd after the mounts)."""
        children = Path(f"/proc/{self.launcher.pid}/task/{self.launcher.pid}/children")
        while time.monotonic() < deadline:
            if self.launcher.poll() is not None:
                raise AssertionError(f"systemd's launcher exited {self.launcher.returncode}: {self.log_tail()}")
            for pid in children.read_text().split():
                if Path(f"/proc/{pid}/exe").resolve() == Path(SYSTEMD).resolve():
                    return int(pid)
            time.sleep(0.1)
        raise AssertionError(f"systemd did not start in {BOOT_TIMEOUT:g}s: {self.log_tail()}")

    def _wait_until_running(self, deadline: float) -> None:
        private = Path(f"/proc/{self.pid}/root/run/systemd/private")
        while not private.exists():
            if time.monotonic() > deadline or self.launcher.poll() is not None:
                raise AssertionError(f"systemd did not open {private}: {self.log_tail()}")
            time.sleep(0.1)
        state = self.nsenter("systemctl", "is-system-running", "--wait", timeout=deadline - time.monotonic())
        assert state.stdout.strip() == "running", f"systemd is {state.stdout.strip()!r}: {self.log_tail()}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def nsenter_command(self, *command: str) -> list[str]:
        """A command run in systemd's pid, mount and cgroup namespaces, from a cgroup of its tree."""
        script = f'echo $$ > {self.client_cgroup}/cgroup.procs && exec nsenter -t {self.pid} -m -C -p -- "$@"'
        return ["sh", "-c", script, "sh", *command]

    def nsenter(self, *command: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run(self.nsenter_command(*command), capture_output=True, text=True,
                              timeout=max(timeout, 1.0))

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """`systemctl show` of some properties of a unit."""
        result = self.nsenter("systemctl", "show", unit, *(f"--property={p}" for p in properties))
        assert result.returncode == 0, result.stderr
        return dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)

    def wait_on_the_bus(self, timeout: float = 30.0) -> None:
        """Until systemd answers on the system bus (it connects once dbus.service is up)."""
        deadline = time.monotonic() + timeout
        ping = ("busctl", "--system", "call", "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                "org.freedesktop.DBus.Peer", "Ping")
        while (result := self.nsenter(*ping)).returncode != 0:
            assert time.monotonic() < deadline, f"systemd is not on the system bus: {result.stderr}"
            time.sleep(0.2)

    def is_gone(self, unit: str) -> bool:
        return self.show(unit, "LoadState", "ActiveState") == {"LoadState": "not-found", "ActiveState": "inactive"}

    def stop(self) -> None:
        """Ask systemd to exit (Manager.Exit: allowed in a container), SIGKILL it if it does not, then
        remove the test cgroup (its processes died with the pid namespace)."""
        if self.pid and self.launcher.poll() is None:
            self.nsenter("systemctl", "--force", "exit", timeout=EXIT_TIMEOUT)
        try:
            self.launcher.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            if self.pid:
                os.kill(self.pid, signal.SIGKILL)
            self.launcher.kill()
            self.launcher.wait()
        for directory, _, _ in sorted(os.walk(self.cgroup), key=lambda entry: -entry[0].count("/")):
            deadline = time.monotonic() + 5
            while True:
                try:
                    os.rmdir(directory)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)


@pytest.fixture(scope="module")
def systemd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Systemd]:
    options = _cgroup_mount_options()
    instance = Systemd(tmp_path_factory.mktemp("systemd"))
    print(f"systemd {os.path.basename(SYSTEMD)} came up in {instance.boot_seconds:.1f}s")
    results = os.environ.get("CGROUP2_VM_RESULTS")
    if results:
        Path(results, "systemd-boot-seconds").write_text(f"{instance.boot_seconds:.2f}\n")
    try:
        yield instance
    finally:
        instance.stop()
    print(f"systemd's namespace ended with status {instance.launcher.returncode} (0: it exited when asked)")
    # systemd mounted its own cgroup2 inside its cgroup namespace: the VM's options (nsdelegate...) are intact
    assert _cgroup_mount_options() == options


def _cgroup_mount_options() -> str:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == paths.CGROUP_ROOT:
            return fields[-1]
    return ""


def runtime_in(systemd: Systemd, state_root: Path, wrapper: Path, *prefix: str) -> Runtime:
    """The test harness's Runtime, running `[prefix...] pyrunc --systemd-cgroup` in systemd's namespaces."""
    command = shlex.join(systemd.nsenter_command(*prefix, str(PYRUNC), "--systemd-cgroup"))
    wrapper.write_text(f'#!/bin/sh\nexec {command} "$@"\n')
    wrapper.chmod(0o755)
    runtime = Runtime(state_root)
    runtime.path = str(wrapper)
    return runtime


@pytest.fixture
def rt(systemd: Systemd, state_root: Path, tmp_path: Path) -> Iterator[Runtime]:
    """pyrunc --systemd-cgroup, run in systemd's namespaces; containers left over are force-deleted."""
    runtime = runtime_in(systemd, state_root, tmp_path / "pyrunc-in-systemd")
    yield runtime
    runtime.force_delete_all()
    leftovers = sorted(p.name for p in systemd.cgroup.rglob("*.scope") if p.name != "init.scope")
    assert not leftovers, f"scopes left behind: {leftovers}"


@pytest.fixture
def bundle(make_bundle) -> Bundle:
    made = make_bundle()
    made.config["linux"]["cgroupsPath"] = ""  # systemd's default: system.slice:runc:<id>
    return made


def test_scope_with_limits_lives_until_delete(systemd: Systemd, rt: Runtime, bundle: Bundle) -> None:
    container_id = new_id()
    unit = f"runc-{container_id}.scope"
    scope = systemd.cgroup / "system.slice" / unit
    bundle.set_args("sleep", "600")
    bundle.config["linux"]["resources"].update(memory={"limit": 64 * MiB}, pids={"limit": 50})
    rt.create(container_id, bundle)

    shown = systemd.show(unit, "ActiveState", "ControlGroup", "MemoryMax", "TasksMax", "Delegate", "DevicePolicy")
    assert shown == {"ActiveState": "active", "ControlGroup": f"/system.slice/{unit}", "MemoryMax": str(64 * MiB),
                     "TasksMax": "50", "Delegate": "yes", "DevicePolicy": "strict"}
    assert (scope / "memory.max").read_text() == f"{64 * MiB}\n"
    assert (scope / "pids.max").read_text() == "50\n"
    # The init (pid 1 inside) and an exec'd process are in the scope; systemd's device policy lets /dev/null through.
    rt.start(container_id)
    out = rt("exec", container_id, "sh", "-c", "cat /proc/1/cgroup /proc/self/cgroup </dev/null", check=True).stdout
    assert out.splitlines() == [f"0::/system.slice/{unit}"] * 2

    rt("update", "--pids-limit", "60", container_id, check=True)
    assert systemd.show(unit, "TasksMax") == {"TasksMax": "60"}
    assert (scope / "pids.max").read_text() == "60\n"
    rt("pause", container_id, check=True)
    assert rt.state(container_id)["status"] == "paused"
    assert (scope / "cgroup.freeze").read_text() == "1\n"
    rt("resume", container_id, check=True)
    assert rt.state(container_id)["status"] == "running"

    rt.delete(container_id, force=True)
    assert systemd.is_gone(unit)
    assert not scope.exists()


@pytest.mark.parametrize("kind", ["scope", "slice"])
def test_failed_create_leaves_no_unit(systemd: Systemd, rt: Runtime, bundle: Bundle, tmp_path: Path,
                                      kind: str) -> None:
    """A createRuntime hook records the init's cgroup (the unit exists then), then fails the create:
    create's cleanup stops the unit. (An emptied scope would also stop by itself; a slice would not.)"""
    container_id = new_id()
    if kind == "scope":
        unit, cgroup = f"runc-{container_id}.scope", f"/system.slice/runc-{container_id}.scope"
    else:
        unit, cgroup = f"pyrunctest-{container_id}.slice", f"/pyrunctest.slice/pyrunctest-{container_id}.slice"
        bundle.config["linux"]["cgroupsPath"] = f"system.slice::{unit}"
    seen = tmp_path / "init-cgroup"
    record = f"""pid=$(tr -d "\\n" | sed 's/.*"pid": *\\([0-9]*\\).*/\\1/'); cat /proc/$pid/cgroup > {seen}; exit 1"""
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", record]}]}
    bundle.set_args("true")
    result = rt.create(container_id, bundle, check=False)
    assert result.returncode == 1 and "createRuntime" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert seen.read_text() == f"0::{cgroup}\n"
    assert systemd.show(unit, "ActiveState") == {"ActiveState": "inactive"}
    assert not (systemd.cgroup / cgroup.lstrip("/")).exists()
    assert rt.container_ids() == []


def test_unit_of_another_container_is_refused_and_left_alone(systemd: Systemd, rt: Runtime, make_bundle) -> None:
    first, second = new_id(), new_id()
    bundles = [make_bundle(), make_bundle()]
    for made in bundles:
        made.set_args("sleep", "600")
        made.config["linux"]["cgroupsPath"] = "system.slice:pyrunctest:shared"
    rt.create(first, bundles[0])
    result = rt.create(second, bundles[1], check=False)
    assert result.returncode == 1
    assert "start systemd unit pyrunctest-shared.scope: org.freedesktop.systemd1.UnitExists" in result.stderr
    assert systemd.show("pyrunctest-shared.scope", "ActiveState") == {"ActiveState": "active"}
    assert (systemd.cgroup / "system.slice/pyrunctest-shared.scope/cgroup.procs").read_text().split()
    assert rt.container_ids() == [first]
    rt.delete(first, force=True)
    assert systemd.is_gone("pyrunctest-shared.scope")


def test_custom_slice_prefix_and_name(systemd: Systemd, rt: Runtime, bundle: Bundle) -> None:
    container_id = new_id()
    bundle.config["linux"]["cgroupsPath"] = f"pyrunctest-sub.slice:custom:{container_id}"
    bundle.set_args("cat", "/proc/self/cgroup")
    code, out, err = rt.run_container(bundle, container_id)
    assert (code, err) == (0, "")
    assert out == f"0::/pyrunctest.slice/pyrunctest-sub.slice/custom-{container_id}.scope\n"
    assert systemd.is_gone(f"custom-{container_id}.scope")
    assert systemd.show("pyrunctest-sub.slice", "ActiveState") == {"ActiveState": "active"}


def test_slice_as_the_container_cgroup(systemd: Systemd, rt: Runtime, bundle: Bundle) -> None:
    """A name ending in .slice: a transient slice, which stays active until delete stops it."""
    container_id = new_id()
    unit = f"pyrunctest-{container_id}.slice"
    bundle.config["linux"]["cgroupsPath"] = f"system.slice:ignored:{unit}"
    bundle.set_args("cat", "/proc/self/cgroup")
    rt.create(container_id, bundle)
    assert systemd.show(unit, "ActiveState", "ControlGroup") == {
        "ActiveState": "active", "ControlGroup": f"/pyrunctest.slice/{unit}"}
    assert (systemd.cgroup / "pyrunctest.slice" / unit / "cgroup.procs").read_text().split()  # the init joined
    rt.start(container_id)
    rt.wait_status(container_id, "stopped")
    assert systemd.show(unit, "ActiveState") == {"ActiveState": "active"}  # a slice outlives its processes
    rt.delete(container_id)
    assert systemd.show(unit, "ActiveState") == {"ActiveState": "inactive"}
    assert not (systemd.cgroup / "pyrunctest.slice" / unit).exists()


def test_over_the_system_bus(systemd: Systemd, rt: Runtime, bundle: Bundle, state_root: Path, tmp_path: Path) -> None:
    """With a system bus (dbus-daemon, started by this systemd) and the private socket out of pyrunc's sight,
    the unit is started and stopped through the bus daemon (Hello, AddMatch for JobRemoved, Subscribe)."""
    started = systemd.nsenter("systemctl", "start", "dbus.service")
    assert started.returncode == 0, started.stderr
    try:
        systemd.wait_on_the_bus()
        over_bus = runtime_in(systemd, state_root, tmp_path / "pyrunc-over-the-bus", *HIDE_PRIVATE_SOCKET)
        container_id = new_id()
        unit = f"runc-{container_id}.scope"
        bundle.set_args("sleep", "600")
        try:
            over_bus.create(container_id, bundle)
            assert systemd.show(unit, "ActiveState", "ControlGroup") == {
                "ActiveState": "active", "ControlGroup": f"/system.slice/{unit}"}
            over_bus.delete(container_id, force=True)
            assert systemd.is_gone(unit)
        finally:
            over_bus.force_delete_all()
    finally:
        systemd.nsenter("systemctl", "stop", "dbus.service", "dbus.socket")
