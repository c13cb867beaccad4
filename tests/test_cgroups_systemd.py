"""`--systemd-cgroup` against a real systemd, in the test VM: pure cgroup v2 (`make test-cgroup2`) or hybrid
(`make test-cgroup-hybrid`: the v1 driver, SystemdV1Manager).

The VM has no systemd, so the module boots one: systemd as PID 1 of new pid, mount and cgroup namespaces
("systemd in a container", container=pyrunc-test), rooted at a test cgroup of the VM (one per hierarchy on
hybrid), with a tmpfs /run, its own cgroup mounts (v2: one cgroup2; hybrid: what a container manager gives
a container on a hybrid host, a tmpfs at /sys/fs/cgroup holding every v1 hierarchy, name=systemd and the
unified cgroup2, mounted inside the cgroup namespace, read-write), and a unit search path holding one empty
target (nothing installed on the host gets started; slices and scopes need no unit files). pyrunc runs in
that systemd's pid, mount and cgroup namespaces (nsenter), as it would on a host booted with systemd, and
reaches it on /run/systemd/private (there is no system bus), except in the last test, which starts one
(dbus-daemon as dbus.service) and hides the private socket from pyrunc. What systemd did is checked with
systemctl and in the cgroup files.
"""

from __future__ import annotations

import json
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
HYBRID = not paths.is_pure_v2()  # the VM's other layout (CGROUP_VM_MODE=hybrid): the v1 driver
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
    not (IN_VM and os.geteuid() == 0 and os.path.exists(SYSTEMD)),
    reason="boots systemd as a container's PID 1: only inside the test VM (make test-cgroup2, test-cgroup-hybrid)")


class Hierarchy:
    """A cgroup hierarchy of the VM: where it is mounted and how to mount it again in a cgroup namespace."""

    def __init__(self, mountpoint: str, fstype: str, super_options: str) -> None:
        self.mountpoint = Path(mountpoint)
        self.fstype = fstype
        options = [o for o in super_options.split(",") if o not in ("rw", "ro")]
        # v1: the same controllers (or name) select the existing hierarchy; cgroup2's options are global.
        self.options = ",".join(["none", *options] if options[0].startswith("name=") else options) \
            if fstype == "cgroup" else ""

    @property
    def name(self) -> str:
        return self.mountpoint.name

    def mount_command(self, target: str) -> str:
        options = f"-o {self.options} " if self.options else ""
        return f"mount -t {self.fstype} {options}{self.fstype} {target}"


