"""`linux.seccomp`: compile the profile with libseccomp (pyseccomp), load it with seccomp(2).

libseccomp only compiles: `prepare` exports the BPF program, and `load` hands it to seccomp(2) itself
with the spec's flags (plus NEW_LISTENER when SCMP_ACT_NOTIFY is used), so every kernel flag works
whatever the library version and the listener fd is the syscall's return value. Compiling needs
pyseccomp (~13 ms to import): it is imported only when a config has `linux.seccomp`.

Like runc: unknown syscall names are skipped; a rule whose action equals the default is skipped;
SCMP_ACT_ERRNO/SCMP_ACT_TRACE without errnoRet return EPERM; a rule naming the same argument twice
becomes one rule per condition (libseccomp allows one comparison per argument in a rule).
"""

from __future__ import annotations

import os

from pyrunc import SPEC_VERSION, fastjson, syscalls, unixsock
from pyrunc.errors import SecurityError
from pyrunc.security import os_reason

# SCMP_ACT_* values (seccomp.h); ERRNO and TRACE carry a 16-bit data field.
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000,
    "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000,
    "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": 0x00050000,
    "SCMP_ACT_TRACE": 0x7FF00000,
    "SCMP_ACT_NOTIFY": 0x7FC00000,
    "SCMP_ACT_LOG": 0x7FFC0000,
    "SCMP_ACT_ALLOW": 0x7FFF0000,
}
_WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
OPERATORS = {
    "SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
    "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7,
}  # fmt: skip
# SECCOMP_FILTER_FLAG_* (linux/seccomp.h)
FLAGS = {
    "SECCOMP_FILTER_FLAG_TSYNC": 1,
    "SECCOMP_FILTER_FLAG_LOG": 2,
    "SECCOMP_FILTER_FLAG_SPEC_ALLOW": 4,
    "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV": 32,
}
FLAG_NEW_LISTENER = 8
_AUDIT_64BIT, _AUDIT_LE, _MIPS64N32 = 0x80000000, 0x40000000, 0x20000000
# SCMP_ARCH_* → AUDIT_ARCH_* token (ELF machine | flags), as libseccomp defines them.
ARCHITECTURES = {
    "SCMP_ARCH_X86": 3 | _AUDIT_LE,
    "SCMP_ARCH_X86_64": 62 | _AUDIT_64BIT | _AUDIT_LE,
    "SCMP_ARCH_X32": 62 | _AUDIT_LE,
    "SCMP_ARCH_ARM": 40 | _AUDIT_LE,
    "SCMP_ARCH_AARCH64": 183 | _AUDIT_64BIT | _AUDIT_LE,
    "SCMP_ARCH_MIPS": 8,
    "SCMP_ARCH_MIPS64": 8 | _AUDIT_64BIT,
    "SCMP_ARCH_MIPS64N32": 8 | _AUDIT_64BIT | _MIPS64N32,
    "SCMP_ARCH_MIPSEL": 8 | _AUDIT_LE,
    "SCMP_ARCH_MIPSEL64": 8 | _AUDIT_64BIT | _AUDIT_LE,
    "SCMP_ARCH_MIPSEL64N32": 8 | _AUDIT_64BIT | _AUDIT_LE | _MIPS64N32,
    "SCMP_ARCH_PPC": 20,
    "SCMP_ARCH_PPC64": 21 | _AUDIT_64BIT,
    "SCMP_ARCH_PPC64LE": 21 | _AUDIT_64BIT | _AUDIT_LE,
    "SCMP_ARCH_S390": 22,
    "SCMP_ARCH_S390X": 22 | _AUDIT_64BIT,
    "SCMP_ARCH_PARISC": 15,
    "SCMP_ARCH_PARISC64": 15 | _AUDIT_64BIT,
    "SCMP_ARCH_RISCV64": 243 | _AUDIT_64BIT | _AUDIT_LE,
}
_NR_SCMP_ERROR = -1
_EPERM = 1


class Filter:
    """A compiled profile: the BPF program and the flags for seccomp(2)."""

    __slots__ = ("flags", "program")

    def __init__(self, program: bytes, flags: int) -> None:
        self.program = program
        self.flags = flags

    @property
    def notifies(self) -> bool:
        return bool(self.flags & FLAG_NEW_LISTENER)


def _action(name: str, errno_ret: int | None, where: str) -> int:
    if name not in ACTIONS:
        raise SecurityError(f"unknown seccomp action {name!r} in {where}")
    if name in _WITH_ERRNO:
        return ACTIONS[name] | ((_EPERM if errno_ret is None else errno_ret) & 0xFFFF)
    if errno_ret is not None:
        raise SecurityError(f"{where}: errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not {name}")
    return ACTIONS[name]


def _conditions(args: list[dict], where: str) -> list[tuple[int, int, int, int]]:
    """`args` → (index, op, value, valueTwo) tuples, validated."""
    conditions = []
    for arg in args:
        index, op = arg.get("index"), arg.get("op")
        if not isinstance(index, int) or not 0 <= index <= 5:
            raise SecurityError(f"{where}: argument index {index!r} is not between 0 and 5")
        if op not in OPERATORS:
            raise SecurityError(f"{where}: unknown seccomp operator {op!r}")
        conditions.append((index, OPERATORS[op], arg.get("value", 0), arg.get("valueTwo", 0)))
    return conditions


