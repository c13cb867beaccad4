"""The systemd cgroup driver (`--systemd-cgroup`): the container's cgroup is a transient systemd unit.

It behaves as runc's driver does:
- `linux.cgroupsPath` is "slice:prefix:name"; without one the container goes in `system.slice` as
  `runc-<id>.scope` (the prefix stays runc's, so a config means the same unit under either runtime). The
  unit is `<prefix>-<name>.scope`, or `<name>` itself when it ends in `.slice`: the container's cgroup is
  then a transient slice, placed where its name puts it (`a-b.slice` is `/a.slice/a-b.slice`), which the
  process joins through cgroupfs (a slice holds no PIDs). A slice "-" (or "-.slice") is the root slice.
- StartTransientUnit(unit, "replace") with Description, Slice= (scope) or Wants= (slice), PIDs= and
  Delegate=yes (scope), DefaultDependencies=no, every accounting switch, the resources systemd knows and
  the device policy; then the job is awaited (JobRemoved, result "done"). All the resources and device
  rules are then also written through cgroupfs (the v1/v2 managers), since systemd knows only some of them.
- `delete`: StopUnit, awaited, ResetFailedUnit, then rmdir of what is left of the container's directories.
- `update`: SetUnitProperties (runtime) for what systemd knows, then cgroupfs, so that a daemon-reload
  does not bring back the old limits.
- Not supported: `org.systemd.property.*` annotations (ignored), rootless (the user's systemd).

A scope needs a pid when it is created, and the pid is stage-1's: `create()` (in the parent, before the
fork) only validates, computes the unit's properties and, on v1, makes the directories of the hierarchies
systemd does not manage; stage-1's `join(0)` starts the unit with PIDs=[itself], waits for it, then
applies the resources through cgroupfs and joins what systemd left alone. Until then `v2_dir()` is None
(no clone3 into a cgroup that does not exist yet). A manager rebuilt by `from_state` is placed: its
joins (exec) and every other hot-path operation are plain cgroupfs, without D-Bus.
"""

from __future__ import annotations

import os
import time

from pyrunc.cgroups import fs
from pyrunc.cgroups.v1 import V1Manager
from pyrunc.cgroups.v2 import V2Manager
from pyrunc.errors import CgroupError

DEFAULT_SLICE = "system.slice"
DEFAULT_PREFIX = "runc"
ROOT_SLICE = "-.slice"
JOB_TIMEOUT = 30.0  # seconds for systemd to run a start or stop job (runc's figure)
UINT64_MAX = 2**64 - 1  # systemd's "infinity"
DEFAULT_CPU_PERIOD = 100_000
# v1 hierarchies where systemd makes the unit's directory and places its processes; pyrunc handles the rest.
SYSTEMD_V1_CONTROLLERS = frozenset({"name=systemd", "cpu", "cpuacct", "blkio", "memory", "devices", "pids"})
# Properties older systemd versions do not know (they would refuse the whole unit): the version they came in.
MIN_VERSION = {"CPUQuotaPeriodUSec": 242, "AllowedCPUs": 244, "AllowedMemoryNodes": 244}
UNIT_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789:_.\\-")

SYSTEMD = "org.freedesktop.systemd1"
SYSTEMD_PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
PROPERTIES = "org.freedesktop.DBus.Properties"
UNIT_EXISTS = "org.freedesktop.systemd1.UnitExists"
NO_SUCH_UNIT = "org.freedesktop.systemd1.NoSuchUnit"

TYPE_CHECKING = False
if TYPE_CHECKING:
    import mmap

    from pyrunc.cgroups.dbus import Connection
    from pyrunc.cgroups.devices import Rule
    from pyrunc.cgroups.manager import Manager

    Property = tuple[str, str, object]  # name, D-Bus signature, value


# -- the unit -------------------------------------------------------------------------------------------
def expand_slice(name: str) -> str:
    """A slice's cgroup below systemd's root: "a-b.slice" → "/a.slice/a-b.slice"; "-.slice" → "/"."""
    stem = name.removesuffix(".slice")
    if stem == "-":
        return "/"
    if not stem or stem == name or "/" in name or "" in stem.split("-"):
        raise CgroupError(f"linux.cgroupsPath: {name!r} is not a valid slice name")
    components = stem.split("-")
    return "".join("/" + "-".join(components[:i + 1]) + ".slice" for i in range(len(components)))