def vm_hierarchies() -> list[Hierarchy]:
    """The VM's cgroup mounts: v2, the one at /sys/fs/cgroup; hybrid, those below it (unified last)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        fstype = fields[fields.index("-") + 1]
        if fstype in ("cgroup", "cgroup2") and (fields[4] + "/").startswith(paths.CGROUP_ROOT + "/"):
            found.append(Hierarchy(fields[4], fstype, fields[-1]))
    return sorted(found, key=lambda h: h.fstype == "cgroup2")


def container_cgroup_setup(hierarchies: list[Hierarchy]) -> str:
    """The shell commands that give systemd its cgroup mounts, once in its cgroup namespace."""
    if not HYBRID:
        return "umount /sys/fs/cgroup && mount -t cgroup2 cgroup2 /sys/fs/cgroup"
    root = paths.CGROUP_ROOT
    commands = [f"umount -R {root}", f"mount -t tmpfs -o nosuid,nodev,noexec,mode=0755 tmpfs {root}"]
    for hierarchy in hierarchies:
        target = f"{root}/{hierarchy.name}"
        commands += [f"mkdir {shlex.quote(target)}", hierarchy.mount_command(shlex.quote(target))]
        if hierarchy.fstype == "cgroup" and "," in hierarchy.name:  # cpu -> cpu,cpuacct, as on the host
            commands += [f"ln -s {shlex.quote(hierarchy.name)} {root}/{member}" for member in hierarchy.name.split(",")]
    return " && ".join(commands)


class Systemd:
    """systemd running as PID 1 of its own namespaces, with its root at the test cgroup of each of the VM's
    hierarchies (`roots`); `cgroup` is the one in the cgroup2 hierarchy (hybrid: the unified one)."""

    def __init__(self, workdir: Path) -> None:
        self.hierarchies = vm_hierarchies()
        name = f"pyrunc-systemd-{os.getpid()}"
        self.roots = [h.mountpoint / name for h in self.hierarchies]
        self.cgroup = self.roots[-1]
        # Where pyrunc runs: inside systemd's tree, as from a service or a login session. (systemd cannot move
        # a process from outside its cgroup namespace into a unit: nsdelegate makes it a delegation boundary.)
        # Only in the cgroup2 hierarchy: in v1 ones (no delegation boundary) pyrunc stays where it is, out of
        # systemd's sight: systemd would remove an empty cgroup it does not know there, and tries to migrate
        # the processes of its root cgroup.
        self.client_cgroups = [root / "pyrunc-test-client"
                               for h, root in zip(self.hierarchies, self.roots, strict=True) if h.fstype == "cgroup2"]
        self.log = workdir / "systemd.log"
        units = workdir / "units"
        units.mkdir()
        (units / TARGET).write_text("[Unit]\nDescription=pyrunc systemd driver tests\n")
        for name, text in DBUS_UNITS.items():
            (units / name).write_text(text)
        # Outer sh: PID 1 of the new pid namespace; it moves into the test cgroups, then a cgroup namespace is
        # made there (unshare's own process stays in the VM's root cgroup: the test cgroup must stay empty of
        # processes for systemd to hand controllers down). Inner sh: mounts, then becomes systemd.
        inner = (f"mount -t proc proc /proc && {container_cgroup_setup(self.hierarchies)}"
                 f" && mount -t tmpfs -o mode=0755 tmpfs /run && exec {SYSTEMD} --unit={TARGET} --log-target=console")
        outer = f"{join_command(self.roots)} && exec unshare --cgroup -- sh -c {shlex.quote(inner)}"
        env = {"PATH": os.environ["PATH"], "container": "pyrunc-test", "SYSTEMD_UNIT_PATH": str(units)}
        started = time.monotonic()
        self.launcher: subprocess.Popen | None = None
        self.pid = 0
        try:
            for directory in dict.fromkeys([*self.roots, *self.client_cgroups]):
                directory.mkdir()
                inherit_cpuset(directory)
            with self.log.open("wb") as log:
                self.launcher = subprocess.Popen(
                    ["unshare", "--pid", "--fork", "--kill-child", "--mount", "--propagation", "private", "--",
                     "sh", "-c", outer], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
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
        assert state.stdout.strip() == "running", \
            f"systemd is {state.stdout.strip()!r} ({state.stderr.strip()}): {self.log_tail()}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""

    def nsenter_command(self, *command: str) -> list[str]:
        """A command run in systemd's pid, mount and cgroup namespaces, from a cgroup of its tree."""
        script = f'{join_command(self.client_cgroups)} && exec nsenter -t {self.pid} -m -C -p -- "$@"'
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
        remove the test cgroups (their processes died with the pid namespace)."""
        if self.launcher:
            self._stop_launcher(self.launcher)
        walked = [entry for root in self.roots for entry in os.walk(root)]
        for directory, _, _ in sorted(walked, key=lambda entry: -entry[0].count("/")):
            deadline = time.monotonic() + 5
            while True:
                try:
                    os.rmdir(directory)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)

    def _stop_launcher(self, launcher: subprocess.Popen) -> None:
        if self.pid and launcher.poll() is None:
            self.nsenter("systemctl", "--force", "exit", timeout=EXIT_TIMEOUT)
        try:
            launcher.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            if self.pid:
                os.kill(self.pid, signal.SIGKILL)
            launcher.kill()
            launcher.wait()

    def in_each(self, cgroup: str) -> list[Path]:
        """A cgroup of systemd's tree ("/system.slice/x.scope") in each hierarchy."""
        return [root / cgroup.lstrip("/") for root in self.roots]

    def v1(self, controller: str, cgroup: str) -> Path:
        """A cgroup in the v1 hierarchy of a controller (hybrid only)."""
        return Path(paths.CGROUP_ROOT, controller, self.cgroup.name, cgroup.lstrip("/"))

    def assert_member(self, proc_cgroup: str, cgroup: str, processes: int = 1) -> None:
        """/proc/PID/cgroup (of `processes` processes, concatenated) puts them in `cgroup` in every hierarchy."""
        found = sorted(line.split(":", 2)[2] for line in proc_cgroup.splitlines())
        assert found == [cgroup] * (processes * len(self.roots)), proc_cgroup


