#!/usr/bin/python3
"""Run a command inside a throw-away QEMU (TCG) VM whose /sys/fs/cgroup is a pure cgroup2 hierarchy.

With --cgroup-mode hybrid, /sys/fs/cgroup is instead the classic hybrid layout of a Debian host booted with
systemd: a tmpfs, one v1 hierarchy per controller, a named name=systemd one, and a cgroup2 at unified.

The host's / is shared read-only under a tmpfs overlay, so the command sees the working directory and the
project's venv at their host paths.  Its stdout and stderr are streamed back, its exit status becomes ours.
Exit status 124: the timeout killed the VM; 125: the VM failed (or did not boot) before reporting a status.
Needs the pieces built by scripts/cgroup2-vm/build.sh (build/vm).  See docs/cgroup2-vm.md.

Usage: run.py [--cgroup-mode v2|hybrid] [--timeout S] [--results DIR] [--env NAME=VALUE]... [--cwd DIR]
              -- COMMAND [ARG]...
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import re
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
KERNEL_ARGS = "console=ttyS0 panic=-1 quiet mitigations=off tsc=reliable"
# What the kernel command line adds per --cgroup-mode (hybrid keeps every v1 controller available).
CGROUP_MODE_KERNEL_ARGS = {"v2": "cgroup_no_v1=all", "hybrid": ""}
EXIT_TIMEOUT = 124
EXIT_VM_FAILED = 125
PR_SET_PDEATHSIG = 1


class Terminated(Exception):
    """SIGTERM/SIGHUP reached the runner: unwind so that QEMU is killed."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cgroup-mode", choices=sorted(CGROUP_MODE_KERNEL_ARGS), default="v2",
                   help="v2: a pure cgroup2 /sys/fs/cgroup (default); hybrid: v1 hierarchies plus cgroup2 at unified")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds before QEMU is killed (default 900)")
    p.add_argument("--boot-timeout", type=float, default=120.0, help="seconds for the VM to reach the command")
    p.add_argument("--results", type=Path, help="host directory shared read-write (kept); default: a temp dir")
    p.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra environment")
    p.add_argument("--cwd", default=os.getcwd(), help="directory to run the command in (default: the current)")
    p.add_argument("--memory", default="2G")
    p.add_argument("--smp", type=int, default=2)
    p.add_argument("--kernel-args", default="", help="appended to the guest kernel's command line")
    p.add_argument("command", nargs="+")
    return p.parse_args(argv)


def command_script(command: list[str], cwd: str, env: list[str], cgroup_mode: str) -> str:
    """The sh script the guest's init runs: a clean environment, then exec of the command in cwd."""
    environment = [
        f"PATH={GUEST_PATH}",
        "HOME=/root",
        "LANG=C.UTF-8",
        "PYTHONUNBUFFERED=1",
        "CGROUP2_VM=1",
        f"CGROUP2_VM_RESULTS={GUEST_RESULTS}",
        f"CGROUP_VM_MODE={cgroup_mode}",
        *env,
    ]
    # The host's env: busybox's would run its own applets (sh, mount, unshare...) instead of the host's.
    env_i = shlex.join(["/usr/bin/env", "-i", *environment])
    return f"cd {shlex.quote(cwd)} || exit {EXIT_VM_FAILED}\nexec {env_i} {shlex.join(command)}\n"


def host_kernel_log() -> bytes:
    """The records still in the host kernel's log buffer (b"" when /dev/kmsg cannot be read)."""
    records = []
    try:
        fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return b""
    try:
        while True:
            try:
                records.append(os.read(fd, 8192))
            except BrokenPipeError:  # a record was overwritten while we read: the next one follows
                continue
            except BlockingIOError:
                return b"".join(records)
    finally:
        os.close(fd)


def host_tsc_khz() -> int | None:
    """The host's TSC frequency, which is the guest's under TCG (rdtsc reads the host's counter).

    Passed as tsc_early_khz: the guest's own calibration against the emulated PIT fails when the host is
    busy, and the kernel then hangs early in boot.  Taken from the host kernel's log, else /proc/cpuinfo."""
    found = re.findall(rb"tsc: (?:Refined TSC clocksource calibration: |Detected )([0-9.]+) MHz", host_kernel_log())
    if not found:
        found = re.findall(rb"^cpu MHz\s*:\s*([0-9.]+)", Path("/proc/cpuinfo").read_bytes(), re.MULTILINE)
    return round(float(found[-1]) * 1000) if found else None


