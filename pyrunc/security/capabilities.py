"""Linux capability names, the five sets of `process.capabilities`, and applying them.

Capability numbers follow linux/capability.h: a name's position in `NAMES` is its number.
"""

from __future__ import annotations

from pyrunc import syscalls
from pyrunc.errors import SecurityError
from pyrunc.security import os_reason

NAMES = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip
NUMBERS = {name: number for number, name in enumerate(NAMES)}
SET_NAMES = ("bounding", "effective", "permitted", "inheritable", "ambient")


class CapSets:
    """The five capability sets as bitmasks (bit n = capability number n)."""

    __slots__ = ("ambient", "bounding", "effective", "inheritable", "permitted")

    def __init__(self, bounding: int = 0, effective: int = 0, permitted: int = 0, inheritable: int = 0,
                 ambient: int = 0) -> None:
        self.bounding = bounding
        self.effective = effective
        self.permitted = permitted
        self.inheritable = inheritable
        self.ambient = ambient

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CapSets) and all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __repr__(self) -> str:
        return "CapSets(" + ", ".join(f"{n}={getattr(self, n):#x}" for n in self.__slots__) + ")"


def parse(capabilities: dict | None) -> CapSets:
    """`process.capabilities` → bitmasks; an unknown name is an error (runc 1.1.5 only warns)."""
    if not capabilities:
        return CapSets()
    masks = {}
    for set_name in SET_NAMES:
        mask = 0
        for name in capabilities.get(set_name) or ():
            if name not in NUMBERS:
                raise SecurityError(f"unknown capability {name} in process.capabilities.{set_name}")
            mask |= 1 << NUMBERS[name]
        masks[set_name] = mask
    return CapSets(**masks)


def names_of(mask: int) -> list[str]:
    return [name for number, name in enumerate(NAMES) if mask >> number & 1]


def last_cap() -> int:
    """The highest capability number the running kernel knows."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def drop_bounding(bounding: int) -> None:
    """Drop every capability the kernel knows that is not in `bounding` (needs CAP_SETPCAP)."""
    for number in range(last_cap() + 1):
        if not bounding >> number & 1:
            syscalls.prctl(syscalls.PR_CAPBSET_DROP, number)


def apply_sets(caps: CapSets) -> None:
    """capset the effective, permitted and inheritable sets, then raise the ambient ones.

    A capability the runtime itself does not hold (on this host CAP_SYS_RESOURCE is outside the bounding
    set) cannot be granted: capset fails with EPERM, as in runc ("unable to apply caps: operation not
    permitted"); the error names the capabilities missing. Ambient capabilities the kernel refuses (not in
    both permitted and inheritable) are skipped, as runc does.
    """
    try:
        syscalls.capset(caps.effective, caps.permitted, caps.inheritable)
    except OSError as e:
        _, held, _ = syscalls.capget()
        missing = names_of((caps.effective | caps.permitted) & ~held)
        outside = names_of(caps.inheritable & ~caps.bounding)
        detail = f": the runtime does not hold {', '.join(missing)}" if missing else ""
        detail += f": inheritable but not in the bounding set: {', '.join(outside)}" if outside else ""
        raise SecurityError(f"unable to apply capabilities: {os_reason(e)}{detail}") from None
    for number in range(len(NAMES)):
        if caps.ambient >> number & 1:
            try:
                syscalls.prctl(syscalls.PR_CAP_AMBIENT, syscalls.PR_CAP_AMBIENT_RAISE, number)
            except OSError:
                pass
