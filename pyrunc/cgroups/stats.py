"""Resource usage in the shape of runc's `events --stats` "data" object (libcontainer's events/types)."""

from __future__ import annotations

import os

from pyrunc.cgroups import fs

USER_HZ = 100  # clock ticks of cpuacct.stat
MAX = 2**64 - 1


def hugepage_sizes() -> list[str]:
    """The host's huge page sizes as cgroup files name them ("2MB", "1GB")."""
    try:
        entries = os.listdir("/sys/kernel/mm/hugepages")
    except FileNotFoundError:
        return []
    sizes = []
    for entry in sorted(entries):
        kib = int(entry.removeprefix("hugepages-").removesuffix("kB"))
        for unit, scale in (("GB", 1 << 20), ("MB", 1 << 10), ("KB", 1)):
            if kib % scale == 0:
                sizes.append(f"{kib // scale}{unit}")
                break
    return sizes


def _uint(directory: str, file: str) -> int:
    return fs.parse_uint(fs.read_optional(os.path.join(directory, file)))


def _numbers(directory: str, file: str) -> list[int]:
    return [int(v) for v in (fs.read_optional(os.path.join(directory, file)) or "").split()]


def _blkio_entries(path: str) -> list[dict]:
    entries = []
    for line in (fs.read_optional(path) or "").splitlines():
        fields = line.split()
        if len(fields) != 3:
            continue  # the "Total N" line
        major, minor = fields[0].split(":")
        entries.append({"major": int(major), "minor": int(minor), "op": fields[1], "value": int(fields[2])})
    return entries


def _memory_entry_v1(directory: str, prefix: str) -> dict:
    return {
        "limit": _uint(directory, f"{prefix}limit_in_bytes"),
        "usage": _uint(directory, f"{prefix}usage_in_bytes"),
        "max": _uint(directory, f"{prefix}max_usage_in_bytes"),
        "failcnt": _uint(directory, f"{prefix}failcnt"),
    }


def v1_stats(paths: dict[str, str]) -> dict:
    data: dict = {}
    cpu: dict = {"usage": {}, "throttling": {}}
    if "cpuacct" in paths:
        d = paths["cpuacct"]
        times = fs.read_keyed(os.path.join(d, "cpuacct.stat"))
        cpu["usage"] = {
            "total": _uint(d, "cpuacct.usage"),
            "percpu": _numbers(d, "cpuacct.usage_percpu"),
            "percpu_kernel": _numbers(d, "cpuacct.usage_percpu_sys"),
            "percpu_user": _numbers(d, "cpuacct.usage_percpu_user"),
            "kernel": times.get("system", 0) * 1_000_000_000 // USER_HZ,
            "user": times.get("user", 0) * 1_000_000_000 // USER_HZ,
        }
    if "cpu" in paths:
        stat = fs.read_keyed(os.path.join(paths["cpu"], "cpu.stat"))
        cpu["throttling"] = {"periods": stat.get("nr_periods", 0), "throttledPeriods": stat.get("nr_throttled", 0),
                             "throttledTime": stat.get("throttled_time", 0)}
    data["cpu"] = cpu
    if "memory" in paths:
        d = paths["memory"]
        raw = fs.read_keyed(os.path.join(d, "memory.stat"))
        data["memory"] = {
            "cache": raw.get("cache", 0),
            "usage": _memory_entry_v1(d, "memory."),
            "swap": _memory_entry_v1(d, "memory.memsw."),
            "kernel": _memory_entry_v1(d, "memory.kmem."),
            "kernelTCP": _memory_entry_v1(d, "memory.kmem.tcp."),
            "raw": raw,
        }
    if "pids" in paths:
        limit = fs.read_optional(os.path.join(paths["pids"], "pids.max"))
        data["pids"] = {"current": _uint(paths["pids"], "pids.current"),
                        "limit": 0 if limit in (None, "max") else int(limit)}
    if "blkio" in paths:
        data["blkio"] = _blkio_v1(paths["blkio"])
    if "hugetlb" in paths:
        d = paths["hugetlb"]
        data["hugetlb"] = {size: {"usage": _uint(d, f"hugetlb.{size}.usage_in_bytes"),
                                  "max": _uint(d, f"hugetlb.{size}.max_usage_in_bytes"),
                                  "failcnt": _uint(d, f"hugetlb.{size}.failcnt")} for size in hugepage_sizes()}
    return data