def kernel_command_line(cgroup_mode: str, extra: str) -> str:
    khz = host_tsc_khz()
    return " ".join(filter(None, [KERNEL_ARGS, CGROUP_MODE_KERNEL_ARGS[cgroup_mode],
                                  f"tsc_early_khz={khz}" if khz else "", extra]))


def qemu_command(results: Path, memory: str, smp: int, kernel_args: str) -> list[str]:
    def opt(path: Path) -> str:  # a path as a QEMU option value: commas doubled
        return str(path).replace(",", ",,")

    return [
        shutil.which("qemu-system-x86_64") or "qemu-system-x86_64",
        "-accel", "tcg,thread=multi", "-cpu", "max", "-M", "microvm,acpi=on",
        "-m", memory, "-smp", str(smp),
        "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
        "-kernel", str(VM_DIR / "vmlinux"), "-initrd", str(VM_DIR / "initrd.img"), "-append", kernel_args,
        "-chardev", f"file,id=console,path={opt(results / 'console.log')}", "-serial", "chardev:console",
        "-fsdev", "local,id=host,path=/,readonly=on,security_model=none,multidevs=remap",
        "-device", "virtio-9p-device,fsdev=host,mount_tag=host",
        "-fsdev", f"local,id=results,path={opt(results)},security_model=none,multidevs=remap",
        "-device", "virtio-9p-device,fsdev=results,mount_tag=results",
        "-device", "virtio-serial-device",
        "-chardev", f"file,id=stdout,path={opt(results / 'stdout.log')}",
        "-device", "virtserialport,chardev=stdout,name=stdout",
        "-chardev", f"file,id=stderr,path={opt(results / 'stderr.log')}",
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


def start_qemu(args: argparse.Namespace, results: Path) -> subprocess.Popen:
    (results / "vm.conf").write_text(f"VM_DIR={shlex.quote(str(VM_DIR))}\nVM_CWD={shlex.quote(args.cwd)}\n"
                                     f"VM_CGROUP_MODE={args.cgroup_mode}\n")
    (results / "cmd.sh").write_text(command_script(args.command, args.cwd, args.env, args.cgroup_mode))
    for name in ("booted", "status", "stdout.log", "stderr.log", "console.log"):
        (results / name).unlink(missing_ok=True)
    with (results / "qemu.log").open("wb") as qemu_log:
        return subprocess.Popen(
            qemu_command(results, args.memory, args.smp, kernel_command_line(args.cgroup_mode, args.kernel_args)),
            stdin=subprocess.DEVNULL,
            stdout=qemu_log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )


def supervise(qemu: subprocess.Popen, results: Path, timeout: float, boot_timeout: float) -> str | None:
    """Stream the output until QEMU exits; kill it (and say why) when it does not boot or run in time."""
    streams = [Streamer(results / "stdout.log", sys.stdout.buffer), Streamer(results / "stderr.log", sys.stderr.buffer)]
    start = time.monotonic()
    killed = None
    try:
        while qemu.poll() is None:
            for s in streams:
                s.pump()
            elapsed = time.monotonic() - start
            if elapsed > timeout:
                killed = f"timeout after {timeout:g} s"
            elif elapsed > boot_timeout and not (results / "booted").exists():
                killed = f"the VM did not boot in {boot_timeout:g} s"
            if killed:
                break
            time.sleep(0.05)
    finally:
        if qemu.poll() is None:
            qemu.kill()
        qemu.wait()
    for s in streams:
        s.pump()
    return killed


def run_vm(args: argparse.Namespace, results: Path) -> int:
    killed = supervise(start_qemu(args, results), results, args.timeout, args.boot_timeout)
    status = results / "status"
    if status.exists():
        return int(status.read_text())
    if killed:
        print(f"cgroup2-vm: {killed}, QEMU killed", file=sys.stderr)
    else:
        print("cgroup2-vm: the VM stopped without an exit status", file=sys.stderr)
    if killed is None or not (results / "booted").exists():
        for log in ("qemu.log", "console.log"):
            tail = (results / log).read_bytes()[-4000:].decode(errors="replace")
            if tail:
                print(f"--- {log} (end) ---\n{tail}", file=sys.stderr)
    return EXIT_TIMEOUT if killed and killed.startswith("timeout") else EXIT_VM_FAILED


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
    except Terminated as e:
        sys.exit(128 + e.args[0])
    except KeyboardInterrupt:
        sys.exit(128 + signal.SIGINT)
