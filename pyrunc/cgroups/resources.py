"""`linux.resources` → the cgroup files to write, for v1 and for v2 (with the spec's v1→v2 conversions).

A plan is a list of `Write`s in the order they must happen; the managers carry them out. Fields runc
ignores are ignored the same way (documented at each); anything else the host lacks fails when written.
Zero means "not set" for the numeric fields where runc treats it so; -1 means unlimited.
"""

from __future__ import annotations

import os

from pyrunc.errors import CgroupError

UNLIMITED = -1


class Write(tuple):
    """A value to write: controller (v1 hierarchy such as "memory", or "unified"; on v2 the file's
    controller prefix), file, value, and a (file, value) fallback for when `file` does not exist.
    A plain tuple subclass: namedtuple imports `collections`, milliseconds at every create."""

    __slots__ = ()

    def __new__(cls, controller: str, file: str, value: str, fallback: tuple[str, str] | None = None) -> Write:
        return tuple.__new__(cls, (controller, file, value, fallback))

    controller = property(lambda self: self[0])
    file = property(lambda self: self[1])
    value = property(lambda self: self[2])
    fallback = property(lambda self: self[3])

    def __repr__(self) -> str:
        return f"Write{tuple(self)!r}"

    def target(self, directory: str) -> tuple[str, str]:
        """The path to write in the cgroup `directory` and the value: the fallback's if `file` is missing."""
        path = os.path.join(directory, self.file)
        if self.fallback and not os.path.exists(path):
            return os.path.join(directory, self.fallback[0]), self.fallback[1]
        return path, self.value


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] → cpu.weight [1, 10000]."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_weight_to_io_weight(weight: int) -> int:
    """blkio.weight [10, 1000] → io.weight [1, 10000]."""
    return 1 + ((weight - 10) * 9999) // 990


def swap_to_v2(swap: int, limit: int) -> int:
    """v1's memory+swap limit → v2's memory.swap.max (swap alone); -1 is unlimited, 0 leaves it unset."""
    if limit == UNLIMITED and swap == 0:
        return UNLIMITED  # memory set to unlimited: swap follows, as with v1's memsw
    if swap in (UNLIMITED, 0):
        return swap
    if limit in (0, UNLIMITED):
        raise CgroupError("linux.resources.memory.swap: a swap limit needs a memory limit")
    check_swap(swap, limit)
    return swap - limit


def check_swap(swap: int | None, limit: int | None) -> None:
    """The spec's swap is memory+swap, so it cannot be below the memory limit."""
    if swap and limit and 0 < swap < limit:
        raise CgroupError(f"linux.resources.memory.swap: {swap} is below the memory limit {limit} (it is memory+swap)")


