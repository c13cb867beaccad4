#!/usr/bin/python3
"""Run a command inside a throw-away QEMU (TCG) VM whose /sys/fs/cgroup is a pure cgroup2 hierarchy.

The host's / is shared read-only under a tmpfs overlay, so the command sees the working directory and the
project's venv at their host paths.  Its stdout and stderr are streamed back, its exit status becomes ours.
Exit status 124: the timeout killed the VM; 125: the VM failed before reporting a status.
Needs the pieces built by scripts/cgroup2-vm/build.sh (build/vm).  See docs/cgroup2-vm.md.

Usage: run.py [--timeout S] [--results DIR] [--env NAME=VALUE]... [--cwd DIR] -- COMMAND [ARG]...
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VM_DIR = Path(os.environ.get("CGROUP2_VM_DIR", Path(__file__).resolve().parents[2] / "build" / "vm"))
GUEST_RESULTS = "/run/cgroup2-vm/results"
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KERNEL_ARGS = "console=ttyS0 panic=-1 quiet cgroup_no_v1=all mitigations=off"
EXIT_TIMEOUT = 124
EXIT_VM_FAILED = 125
PR_SET_PDEATHSIG = 1


class Terminated(Exception):
    """SIGTERM/SIGHUP reached the runner: unwind so that QEMU is killed."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--timeout", type=float, default=900.0, help="seconds before QEMU is killed (default 900)")
    p.add_argument("--results", type=Path, help="host directory shared read-write (kept); default: a temp dir")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra environment")
    p.add_argument("--cwd", default=os.getcwd(), help="directory to run the command in (default: the current)")
    p.add_argument("--memory", default="2G")
    p.add_argument("--smp", type=int, default=2)
    p.add_argument("command", nargs="+")
    return p.parse_args(argv)


def command_script(command: list[str], cwd: str, env: list[str]) -> str:
    """The sh script the guest's init runs: a clean environment, then exec of the command in cwd."""
    environment = [
        f"PATH={GUEST_PATH}",
        "HOME=/root",
        "LANG=C.UTF-8",
        "PYTHONUNBUFFERED=1",
        "CGROUP2_VM=1",
        f"CGROUP2_VM_RESULTS={GUEST_RESULTS}",
        *env,
    ]
    return (
        f"cd {shlex.quote(cwd)} || exit {EXIT_VM_FAILED}\n"
        f"exec env -i {shlex.join(environment)} {shlex.join(command)}\n"
    )


def qemu_command(results: Path, memory: str, smp: int) -> list[str]:
    return [
        shutil.which("qemu-system-x86_64") or "qemu-system-x86_64",
        "-accel", "tcg,thread=multi", "-cpu", "max", "-M", "microvm,acpi=on",
        "-m", memory, "-smp", str(smp),
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", str(VM_DIR / "vmlinux"), "-initrd", str(VM_DIR / "initrd.img"), "-append", KERNEL_ARGS,
        "-chardev", f"file,id=console,path={results / 'console.log'}", "-serial", "chardev:console",
        "-fsdev", "local,id=host,path=/,readonly=on,security_model=none,multidevs=remap",
        "-device", "virtio-9p-device,fsdev=host,mount_tag=host",
        "-fsdev", f"local,id=results,path={results},security_model=none,multidevs=remap",
        "-device", "virtio-9p-device,fsdev=results,mount_tag=results",
        "-device", "virtio-serial-device",
        "-chardev", f"file,id=stdout,path={results / 'stdout.log'}",
        "-device", "virtserialport,chardev=stdout,name=stdout",
        "-chardev", f"file,id=stderr,path={results / 'stderr.log'}",
        "-device", "virtserialport,chardev=stderr,name=stderr",
        "-device", "virtio-rng-device",
    ]  # fmt: skip


def die_with_parent() -> None:
    """In QEMU before exec: get SIGKILL if the runner dies, even by SIGKILL."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Streamer:
    """Copies what QEMU appends to a log file onto one of our output streams."""

    def __init__(self, path: Path, out) -> None:
        self.path, self.out, self.offset = path, out, 0

    def pump(self) -> None:
        with contextlib.suppress(FileNotFoundError), self.path.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
            if data:
                self.offset += len(data)
                self.out.write(data)
                self.out.flush()


def run_vm(args: argparse.Namespace, results: Path) -> int:
    (results / "vm.conf").write_text(f"VM_DIR={shlex.quote(str(VM_DIR))}\n")
    (results / "cmd.sh").write_text(command_script(args.command, args.cwd, args.env))
    for name in ("status", "stdout.log", "stderr.log", "console.log"):
        (results / name).unlink(missing_ok=True)
    streams = [Streamer(results / "stdout.log", sys.stdout.buffer), Streamer(results / "stderr.log", sys.stderr.buffer)]
    with (results / "qemu.log").open("wb") as qemu_log:
        qemu = subprocess.Popen(
            qemu_command(results, args.memory, args.smp),
            stdin=subprocess.DEVNULL,
            stdout=qemu_log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    deadline = time.monotonic() + args.timeout
    try:
        while qemu.poll() is None and time.monotonic() < deadline:
            for s in streams:
                s.pump()
            time.sleep(0.05)
    finally:
        if qemu.poll() is None:
            qemu.kill()
        qemu.wait()
    for s in streams:
        s.pump()
    status = results / "status"
    if status.exists():
        return int(status.read_text())
    if qemu.returncode == -signal.SIGKILL:
        print(f"cgroup2-vm: timeout after {args.timeout:g} s, QEMU killed", file=sys.stderr)
        return EXIT_TIMEOUT
    print(f"cgroup2-vm: the VM ended without an exit status (QEMU status {qemu.returncode})", file=sys.stderr)
    for log in ("qemu.log", "console.log"):
        tail = (results / log).read_bytes()[-4000:].decode(errors="replace")
        if tail:
            print(f"--- {log} (end) ---\n{tail}", file=sys.stderr)
    return EXIT_VM_FAILED


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    missing = [p for p in (VM_DIR / "vmlinux", VM_DIR / "initrd.img") if not p.exists()]
    if missing:
        print(f"cgroup2-vm: {missing[0]} missing: run scripts/cgroup2-vm/build.sh", file=sys.stderr)
        return EXIT_VM_FAILED

    def terminate(signum, frame):
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    if args.results:
        args.results.mkdir(parents=True, exist_ok=True)
        return run_vm(args, args.results.resolve())
    with tempfile.TemporaryDirectory(prefix="cgroup2-vm.") as tmp:
        return run_vm(args, Path(tmp))


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (Terminated, KeyboardInterrupt):
        sys.exit(128 + signal.SIGTERM)
