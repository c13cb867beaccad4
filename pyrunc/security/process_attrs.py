"""Process attributes the init sets on itself before execve: personality, scheduler, I/O priority,
CPU affinity, oom_score_adj. `check` validates them all at create; each `apply_*` is one step.

`execCPUAffinity.initial` applies before the process joins the container's cgroup (stage-1, or the
runtime for `exec`), `final` after it (in the init, right before execve).
"""

from __future__ import annotations

import os

from pyrunc import syscalls
from pyrunc.errors import SecurityError
from pyrunc.security import os_reason

PERSONALITY_DOMAINS = {"LINUX": 0x0000, "LINUX32": 0x0008}
SCHED_POLICIES = {
    "SCHED_OTHER": 0, "SCHED_FIFO": 1, "SCHED_RR": 2, "SCHED_BATCH": 3,
    "SCHED_ISO": 4, "SCHED_IDLE": 5, "SCHED_DEADLINE": 6,
}  # fmt: skip
SCHED_FLAGS = {
    "SCHED_FLAG_RESET_ON_FORK": 0x01, "SCHED_FLAG_RECLAIM": 0x02, "SCHED_FLAG_DL_OVERRUN": 0x04,
    "SCHED_FLAG_KEEP_POLICY": 0x08, "SCHED_FLAG_KEEP_PARAMS": 0x10,
    "SCHED_FLAG_UTIL_CLAMP_MIN": 0x20, "SCHED_FLAG_UTIL_CLAMP_MAX": 0x40,
}  # fmt: skip
IOPRIO_CLASSES = {"IOPRIO_CLASS_RT": 1, "IOPRIO_CLASS_BE": 2, "IOPRIO_CLASS_IDLE": 3}


def parse_cpu_list(cpus: str) -> set[int]:
    """"0-3,7" → {0, 1, 2, 3, 7}; raises SecurityError on anything else."""
    result: set[int] = set()
    try:
        for part in cpus.split(","):
            first, dash, last = part.strip().partition("-")
            low = int(first)
            high = int(last) if dash else low
            if low < 0 or high < low:
                raise ValueError
            result.update(range(low, high + 1))
    except ValueError:
        raise SecurityError(f"invalid CPU list {cpus!r} in process.execCPUAffinity") from None
    return result


def check(process: dict, linux: dict) -> None:
    """At create: every name and value of these attributes is one the kernel interface knows."""
    personality = linux.get("personality")
    if personality:
        if personality.get("domain") not in PERSONALITY_DOMAINS:
            raise SecurityError(f"unknown personality domain {personality.get('domain')!r} in linux.personality")
        if personality.get("flags"):
            raise SecurityError(f"linux.personality.flags {personality['flags']} are not supported")
    scheduler = process.get("scheduler")
    if scheduler:
        if scheduler.get("policy") not in SCHED_POLICIES:
            raise SecurityError(f"unknown scheduler policy {scheduler.get('policy')!r} in process.scheduler")
        for flag in scheduler.get("flags") or ():
            if flag not in SCHED_FLAGS:
                raise SecurityError(f"unknown scheduler flag {flag!r} in process.scheduler.flags")
    io_priority = process.get("ioPriority")
    if io_priority:
        if io_priority.get("class") not in IOPRIO_CLASSES:
            raise SecurityError(f"unknown I/O priority class {io_priority.get('class')!r} in process.ioPriority")
        if not 0 <= io_priority.get("priority", 0) <= 7:
            raise SecurityError(f"process.ioPriority.priority {io_priority['priority']} is not between 0 and 7")
    for cpus in (process.get("execCPUAffinity") or {}).values():
        parse_cpu_list(cpus)


def apply_oom_score_adj(value: int, pid: int | str = "self") -> None:
    """Lowering it below its minimum (0 unless set with the capability) needs CAP_SYS_RESOURCE."""
    try:
        with open(f"/proc/{pid}/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as e:
        hint = " (lowering it needs CAP_SYS_RESOURCE)" if e.errno == 13 else ""
        raise SecurityError(f"cannot set oomScoreAdj to {value}: {os_reason(e)}{hint}") from None


def apply_personality(personality: dict) -> None:
    try:
        syscalls.personality(PERSONALITY_DOMAINS[personality["domain"]])
    except OSError as e:
        raise SecurityError(f"cannot set personality {personality['domain']}: {os_reason(e)}") from None


def apply_scheduler(scheduler: dict) -> None:
    attr = syscalls.SchedAttr(
        sched_policy=SCHED_POLICIES[scheduler["policy"]],
        sched_flags=sum(SCHED_FLAGS[flag] for flag in scheduler.get("flags") or ()),
        sched_nice=scheduler.get("nice", 0),
        sched_priority=scheduler.get("priority", 0),
        sched_runtime=scheduler.get("runtime", 0),
        sched_deadline=scheduler.get("deadline", 0),
        sched_period=scheduler.get("period", 0),
    )
    try:
        syscalls.sched_setattr(0, attr)
    except OSError as e:
        raise SecurityError(f"cannot set scheduler policy {scheduler['policy']}: {os_reason(e)}") from None


def apply_io_priority(io_priority: dict) -> None:
    try:
        syscalls.ioprio_set(0, IOPRIO_CLASSES[io_priority["class"]], io_priority.get("priority", 0))
    except OSError as e:
        raise SecurityError(f"cannot set I/O priority {io_priority['class']}: {os_reason(e)}") from None


def apply_cpu_affinity(cpus: str, pid: int = 0) -> None:
    try:
        os.sched_setaffinity(pid, parse_cpu_list(cpus))
    except OSError as e:
        raise SecurityError(f"cannot set CPU affinity {cpus!r}: {os_reason(e)}") from None


def apply_scheduling(process: dict) -> None:
    """process.scheduler and process.ioPriority, for the init and for exec alike."""
    if process.get("scheduler"):
        apply_scheduler(process["scheduler"])
    if process.get("ioPriority"):
        apply_io_priority(process["ioPriority"])