def inherit_cpuset(directory: Path) -> None:
    """A new v1 cpuset cgroup has no CPUs nor memory nodes: nothing could join it. Give it its parent's.
    (On cgroup v2 an empty cpuset.cpus means the parent's: there is nothing to do.)"""
    if (directory / "cgroup.controllers").exists():
        return
    for name in ("cpuset.cpus", "cpuset.mems"):
        if (directory / name).exists() and not (directory / name).read_text().strip():
            (directory / name).write_text((directory.parent / name).read_text())


def join_command(directories: list[Path]) -> str:
    """sh commands moving the shell into each of these cgroups."""
    return " && ".join(f"echo $$ > {shlex.quote(str(d))}/cgroup.procs" for d in directories)


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
    # systemd's cgroup mounts were made inside its cgroup namespace: the VM's options (nsdelegate...) are intact
    assert _cgroup_mount_options() == options


def _cgroup_mount_options() -> list[tuple[str, str]]:
    """Each cgroup mount of the VM and its options."""
    return [(fields[4], fields[-1]) for fields in map(str.split, Path("/proc/self/mountinfo").read_text().splitlines())
            if fields[fields.index("-") + 1] in ("cgroup", "cgroup2")]


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
    leftovers = sorted(str(p) for root in systemd.roots for p in root.rglob("*.scope") if p.name != "init.scope")
    assert not leftovers, f"scopes left behind: {leftovers}"


@pytest.fixture
def bundle(make_bundle) -> Bundle:
    made = make_bundle()
    made.config["linux"]["cgroupsPath"] = ""  # systemd's default: system.slice:runc:<id>
    return made


