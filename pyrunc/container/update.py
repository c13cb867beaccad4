"""update: change a running container's resources (`--resources` JSON and/or runc's per-value flags)."""

from __future__ import annotations

import json
import sys

from ..errors import InvalidState, UsageError
from ..state import STOPPED, Container

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}

#: flag → (resources section, key, parser name)
_FLAGS = {
    "blkio_weight": ("blockIO", "weight", "int"),
    "cpu_period": ("cpu", "period", "int"),
    "cpu_quota": ("cpu", "quota", "int"),
    "cpu_share": ("cpu", "shares", "int"),
    "cpu_rt_period": ("cpu", "realtimePeriod", "int"),
    "cpu_rt_runtime": ("cpu", "realtimeRuntime", "int"),
    "cpuset_cpus": ("cpu", "cpus", "str"),
    "cpuset_mems": ("cpu", "mems", "str"),
    "kernel_memory": ("memory", "kernel", "bytes"),
    "kernel_memory_tcp": ("memory", "kernelTCP", "bytes"),
    "memory": ("memory", "limit", "bytes"),
    "memory_reservation": ("memory", "reservation", "bytes"),
    "memory_swap": ("memory", "swap", "bytes"),
    "pids_limit": ("pids", "limit", "int"),
}


def parse_bytes(flag: str, raw: str) -> int:
    """Sizes as runc takes them: 1024, 512k, 64m, 1.5g, 2GiB (powers of 1024); -1 means unlimited."""
    text = raw.strip().lower()
    if text == "-1":
        return -1
    number = text.rstrip("bikmgtp")
    unit = text[len(number):].removesuffix("ib").removesuffix("b")
    try:
        value = float(number)
        scale = _UNITS[unit]
    except (ValueError, KeyError):
        raise UsageError(f"--{flag.replace('_', '-')}: invalid size {raw!r}") from None
    return int(value * scale)


def _parse(flag: str, kind: str, raw: object) -> object:
    if kind == "bytes":
        return parse_bytes(flag, str(raw))
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise UsageError(f"--{flag.replace('_', '-')}: invalid number {raw!r}") from None
    return raw


def resources_from_options(o: dict) -> dict:
    """The LinuxResources object `update` applies: the --resources document, then each flag given."""
    from ..config.load import validate_resources

    resources: dict = {}
    if o.get("resources"):
        source = o["resources"]
        try:
            if source == "-":
                text = sys.stdin.read()
            else:
                with open(source) as f:
                    text = f.read()
            resources = json.loads(text)
        except OSError as err:
            raise UsageError(f"--resources {source}: {err.strerror}") from None
        except json.JSONDecodeError as err:
            raise UsageError(f"--resources {source}: invalid JSON: {err}") from None
    for flag, (section, key, kind) in _FLAGS.items():
        if o.get(flag) is not None:
            resources.setdefault(section, {})[key] = _parse(flag, kind, o[flag])
    if o.get("l3_cache_schema") or o.get("mem_bw_schema"):
        raise UsageError("Intel RDT is not supported by pyrunc (no resctrl)")
    return validate_resources(resources)


def update_container(container: Container, resources: dict) -> None:
    if container.status() == STOPPED:
        raise InvalidState("container not running")
    cgroup = container.cgroup_manager()
    if cgroup is None:
        raise InvalidState(f"container {container.id} has no cgroup to update")
    cgroup.update(resources)
    config = container.config
    merged = (config.setdefault("linux", {})).setdefault("resources", {})
    for section, values in resources.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section].update(values)
        else:
            merged[section] = values
    container.save()
