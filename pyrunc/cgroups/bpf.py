"""cgroup v2 device filter: an eBPF BPF_PROG_TYPE_CGROUP_DEVICE program generated from device rules.

The program reads `struct bpf_cgroup_dev_ctx {u32 access_type; u32 major; u32 minor}` (access_type is
access << 16 | type) and tries the rules from the last to the first, so the last matching rule wins;
when none matches it returns the default. Returning 1 allows the access, 0 denies it (EPERM).
"""

from __future__ import annotations

import ctypes
import os
import struct

from pyrunc.cgroups.devices import WILDCARD, Rule
from pyrunc.errors import CgroupError

# Opcodes (linux/bpf_common.h, linux/bpf.h)
LDX_MEM_W = 0x61  # dst = *(u32 *)(src + off)
ALU32_AND_K = 0x54
ALU32_RSH_K = 0x74
ALU32_MOV_K = 0xB4
ALU32_MOV_X = 0xBC
JMP_JNE_K = 0x55  # if dst != imm: pc += off
JMP_JNE_X = 0x5D  # if dst != src: pc += off
EXIT = 0x95

DEV_TYPE = {"b": 1, "c": 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE

BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_GET_FD_BY_ID = 13
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
_ATTR_SIZE = 128


def insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    """One 8-byte eBPF instruction: opcode, dst/src registers (low/high nibble), s16 offset, s32 immediate."""
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _rule_block(rule: Rule) -> list[bytes]:
    """Instructions that return rule.allow when the request matches the rule, else fall through."""
    checks: list[tuple[int, int, int, int]] = []  # (code, dst, src, imm) jumps to the block's end on mismatch
    prelude: list[bytes] = []
    if rule.type != "a":
        checks.append((JMP_JNE_K, 2, 0, DEV_TYPE[rule.type]))
    if rule.access != "rwm":
        mask = sum(ACCESS_BITS[c] for c in rule.access)
        # requested & mask must equal requested: every requested access is one the rule covers
        prelude_at = len(checks)
        checks.append((JMP_JNE_X, 1, 3, 0))
        prelude = [insn(ALU32_MOV_X, 1, 3), insn(ALU32_AND_K, 1, imm=mask)]
    if rule.major != WILDCARD:
        checks.append((JMP_JNE_K, 4, 0, rule.major))
    if rule.minor != WILDCARD:
        checks.append((JMP_JNE_K, 5, 0, rule.minor))
    tail = [insn(ALU32_MOV_K, 0, imm=int(rule.allow)), insn(EXIT)]
    length = len(checks) + len(prelude) + len(tail)
    block: list[bytes] = []
    for index, (code, dst, src, imm) in enumerate(checks):
        if prelude and index == prelude_at:
            block += prelude
        block.append(insn(code, dst, src, off=length - len(block) - 1, imm=imm))
    return block + tail


def program(default_allow: bool, rules: list[Rule]) -> bytes:
    """The whole program for rules already reduced by devices.effective()."""
    code = [
        insn(LDX_MEM_W, 2, 1, 0), insn(ALU32_AND_K, 2, imm=0xFFFF),  # r2 = device type
        insn(LDX_MEM_W, 3, 1, 0), insn(ALU32_RSH_K, 3, imm=16),  # r3 = requested access
        insn(LDX_MEM_W, 4, 1, 4),  # r4 = major
        insn(LDX_MEM_W, 5, 1, 8),  # r5 = minor
    ]
    for rule in reversed(rules):
        code += _rule_block(rule)
    code += [insn(ALU32_MOV_K, 0, imm=int(default_allow)), insn(EXIT)]
    return b"".join(code)


def _call(cmd: int, fields: list[tuple[int, str, int]], what: str) -> tuple[int, ctypes.Array]:
    from pyrunc import syscalls

    attr = ctypes.create_string_buffer(_ATTR_SIZE)
    for offset, fmt, value in fields:
        struct.pack_into(fmt, attr, offset, value)
    try:
        return syscalls.bpf(cmd, attr, what), attr
    except OSError as e:
        raise CgroupError(f"{what}: {os.strerror(e.errno)}") from None


def load(code: bytes) -> int:
    """BPF_PROG_LOAD the program; returns its fd."""
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"Apache")
    fd, _ = _call(BPF_PROG_LOAD, [
        (0, "<I", BPF_PROG_TYPE_CGROUP_DEVICE), (4, "<I", len(code) // 8),
        (8, "<Q", ctypes.addressof(insns)), (16, "<Q", ctypes.addressof(license_)),
    ], "bpf(BPF_PROG_LOAD) of the device filter")
    return fd


def attached_ids(cgroup_fd: int, where: str) -> list[int]:
    """Ids of the device programs attached to a cgroup."""
    ids = (ctypes.c_uint32 * 64)()
    _, attr = _call(BPF_PROG_QUERY, [
        (0, "<I", cgroup_fd), (4, "<I", BPF_CGROUP_DEVICE), (16, "<Q", ctypes.addressof(ids)), (24, "<I", 64),
    ], f"bpf(BPF_PROG_QUERY) on {where}")
    count = struct.unpack_from("<I", attr, 24)[0]
    return list(ids[:count])


def install(cgroup_dir: str, default_allow: bool, rules: list[Rule]) -> None:
    """Attach a new device program to the cgroup, then detach the ones attached before it."""
    try:
        cgroup_fd = os.open(cgroup_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise CgroupError(f"open {cgroup_dir}: {e.strerror}") from None
    try:
        old = attached_ids(cgroup_fd, cgroup_dir)
        prog_fd = load(program(default_allow, rules))
        try:
            _call(BPF_PROG_ATTACH, [(0, "<I", cgroup_fd), (4, "<I", prog_fd), (8, "<I", BPF_CGROUP_DEVICE),
                                    (12, "<I", BPF_F_ALLOW_MULTI)], f"bpf(BPF_PROG_ATTACH) to {cgroup_dir}")
        finally:
            os.close(prog_fd)
        for prog_id in old:
            old_fd, _ = _call(BPF_PROG_GET_FD_BY_ID, [(0, "<I", prog_id)], f"bpf(BPF_PROG_GET_FD_BY_ID) {prog_id}")
            try:
                _call(BPF_PROG_DETACH, [(0, "<I", cgroup_fd), (4, "<I", old_fd), (8, "<I", BPF_CGROUP_DEVICE)],
                      f"bpf(BPF_PROG_DETACH) from {cgroup_dir}")
            finally:
                os.close(old_fd)
    finally:
        os.close(cgroup_fd)