class Unit:
    """The container's unit: its name (a .scope, or a .slice) and the slice it goes in."""

    __slots__ = ("description", "name", "slice")

    def __init__(self, name: str, slice_: str, description: str = "") -> None:
        self.name, self.slice, self.description = name, slice_, description

    @property
    def is_slice(self) -> bool:
        return self.name.endswith(".slice")

    @property
    def cgroup(self) -> str:
        """Its cgroup below systemd's root, e.g. "/system.slice/runc-x.scope"."""
        if self.is_slice:
            return expand_slice(self.name)
        return os.path.join(expand_slice(self.slice), self.name)

    def start_properties(self, pid: int, v2: bool) -> list[Property]:
        properties: list[Property] = [("Description", "s", self.description)]
        if self.is_slice:
            properties.append(("Wants", "as", [self.slice]))
        else:
            properties += [("Slice", "s", self.slice), ("PIDs", "au", [pid]), ("Delegate", "b", True)]
        properties.append(("DefaultDependencies", "b", False))
        for accounting in ("Memory", "CPU", "IO" if v2 else "BlockIO", "Tasks"):
            properties.append((f"{accounting}Accounting", "b", True))
        return properties


def parse_cgroups_path(value: str | None, container_id: str) -> Unit:
    """runc's "slice:prefix:name" (empty: system.slice, runc, the container id)."""
    if not value:
        slice_, prefix, name = DEFAULT_SLICE, DEFAULT_PREFIX, container_id
    else:
        parts = value.split(":")
        if len(parts) != 3:
            raise CgroupError(f'linux.cgroupsPath: {value!r} is not "slice:prefix:name" (needed by --systemd-cgroup)')
        slice_, prefix, name = parts
        slice_ = {"": DEFAULT_SLICE, "-": ROOT_SLICE}.get(slice_, slice_)
    if not name:
        raise CgroupError(f"linux.cgroupsPath: {value!r} has no name")
    unit = name if name.endswith(".slice") else f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    if not set(unit) <= UNIT_NAME_CHARS or len(unit) > 255:
        raise CgroupError(f"linux.cgroupsPath: {unit!r} is not a valid systemd unit name")
    expand_slice(slice_)  # the names are validated here rather than by systemd
    if unit.endswith(".slice"):
        expand_slice(unit)
    return Unit(unit, slice_, f"pyrunc container {container_id}")


# -- properties -----------------------------------------------------------------------------------------
def _u64(value: int) -> int:
    """A limit as systemd takes it: -1 (or any negative) is infinity."""
    return UINT64_MAX if value < 0 else value