def test_scope_with_limits_lives_until_delete(systemd: Systemd, rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    container_id = new_id()
    unit = f"runc-{container_id}.scope"
    cgroup = f"/system.slice/{unit}"
    scope = systemd.cgroup / cgroup.lstrip("/")
    bundle.set_args("sleep", "600")
    bundle.config["linux"]["resources"].update(memory={"limit": 64 * MiB}, pids={"limit": 50}, cpu={"shares": 512})
    rt.create(container_id, bundle)

    memory = "MemoryLimit" if HYBRID else "MemoryMax"
    shown = systemd.show(unit, "ActiveState", "ControlGroup", memory, "TasksMax", "Delegate", "DevicePolicy")
    assert shown == {"ActiveState": "active", "ControlGroup": cgroup, memory: str(64 * MiB),
                     "TasksMax": "50", "Delegate": "yes", "DevicePolicy": "strict"}
    if HYBRID:  # the scope in every hierarchy (systemd's, pyrunc's for cpuset, freezer...), the limits in v1 files
        assert [d for d in systemd.in_each(cgroup) if not d.is_dir()] == []
        assert systemd.show(unit, "CPUShares") == {"CPUShares": "512"}
        assert systemd.v1("memory", cgroup).joinpath("memory.limit_in_bytes").read_text() == f"{64 * MiB}\n"
        assert systemd.v1("pids", cgroup).joinpath("pids.max").read_text() == "50\n"
        assert systemd.v1("cpu", cgroup).joinpath("cpu.shares").read_text() == "512\n"
    else:
        assert (scope / "memory.max").read_text() == f"{64 * MiB}\n"
        assert (scope / "pids.max").read_text() == "50\n"
        assert (scope / "cpu.weight").read_text() == systemd.show(unit, "CPUWeight")["CPUWeight"] + "\n"
    # The init (pid 1 inside) and an exec'd process are in the scope; systemd's device policy lets /dev/null through.
    rt.start(container_id)
    out = rt("exec", container_id, "sh", "-c", "cat /proc/1/cgroup /proc/self/cgroup </dev/null", check=True).stdout
    systemd.assert_member(out, cgroup, processes=2)

    rt("update", "--pids-limit", "60", "--memory", str(96 * MiB), container_id, check=True)
    assert systemd.show(unit, "TasksMax", memory) == {"TasksMax": "60", memory: str(96 * MiB)}
    pids = systemd.v1("pids", cgroup) if HYBRID else scope
    assert (pids / "pids.max").read_text() == "60\n"
    if HYBRID:
        assert systemd.v1("memory", cgroup).joinpath("memory.limit_in_bytes").read_text() == f"{96 * MiB}\n"
    else:
        assert (scope / "memory.max").read_text() == f"{96 * MiB}\n"
    # Devices: systemd's policy (on v1 with the container frozen meanwhile), then pyrunc's own rules.
    tun = {"allow": True, "type": "c", "major": 10, "minor": 200, "access": "rwm"}
    resources_file = tmp_path / "devices.json"
    resources_file.write_text(json.dumps({"devices": [tun]}))
    rt("update", "--resources", str(resources_file), container_id, check=True)
    shown = systemd.nsenter("systemctl", "show", unit, "--property=DeviceAllow").stdout
    assert "/dev/char/10:200 rwm" in shown, shown
    if HYBRID:
        assert "c 10:200 rwm" in systemd.v1("devices", cgroup).joinpath("devices.list").read_text().splitlines()
        assert systemd.v1("freezer", cgroup).joinpath("freezer.state").read_text() == "THAWED\n"
    assert rt.state(container_id)["status"] == "running"
    rt("exec", container_id, "true", check=True)
    rt("pause", container_id, check=True)
    assert rt.state(container_id)["status"] == "paused"
    if HYBRID:
        assert systemd.v1("freezer", cgroup).joinpath("freezer.state").read_text() == "FROZEN\n"
    else:
        assert (scope / "cgroup.freeze").read_text() == "1\n"
    rt("resume", container_id, check=True)
    assert rt.state(container_id)["status"] == "running"

    rt.delete(container_id, force=True)
    assert systemd.is_gone(unit)
    assert [d for d in systemd.in_each(cgroup) if d.exists()] == []


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
    systemd.assert_member(seen.read_text(), cgroup)
    assert systemd.show(unit, "ActiveState") == {"ActiveState": "inactive"}
    assert [d for d in systemd.in_each(cgroup) if d.exists()] == []
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
    systemd.assert_member(out, f"/pyrunctest.slice/pyrunctest-sub.slice/custom-{container_id}.scope")
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
    for directory in systemd.in_each(f"/pyrunctest.slice/{unit}"):
        assert (directory / "cgroup.procs").read_text().split(), directory  # the init joined
    rt.start(container_id)
    rt.wait_status(container_id, "stopped")
    assert systemd.show(unit, "ActiveState") == {"ActiveState": "active"}  # a slice outlives its processes
    rt.delete(container_id)
    assert systemd.show(unit, "ActiveState") == {"ActiveState": "inactive"}
    assert [d for d in systemd.in_each(f"/pyrunctest.slice/{unit}") if d.exists()] == []


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