def _int(section: dict, key: str, where: str, minimum: int = UNLIMITED, maximum: int | None = None) -> int | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum or (maximum and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
        raise CgroupError(f"{where}.{key}: {value!r} is not a number {bound}")
    return value


def _weight(blkio: dict, key: str, where: str) -> int | None:
    """A blkio weight; 0 means "not set", as runc reads it (Docker sends `"weight": 0` in every config)."""
    return None if blkio.get(key) == 0 else _int(blkio, key, where, 10, 1000)


def _v2_limit(value: int) -> str:
    return "max" if value == UNLIMITED else str(value)


def parse_cpu_list(text: str, where: str) -> set[int]:
    cpus: set[int] = set()
    try:
        for part in text.strip().split(","):
            if not part:
                continue
            first, _, last = part.partition("-")
            cpus.update(range(int(first), int(last or first) + 1))
    except ValueError:
        raise CgroupError(f"{where}: {text!r} is not a list like 0-3,5") from None
    return cpus


def check_cpuset(value: str, online_file: str, where: str) -> None:
    """Refuse CPUs or memory nodes the host does not have (the kernel's EINVAL would not say which)."""
    wanted = parse_cpu_list(value, where)
    try:
        with open(online_file) as f:
            online = parse_cpu_list(f.read(), online_file)
    except FileNotFoundError:
        online = {0}  # no NUMA: a single memory node
    missing = sorted(wanted - online)
    if missing:
        raise CgroupError(f"{where}: {value!r} names [{_format_cpu_list(missing)}] which this host does not have "
                          f"(it has {_format_cpu_list(sorted(online))})")


def _format_cpu_list(numbers: list[int]) -> str:
    """Sorted numbers in the kernel's list format: [0, 1, 2, 5] -> "0-2,5"."""
    ranges: list[list[int]] = []
    for n in numbers:
        if ranges and n == ranges[-1][1] + 1:
            ranges[-1][1] = n
        else:
            ranges.append([n, n])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def _cpuset(cpu: dict) -> list[Write]:
    writes = []
    for key, online in (("cpus", "/sys/devices/system/cpu/online"), ("mems", "/sys/devices/system/node/online")):
        if cpu.get(key):
            check_cpuset(cpu[key], online, f"linux.resources.cpu.{key}")
            writes.append(Write("cpuset", f"cpuset.{key}", cpu[key]))
    return writes


def _device_lines(entries: list, where: str, value_key: str, *, minimum: int = 0) -> list[tuple[str, int]]:
    lines = []
    for index, entry in enumerate(entries or []):
        at = f"{where}[{index}]"
        major, minor = _int(entry, "major", at, 0), _int(entry, "minor", at, 0)
        value = _int(entry, value_key, at, minimum)
        if major is None or minor is None:
            raise CgroupError(f"{at}: major and minor are required")
        if value is not None:
            lines.append((f"{major}:{minor}", value))
    return lines


THROTTLES = (
    ("throttleReadBpsDevice", "read_bps_device", "rbps"),
    ("throttleWriteBpsDevice", "write_bps_device", "wbps"),
    ("throttleReadIOPSDevice", "read_iops_device", "riops"),
    ("throttleWriteIOPSDevice", "write_iops_device", "wiops"),
)


def _rdma(rdma: dict, where: str) -> list[Write]:
    writes = []
    for device, limits in (rdma or {}).items():
        parts = [device]
        for key, name in (("hcaHandles", "hca_handle"), ("hcaObjects", "hca_object")):
            value = _int(limits, key, f"{where}.{device}", 0)
            if value is not None:
                parts.append(f"{name}={value}")
        writes.append(Write("rdma", "rdma.max", " ".join(parts)))
    return writes


def _unified(unified: dict, where: str = "linux.resources.unified") -> list[Write]:
    writes = []
    for key, value in (unified or {}).items():
        if "/" in key or key.startswith(".") or "." not in key:
            raise CgroupError(f"{where}: {key!r} is not a cgroup file name")
        writes.append(Write(key.split(".", 1)[0], key, str(value)))
    return writes


def plan_v1(resources: dict, current_memory_limit: int | None = None) -> list[Write]:
    """The v1 writes. `current_memory_limit` orders limit vs memsw when both change (the kernel wants
    memsw >= limit at every step)."""
    r = resources or {}
    writes: list[Write] = []

    memory = r.get("memory") or {}
    where = "linux.resources.memory"
    limit, swap = _int(memory, "limit", where), _int(memory, "swap", where)
    check_swap(swap, limit)
    limit_write = Write("memory", "memory.limit_in_bytes", str(limit)) if limit else None
    swap_write = Write("memory", "memory.memsw.limit_in_bytes", str(swap)) if swap else None
    current = 2**64 - 1 if current_memory_limit is None else current_memory_limit
    swap_first = bool(limit and swap and (swap == UNLIMITED or current < swap))
    writes += [w for w in ((swap_write, limit_write) if swap_first else (limit_write, swap_write)) if w]
    if _int(memory, "reservation", where):
        writes.append(Write("memory", "memory.soft_limit_in_bytes", str(memory["reservation"])))
    # memory.kernel: ignored, as runc does (kernel memory limits are deprecated and gone from new kernels)
    if _int(memory, "kernelTCP", where):
        writes.append(Write("memory", "memory.kmem.tcp.limit_in_bytes", str(memory["kernelTCP"])))
    swappiness = _int(memory, "swappiness", where, UNLIMITED, 100)
    if swappiness is not None and swappiness != UNLIMITED:
        writes.append(Write("memory", "memory.swappiness", str(swappiness)))
    if memory.get("disableOOMKiller"):
        writes.append(Write("memory", "memory.oom_control", "1"))
    # memory.useHierarchy: ignored, as runc does (always on since Linux 5.16)

    cpu = r.get("cpu") or {}
    where = "linux.resources.cpu"
    if _int(cpu, "shares", where, 0):
        writes.append(Write("cpu", "cpu.shares", str(cpu["shares"])))
    if _int(cpu, "period", where, 0):
        writes.append(Write("cpu", "cpu.cfs_period_us", str(cpu["period"])))
    if _int(cpu, "quota", where):
        writes.append(Write("cpu", "cpu.cfs_quota_us", str(cpu["quota"])))
    if _int(cpu, "burst", where, 0) is not None:
        writes.append(Write("cpu", "cpu.cfs_burst_us", str(cpu["burst"])))
    if _int(cpu, "realtimePeriod", where, 0):
        writes.append(Write("cpu", "cpu.rt_period_us", str(cpu["realtimePeriod"])))
    if _int(cpu, "realtimeRuntime", where):
        writes.append(Write("cpu", "cpu.rt_runtime_us", str(cpu["realtimeRuntime"])))
    writes += _cpuset_idle_and_pids(cpu, r, where)

    blkio = r.get("blockIO") or {}
    where = "linux.resources.blockIO"
    if _weight(blkio, "weight", where):
        weight = str(blkio["weight"])
        writes.append(Write("blkio", "blkio.weight", weight, ("blkio.bfq.weight", weight)))
    if _weight(blkio, "leafWeight", where):
        writes.append(Write("blkio", "blkio.leaf_weight", str(blkio["leafWeight"])))
    for device, weight in _device_lines(blkio.get("weightDevice"), f"{where}.weightDevice", "weight", minimum=10):
        line = f"{device} {weight}"
        writes.append(Write("blkio", "blkio.weight_device", line, ("blkio.bfq.weight_device", line)))
    for device, weight in _device_lines(blkio.get("weightDevice"), f"{where}.weightDevice", "leafWeight", minimum=10):
        writes.append(Write("blkio", "blkio.leaf_weight_device", f"{device} {weight}"))
    for key, suffix, _ in THROTTLES:
        for device, rate in _device_lines(blkio.get(key), f"{where}.{key}", "rate"):
            writes.append(Write("blkio", f"blkio.throttle.{suffix}", f"{device} {rate}"))

    for index, hugepage in enumerate(r.get("hugepageLimits") or []):
        size = hugepage.get("pageSize")
        value = _int(hugepage, "limit", f"linux.resources.hugepageLimits[{index}]")
        writes.append(Write("hugetlb", f"hugetlb.{size}.limit_in_bytes", str(value)))

    network = r.get("network") or {}
    if network.get("classID") is not None:
        writes.append(Write("net_cls", "net_cls.classid", str(network["classID"])))
    for entry in network.get("priorities") or []:
        writes.append(Write("net_prio", "net_prio.ifpriomap", f"{entry['name']} {entry['priority']}"))

    writes += _rdma(r.get("rdma"), "linux.resources.rdma")
    writes += [Write("unified", w.file, w.value, w.fallback) for w in _unified(r.get("unified"))]
    return writes


def _cpuset_idle_and_pids(cpu: dict, r: dict, where: str) -> list[Write]:
    """The writes whose files are named alike on v1 and v2."""
    writes = _cpuset(cpu)
    if _int(cpu, "idle", where, 0, 1) is not None:
        writes.append(Write("cpu", "cpu.idle", str(cpu["idle"])))
    pids_limit = _int(r.get("pids") or {}, "limit", "linux.resources.pids", -(2**63))
    if pids_limit:
        writes.append(Write("pids", "pids.max", "max" if pids_limit < 0 else str(pids_limit)))
    return writes


def plan_v2(resources: dict) -> list[Write]:
    """The v2 writes, converting v1-only values."""
    r = resources or {}
    writes: list[Write] = []

    memory = r.get("memory") or {}
    where = "linux.resources.memory"
    limit, swap = _int(memory, "limit", where), _int(memory, "swap", where)
    v2_swap = swap_to_v2(swap or 0, limit or 0)
    if swap or v2_swap:  # swap equal to the limit converts to 0: no swap at all
        writes.append(Write("memory", "memory.swap.max", _v2_limit(v2_swap)))
    if limit:
        writes.append(Write("memory", "memory.max", _v2_limit(limit)))
    if _int(memory, "reservation", where):
        writes.append(Write("memory", "memory.low", _v2_limit(memory["reservation"])))
    # kernel, kernelTCP, swappiness, disableOOMKiller, useHierarchy: v1-only knobs runc ignores on v2

    cpu = r.get("cpu") or {}
    where = "linux.resources.cpu"
    if _int(cpu, "shares", where, 0):
        writes.append(Write("cpu", "cpu.weight", str(shares_to_weight(max(2, min(cpu["shares"], 262144))))))
    quota, period = _int(cpu, "quota", where), _int(cpu, "period", where, 0)
    if quota or period:
        value = str(quota) if quota and quota > 0 else "max"
        writes.append(Write("cpu", "cpu.max", f"{value} {period}" if period else value))
    if _int(cpu, "burst", where, 0) is not None:
        writes.append(Write("cpu", "cpu.max.burst", str(cpu["burst"])))
    if cpu.get("realtimePeriod") or cpu.get("realtimeRuntime"):
        raise CgroupError(f"{where}.realtimeRuntime/realtimePeriod: real-time CPU limits do not exist on cgroup v2")
    writes += _cpuset_idle_and_pids(cpu, r, where)

    blkio = r.get("blockIO") or {}
    where = "linux.resources.blockIO"
    if _weight(blkio, "weight", where):
        weight = blkio["weight"]
        writes.append(Write("io", "io.bfq.weight", str(weight), ("io.weight", str(blkio_weight_to_io_weight(weight)))))
    # leafWeight: no v2 equivalent; runc ignores it
    for device, weight in _device_lines(blkio.get("weightDevice"), f"{where}.weightDevice", "weight", minimum=10):
        writes.append(Write("io", "io.bfq.weight", f"{device} {weight}",
                            ("io.weight", f"{device} {blkio_weight_to_io_weight(weight)}")))
    for key, _, v2_key in THROTTLES:
        for device, rate in _device_lines(blkio.get(key), f"{where}.{key}", "rate"):
            writes.append(Write("io", "io.max", f"{device} {v2_key}={rate or 'max'}"))

    for index, hugepage in enumerate(r.get("hugepageLimits") or []):
        value = _int(hugepage, "limit", f"linux.resources.hugepageLimits[{index}]")
        writes.append(Write("hugetlb", f"hugetlb.{hugepage.get('pageSize')}.max", _v2_limit(value or 0)))

    network = r.get("network") or {}
    if network.get("classID") is not None or network.get("priorities"):
        raise CgroupError("linux.resources.network: net_cls/net_prio are cgroup v1 controllers, absent on cgroup v2")

    writes += _rdma(r.get("rdma"), "linux.resources.rdma")
    writes += _unified(r.get("unified"))
    return writes