BLKIO_FIELDS = (
    ("ioServiceBytesRecursive", "io_service_bytes_recursive"),
    ("ioServicedRecursive", "io_serviced_recursive"),
    ("ioQueuedRecursive", "io_queued_recursive"),
    ("ioServiceTimeRecursive", "io_service_time_recursive"),
    ("ioWaitTimeRecursive", "io_wait_time_recursive"),
    ("ioMergedRecursive", "io_merged_recursive"),
    ("ioTimeRecursive", "time_recursive"),
    ("sectorsRecursive", "sectors_recursive"),
)


def _blkio_v1(directory: str) -> dict:
    """CFQ's blkio.* files, else BFQ's blkio.bfq.*, else the throttle counters (like runc)."""
    for prefix in ("blkio.", "blkio.bfq."):
        if os.path.exists(os.path.join(directory, f"{prefix}io_service_bytes_recursive")):
            return {name: _blkio_entries(os.path.join(directory, prefix + file)) for name, file in BLKIO_FIELDS}
    return {
        "ioServiceBytesRecursive": _blkio_entries(os.path.join(directory, "blkio.throttle.io_service_bytes_recursive")),
        "ioServicedRecursive": _blkio_entries(os.path.join(directory, "blkio.throttle.io_serviced_recursive")),
    }


def _io_v2(directory: str) -> dict:
    service_bytes, serviced = [], []
    for line in (fs.read_optional(os.path.join(directory, "io.stat")) or "").splitlines():
        device, *pairs = line.split()
        major, minor = (int(n) for n in device.split(":"))
        values = dict(pair.split("=", 1) for pair in pairs)
        for op, bytes_key, ios_key in (("Read", "rbytes", "rios"), ("Write", "wbytes", "wios")):
            service_bytes.append({"major": major, "minor": minor, "op": op, "value": int(values.get(bytes_key, 0))})
            serviced.append({"major": major, "minor": minor, "op": op, "value": int(values.get(ios_key, 0))})
    return {"ioServiceBytesRecursive": service_bytes, "ioServicedRecursive": serviced}


def v2_stats(directory: str) -> dict:
    stat = fs.read_keyed(os.path.join(directory, "cpu.stat"))
    data: dict = {"cpu": {
        "usage": {"total": stat.get("usage_usec", 0) * 1000, "kernel": stat.get("system_usec", 0) * 1000,
                  "user": stat.get("user_usec", 0) * 1000},
        "throttling": {"periods": stat.get("nr_periods", 0), "throttledPeriods": stat.get("nr_throttled", 0),
                       "throttledTime": stat.get("throttled_usec", 0) * 1000},
    }}
    if os.path.exists(os.path.join(directory, "memory.current")):
        raw = fs.read_keyed(os.path.join(directory, "memory.stat"))
        usage = {"limit": _uint(directory, "memory.max"), "usage": _uint(directory, "memory.current"),
                 "max": _uint(directory, "memory.peak"),
                 "failcnt": fs.read_keyed(os.path.join(directory, "memory.events")).get("max", 0)}
        # v1 reports swap as memory+swap; v2 counts swap alone: add memory for the same meaning (as runc)
        swap_limit = _uint(directory, "memory.swap.max")
        swap = {"limit": swap_limit if swap_limit == MAX or usage["limit"] == MAX else swap_limit + usage["limit"],
                "usage": _uint(directory, "memory.swap.current") + usage["usage"],
                "max": _uint(directory, "memory.swap.peak"), "failcnt": 0}
        data["memory"] = {"cache": raw.get("file", 0), "usage": usage, "swap": swap, "raw": raw}
    if os.path.exists(os.path.join(directory, "pids.current")):
        limit = fs.read_optional(os.path.join(directory, "pids.max"))
        data["pids"] = {"current": _uint(directory, "pids.current"),
                        "limit": 0 if limit in (None, "max") else int(limit)}
    if os.path.exists(os.path.join(directory, "io.stat")):
        data["blkio"] = _io_v2(directory)
    sizes = [s for s in hugepage_sizes() if os.path.exists(os.path.join(directory, f"hugetlb.{s}.current"))]
    if sizes:
        data["hugetlb"] = {size: {"usage": _uint(directory, f"hugetlb.{size}.current"),
                                  "max": _uint(directory, f"hugetlb.{size}.max"),
                                  "failcnt": fs.read_keyed(os.path.join(directory, f"hugetlb.{size}.events"))
                                  .get("max", 0)} for size in sizes}
    return data