def _rule_groups(conditions: list[tuple[int, int, int, int]]) -> list[list[tuple[int, int, int, int]]]:
    """One rule with every condition (AND), or one rule per condition (OR) when an index repeats (runc)."""
    indexes = [c[0] for c in conditions]
    if len(set(indexes)) < len(indexes):
        return [[c] for c in conditions]
    return [conditions]


def _flags(config: dict) -> int:
    flags = 0
    for name in config.get("flags") or ():
        if name not in FLAGS:
            raise SecurityError(f"unknown seccomp flag {name!r} in linux.seccomp.flags")
        flags |= FLAGS[name]
    return flags


def prepare(config: dict) -> Filter:
    """At create (before fork): validate and compile `linux.seccomp`; raise SecurityError on bad input."""
    import pyseccomp  # lazy: only containers with a seccomp profile pay for it

    default_name = config.get("defaultAction", "")
    if default_name == "SCMP_ACT_NOTIFY":
        raise SecurityError("SCMP_ACT_NOTIFY cannot be used as linux.seccomp.defaultAction")
    default = _action(default_name, config.get("defaultErrnoRet"), "linux.seccomp.defaultAction")
    flags = _flags(config)
    filt = pyseccomp.SyscallFilter(default)
    for arch in config.get("architectures") or ():
        if arch not in ARCHITECTURES:
            raise SecurityError(f"unknown seccomp architecture {arch!r} in linux.seccomp.architectures")
        try:
            filt.add_arch(ARCHITECTURES[arch])
        except OSError as e:
            if e.errno != 17:  # EEXIST: the native architecture is always there
                raise SecurityError(f"seccomp architecture {arch}: {os_reason(e)}") from None
    for i, rule in enumerate(config.get("syscalls") or ()):
        where = f"linux.seccomp.syscalls[{i}]"
        action_name = rule.get("action", "")
        action = _action(action_name, rule.get("errnoRet"), where)
        groups = _rule_groups(_conditions(rule.get("args") or [], where))
        if action_name == "SCMP_ACT_NOTIFY":
            if "write" in rule.get("names", ()):
                raise SecurityError(f"{where}: SCMP_ACT_NOTIFY cannot be used for the write syscall")
            flags |= FLAG_NEW_LISTENER
        if action == default:
            continue
        for name in rule.get("names") or ():
            number = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
            if number == _NR_SCMP_ERROR:
                continue  # unknown to libseccomp (e.g. newer than the library): skipped, as runc does
            for group in groups:
                try:
                    filt.add_rule(action, number, *(pyseccomp.Arg(*c) for c in group))
                except OSError as e:
                    raise SecurityError(f"{where}: cannot add the rule for {name}: {os_reason(e)}") from None
    if flags & FLAG_NEW_LISTENER and not config.get("listenerPath"):
        raise SecurityError("linux.seccomp uses SCMP_ACT_NOTIFY but has no listenerPath")
    return Filter(_export(filt), flags)


def _export(filt: object) -> bytes:
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        with open(fd, "wb", closefd=False) as out:
            filt.export_bpf(out)  # type: ignore[attr-defined]
        return os.pread(fd, os.fstat(fd).st_size, 0)
    finally:
        os.close(fd)


def must_load_before_identity(process: dict) -> bool:
    """Without noNewPrivileges, loading a filter needs CAP_SYS_ADMIN: load it before dropping privileges.

    With noNewPrivileges it is loaded as late as possible, right before execve (runc does the same).
    """
    return not process.get("noNewPrivileges", False)


def load(filt: Filter) -> int | None:
    """Install the filter on the calling process; returns the notify listener fd (O_CLOEXEC) or None."""
    try:
        result = syscalls.seccomp_set_mode_filter(filt.program, filt.flags)
    except OSError as e:
        hint = " (needs CAP_SYS_ADMIN or noNewPrivileges)" if e.errno in (1, 13) else ""
        raise SecurityError(f"cannot load the seccomp filter (flags {filt.flags:#x}): {os_reason(e)}{hint}") from None
    return result if filt.notifies else None


def process_state(state: dict, metadata: str) -> bytes:
    """The spec's containerProcessState document sent with the listener fd."""
    return fastjson.dumps({
        "ociVersion": SPEC_VERSION,
        "fds": ["seccompFd"],
        "pid": state.get("pid", 0),
        "metadata": metadata,
        "state": state,
    }).encode()


def send_listener(listener_path: str, listener_fd: int, state: dict, metadata: str = "") -> None:
    """Send the notify fd (SCM_RIGHTS) and containerProcessState to the agent at `listenerPath`.

    `listenerPath` is a host path: call this from the runtime (parent) side, not from the pivoted init.
    """
    try:
        sock = unixsock.connect(listener_path)
        try:
            unixsock.send_fds(sock, process_state(state, metadata), [listener_fd])
        finally:
            sock.close()
    except OSError as e:
        raise SecurityError(f"cannot send the seccomp listener fd to {listener_path}: {os_reason(e)}") from None