def cpu_mask(text: str, where: str) -> bytes:
    """A CPU (or memory node) list as systemd's AllowedCPUs= bit mask: byte i holds CPUs 8i..8i+7."""
    from pyrunc.cgroups.resources import parse_cpu_list

    mask = bytearray()
    for cpu in parse_cpu_list(text, where):
        if cpu // 8 >= len(mask):
            mask += bytes(cpu // 8 + 1 - len(mask))
        mask[cpu // 8] |= 1 << (cpu % 8)
    return bytes(mask)


def cpu_quota_properties(quota: int, period: int) -> list[Property]:
    """CPUQuotaPerSecUSec (rounded up to whole percents of a CPU, as systemd stores it) and the period."""
    properties: list[Property] = [("CPUQuotaPeriodUSec", "t", period)] if period else []
    if quota or period:
        per_second = UINT64_MAX
        if quota > 0:
            per_second = -(-quota * 1_000_000 // (period or DEFAULT_CPU_PERIOD) // 10_000) * 10_000
        properties.append(("CPUQuotaPerSecUSec", "t", per_second))
    return properties


UNIFIED_MEMORY = {"memory.high": "MemoryHigh", "memory.low": "MemoryLow", "memory.min": "MemoryMin",
                  "memory.max": "MemoryMax", "memory.swap.max": "MemorySwapMax"}


def _unified_properties(unified: dict) -> list[Property]:
    """The `linux.resources.unified` keys systemd has a property for (the others go to cgroupfs only)."""
    properties: list[Property] = []
    for key, raw in unified.items():
        value = str(raw).strip()
        try:
            if key == "cpu.max":
                quota, _, period = value.partition(" ")
                properties += cpu_quota_properties(0 if quota == "max" else int(quota),
                                                   int(period) if period else DEFAULT_CPU_PERIOD)
            elif key == "cpu.weight":
                properties.append(("CPUWeight", "t", int(value)))
            elif key in ("cpuset.cpus", "cpuset.mems"):
                name = "AllowedCPUs" if key == "cpuset.cpus" else "AllowedMemoryNodes"
                properties.append((name, "ay", cpu_mask(value, f"linux.resources.unified.{key}")))
            elif key in UNIFIED_MEMORY or key == "pids.max":
                name = UNIFIED_MEMORY.get(key, "TasksMax")
                properties.append((name, "t", UINT64_MAX if value == "max" else int(value)))
        except ValueError:
            raise CgroupError(f"linux.resources.unified.{key}: {raw!r} is not a valid value") from None
    return properties


def resource_properties(resources: dict, v2: bool) -> list[Property]:
    """runc's mapping of `linux.resources` (already validated by the cgroupfs plan) to unit properties."""
    from pyrunc.cgroups.resources import shares_to_weight, swap_to_v2

    memory, cpu = resources.get("memory") or {}, resources.get("cpu") or {}
    limit, swap = memory.get("limit") or 0, memory.get("swap") or 0
    properties: list[Property] = []
    if limit:
        properties.append(("MemoryMax" if v2 else "MemoryLimit", "t", _u64(limit)))
    if v2:
        if memory.get("reservation"):
            properties.append(("MemoryLow", "t", _u64(memory["reservation"])))
        if not (swap > 0 and not limit):  # a swap-only update needs the limit in force: cgroupfs converts it
            v2_swap = swap_to_v2(swap, limit)
            if swap or v2_swap:  # as plan_v2: swap equal to the limit is 0, no swap at all
                properties.append(("MemorySwapMax", "t", _u64(v2_swap)))
        if cpu.get("shares"):
            properties.append(("CPUWeight", "t", shares_to_weight(max(2, min(cpu["shares"], 262144)))))
    else:
        if cpu.get("shares"):
            properties.append(("CPUShares", "t", cpu["shares"]))
        if (resources.get("blockIO") or {}).get("weight"):
            properties.append(("BlockIOWeight", "t", resources["blockIO"]["weight"]))
    properties += cpu_quota_properties(cpu.get("quota") or 0, cpu.get("period") or 0)
    pids_limit = (resources.get("pids") or {}).get("limit")
    if pids_limit:
        properties.append(("TasksMax", "t", _u64(pids_limit)))
    for key, name in (("cpus", "AllowedCPUs"), ("mems", "AllowedMemoryNodes")):
        if cpu.get(key):
            properties.append((name, "ay", cpu_mask(cpu[key], f"linux.resources.cpu.{key}")))
    if v2:
        properties += _unified_properties(resources.get("unified") or {})
    return properties


def _device_spec(rule: Rule) -> str:
    """A rule's DeviceAllow= specifier. systemd has none for "type *:minor": that one widens to every
    device of the type, which stays safe because pyrunc's own rules (BPF or devices.allow) narrow it."""
    from pyrunc.cgroups.devices import WILDCARD

    kind = "char" if rule.type == "c" else "block"
    if rule.major == WILDCARD:
        return f"{kind}-*"
    if rule.minor == WILDCARD:
        return f"{kind}-{rule.major}"  # systemd 240+
    return f"/dev/{kind}/{rule.major}:{rule.minor}"


def device_properties(rules: list) -> list[Property]:
    """DevicePolicy and DeviceAllow for the container's device rules. systemd only knows allow lists, so
    it gets every allowed device (a superset when a later rule denies part of one) and pyrunc's own rules,
    written after it, make it exact. A deny list leaves systemd's policy open (auto, nothing listed)."""
    from pyrunc.cgroups.devices import effective

    default_allow, rules = effective(rules)
    allowed = [] if default_allow else [(_device_spec(r), r.access) for r in rules if r.allow]
    # An empty DeviceAllow first: for SetUnitProperties, a list appends to the unit's existing one.
    return [("DevicePolicy", "s", "auto" if default_allow else "strict"), ("DeviceAllow", "a(ss)", []),
            ("DeviceAllow", "a(ss)", allowed)]


# -- systemd over D-Bus ---------------------------------------------------------------------------------
def version_number(version: str) -> int:
    """systemd's Version property as a number: "252.38-1~deb12u1" or "v245.4-1.fc32" → 252, 245; -1 if none."""
    text = version.lstrip('"v')
    digits = text[:len(text) - len(text.lstrip("0123456789"))]
    return int(digits) if digits else -1


class Systemd:
    """systemd's manager object over one connection (system bus, else /run/systemd/private)."""

    def __init__(self, timeout: float = JOB_TIMEOUT) -> None:
        from pyrunc.cgroups import dbus

        self.deadline = time.monotonic() + timeout
        self.bus: Connection = dbus.connect_systemd(timeout)
        self.subscribed = False
        self.job: str | None = None  # the last job queued (a unit StartTransientUnit created exists from then)

    def __enter__(self) -> Systemd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bus.close()

    def call(self, member: str, signature: str = "", *args: object) -> list:
        return self.bus.call(SYSTEMD, SYSTEMD_PATH, MANAGER, member, signature, args, deadline=self.deadline)

    def version(self) -> int:
        _, value = self.bus.call(SYSTEMD, SYSTEMD_PATH, PROPERTIES, "Get", "ss", (MANAGER, "Version"),
                                 deadline=self.deadline)[0]
        return version_number(value)

    def supported(self, properties: list[Property]) -> list[Property]:
        """The properties this systemd knows (asks for its version only if one needs it)."""
        if not any(name in MIN_VERSION for name, _, _ in properties):
            return properties
        version = self.version()
        return [p for p in properties if MIN_VERSION.get(p[0], 0) <= version]

    def run_job(self, member: str, signature: str, *args: object) -> str:
        """Call a method that queues a job and wait for the job's end; return its result ("done"...)."""
        if not self.subscribed:
            if self.bus.bus:  # a bus daemon forwards the signal only to who asked; a direct peer sends it
                from pyrunc.cgroups.dbus import BUS_NAME, BUS_PATH

                rule = f"type='signal',interface='{MANAGER}',member='JobRemoved',path='{SYSTEMD_PATH}'"
                self.bus.call(BUS_NAME, BUS_PATH, BUS_NAME, "AddMatch", "s", (rule,), deadline=self.deadline)
            self.call("Subscribe")
            self.subscribed = True
        self.job = job = self.call(member, signature, *args)[0]
        removed = self.bus.wait_signal(
            lambda m: m.member == "JobRemoved" and m.interface == MANAGER and m.body[1] == job, self.deadline)
        return removed.body[3]

    def start(self, unit: str, properties: list[Property]) -> None:
        """StartTransientUnit and wait; a failed leftover of the same name is reset and the start retried once."""
        from pyrunc.cgroups.dbus import DBusError

        wire = [(name, (signature, value)) for name, signature, value in self.supported(properties)]
        for attempt in (1, 2):
            try:
                result = self.run_job("StartTransientUnit", "ssa(sv)a(sa(sv))", unit, "replace", wire, [])
            except DBusError as e:
                if e.name != UNIT_EXISTS or attempt == 2:
                    raise CgroupError(f"start systemd unit {unit}: {e}") from None
                self.reset_failed(unit)
                continue
            if result != "done":
                why = self.scope_result(unit)
                self.reset_failed(unit)
                raise CgroupError(f"start systemd unit {unit}: the job ended with result {result!r}{why}")
            return

    def scope_result(self, unit: str) -> str:
        """Why a scope failed, as systemd says ("resources": it could not move the pid into the cgroup)."""
        from pyrunc.cgroups.dbus import DBusError

        if not unit.endswith(".scope"):
            return ""
        try:
            path = self.call("GetUnit", "s", unit)[0]
            _, result = self.bus.call(SYSTEMD, path, PROPERTIES, "Get", "ss", (f"{SYSTEMD}.Scope", "Result"),
                                      deadline=self.deadline)[0]
        except DBusError:
            return ""
        return f" (scope result {result!r})"

    def stop(self, unit: str) -> None:
        """StopUnit and wait (a unit that is gone already is fine), then let systemd forget a failed one."""
        from pyrunc.cgroups.dbus import DBusError

        try:
            result = self.run_job("StopUnit", "ss", unit, "replace")
        except DBusError as e:
            if e.name != NO_SUCH_UNIT:
                raise CgroupError(f"stop systemd unit {unit}: {e}") from None
            result = "done"
        self.reset_failed(unit)
        if result != "done":
            raise CgroupError(f"stop systemd unit {unit}: the job ended with result {result!r}")

    def reset_failed(self, unit: str) -> None:
        from pyrunc.cgroups.dbus import DBusError

        try:
            self.call("ResetFailedUnit", "s", unit)
        except DBusError:
            pass  # not failed, or not loaded: nothing to forget

    def set_properties(self, unit: str, properties: list[Property]) -> None:
        wire = [(name, (signature, value)) for name, signature, value in self.supported(properties)]
        self.call("SetUnitProperties", "sba(sv)", unit, True, wire)


# -- the managers ---------------------------------------------------------------------------------------
class SystemdDriver:
    """What the systemd variants add to the v1 and v2 managers (mixed in before them)."""

    unit: Unit
    properties: tuple | list = ()  # the unit's resource and device properties, computed by create
    # One byte, 1 once the unit is this container's: recorded in the state, or started by stage-1, which
    # tells the parent through memory shared across the fork (create makes it). A failed create then
    # stops only a unit its own stage-1 started, never another container's of the same name.
    placement: bytes | bytearray | mmap.mmap = bytes(1)

    @property
    def placed(self) -> bool:
        return self.placement[0] == 1

    def v2_dir(self) -> str | None:
        return super().v2_dir() if self.placed else None

    def create(self) -> None:
        """Validate and compute the unit's properties; make only the directories systemd will not."""
        import mmap

        from pyrunc.cgroups import dbus  # noqa: F401 (imported before the fork: stage-1 must import nothing)

        if self.rootless:
            raise CgroupError("--systemd-cgroup with --rootless is not supported by pyrunc")
        self._check_resources()
        devices = device_properties(self.device_rules) if self.device_rules else []
        self.properties = [*resource_properties(self.resources, self.version == 2), *devices]
        self.placement = mmap.mmap(-1, 1)
        self._make_own_dirs()

    def join(self, pid: int) -> None:
        """Stage-1 of create (pid 0): start the unit around itself. Otherwise (exec): a cgroupfs join."""
        if self.placed:
            super().join(pid)
            return
        # /proc (still the host's) names the caller by its host pid, even when it was born pid 1 of a new
        # pid namespace (process/clone.py); that is the pid systemd knows.
        member = pid or int(os.readlink("/proc/self"))
        with Systemd() as systemd:
            try:
                systemd.start(self.unit.name, [*self.unit.start_properties(member, self.version == 2),
                                               *self.properties])
            finally:
                self.placement[0] = int(systemd.job is not None)
        if not self.unit.is_slice:
            self._check_placement(member)
        self._make_dirs()  # v1: the directories systemd did not make; v2: controllers down to the unit
        if self.unit.is_slice or self.version == 1:
            super().join(pid)  # a slice takes no pid; on v1 the hierarchies systemd leaves alone (runc joins all)
        self._apply(self.resources, updating=False)
        if self.device_rules:
            super()._apply_devices(self.device_rules)  # systemd had them at the start

    def _check_placement(self, pid: int) -> None:
        """The unit's cgroup must be the one the paths were computed for (from PID 1's cgroup)."""
        from pyrunc.cgroups import paths

        own = paths.parse_proc_cgroup(paths.read_text(f"/proc/{pid}/cgroup"))
        actual = own.get("", own.get("name=systemd"))
        if actual is not None and not actual.endswith(self.unit.cgroup):
            raise CgroupError(f"systemd put unit {self.unit.name} in the cgroup {actual}, "
                              f"not in {self.unit.cgroup} below its root")

    def update(self, resources: dict) -> None:
        """cgroupfs first (it validates; devices go to systemd and then cgroupfs), then systemd's properties."""
        super().update(resources)
        properties = resource_properties(resources, self.version == 2)
        if properties:
            with Systemd() as systemd:
                systemd.set_properties(self.unit.name, properties)

    def _apply_devices(self, rules: list) -> None:
        """For update: systemd's device policy, then pyrunc's rules. systemd rewrites v1's devices list from
        scratch, so the container is frozen meanwhile, as runc does."""
        thaw = self.has_freezer() and not self.is_frozen()
        if thaw:
            self.freeze()
        try:
            with Systemd() as systemd:
                systemd.set_properties(self.unit.name, device_properties(rules))
        finally:
            if thaw:
                self.thaw()
        super()._apply_devices(rules)

    def destroy(self) -> None:
        """Stop the unit if it is this container's, then rmdir what pyrunc made and whatever systemd left
        of the container's own directories."""
        if self.placed:
            with Systemd() as systemd:
                systemd.stop(self.unit.name)
            self.created = list(dict.fromkeys([*self.created, *self.dirs()]))
        super().destroy()

    def to_state(self) -> dict:
        state = super().to_state()
        state["systemd"] = {"unit": self.unit.name, "slice": self.unit.slice}
        return state


class SystemdV2Manager(SystemdDriver, V2Manager):
    def _check_resources(self) -> None:
        from pyrunc.cgroups.resources import plan_v2

        plan_v2(self.resources)

    def _make_own_dirs(self) -> None:
        """Nothing: systemd makes the unit's cgroup."""


class SystemdV1Manager(SystemdDriver, V1Manager):
    def _check_resources(self) -> None:
        from pyrunc.cgroups.resources import plan_v1

        self._check_hierarchies(plan_v1(self.resources))

    def _make_own_dirs(self) -> None:
        """The directories of the hierarchies systemd does not manage (cpuset, freezer, net_cls...)."""
        own = V1Manager({c: d for c, d in self.paths.items() if c not in SYSTEMD_V1_CONTROLLERS})
        try:
            own._make_dirs()
        except BaseException:
            fs.remove_dirs(own.created)
            raise
        self.created += own.created


def _systemd_root(init_cgroup: str | None) -> str:
    """systemd's root in a hierarchy: PID 1's cgroup, without the init.scope systemd 226+ moves itself to."""
    path = init_cgroup or "/"
    return os.path.dirname(path) if os.path.basename(path) == "init.scope" else path


def systemd_manager(config: dict, container_id: str, rootless: bool) -> Manager:
    """The manager of a new container under systemd: the unit and its directories (runc's paths: each
    hierarchy's mount point, PID 1's cgroup there, the slice, the unit). Nothing is created."""
    from pyrunc.cgroups import paths

    unit = parse_cgroups_path((config.get("linux") or {}).get("cgroupsPath"), container_id)
    init = paths.parse_proc_cgroup(paths.read_text("/proc/1/cgroup"))
    inner = unit.cgroup.lstrip("/")
    if paths.is_pure_v2():
        root = paths.Mount(paths.CGROUP_ROOT, "/")
        manager: SystemdDriver = SystemdV2Manager(paths.hierarchy_dir(root, _systemd_root(init.get("")), inner))
    else:
        v1_mounts, v2_mount = paths.parse_mountinfo(paths.read_text("/proc/self/mountinfo"))
        dirs = {name: paths.hierarchy_dir(mount, _systemd_root(init.get(name)), inner)
                for name, mount in v1_mounts.items()}
        unified = paths.hierarchy_dir(v2_mount, _systemd_root(init.get("")), inner) if v2_mount else None
        manager = SystemdV1Manager(dirs, unified)
    manager.unit = unit
    manager.rootless = rootless
    return manager.configure(config)


def from_state(state: dict) -> Manager:
    """The manager recorded by to_state(): placed, its operations are cgroupfs ones (no D-Bus but delete/update)."""
    if state.get("version") == 2:
        manager: SystemdDriver = SystemdV2Manager(state["path"], state["root"], state.get("created"),
                                                  state.get("devices"))
    else:
        manager = SystemdV1Manager(state.get("paths") or {}, state.get("unified"), state.get("created"),
                                   state.get("devices"))
    manager.unit = Unit(state["systemd"]["unit"], state["systemd"]["slice"])
    manager.placement = bytearray(b"\1")
    return manager
