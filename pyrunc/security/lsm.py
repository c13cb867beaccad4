"""AppArmor and SELinux: `process.apparmorProfile`, `process.selinuxLabel`, `linux.mountLabel`.

On a host without the LSM, runc 1.1.5 refuses them (measured on Debian 12 without an LSM):
selinuxLabel at create ("selinux label is specified in config, but selinux is disabled or not
supported"), apparmorProfile in the init ("unable to apply apparmor profile: ... write
/proc/self/attr/exec: invalid argument"), mountLabel when mounting (`context=` rejected with EINVAL).
pyrunc refuses all three at create, before anything is set up.
"""

from __future__ import annotations

import os

from pyrunc.errors import SecurityError
from pyrunc.security import os_reason


def apparmor_enabled() -> bool:
    try:
        with open("/sys/module/apparmor/parameters/enabled") as f:
            return f.read().strip() == "Y"
    except OSError:
        return False


def selinux_enabled() -> bool:
    return os.path.exists("/sys/fs/selinux/enforce")


def check(process: dict, linux: dict) -> None:
    """At create: a label for an LSM the host does not run is an error."""
    if process.get("apparmorProfile") and not apparmor_enabled():
        raise SecurityError(
            f"process.apparmorProfile {process['apparmorProfile']!r} is set but AppArmor is not enabled on this host"
        )
    if process.get("selinuxLabel") and not selinux_enabled():
        raise SecurityError("selinux label is specified in config, but selinux is disabled or not supported")
    if linux.get("mountLabel") and not selinux_enabled():
        raise SecurityError("linux.mountLabel is specified in config, but selinux is disabled or not supported")


def apply_exec_labels(process: dict) -> None:
    """In the init, right before execve: ask the LSM to switch labels at exec."""
    if process.get("apparmorProfile"):
        attr = "/proc/self/attr/apparmor/exec"
        _write_attr(attr if os.path.exists(attr) else "/proc/self/attr/exec", f"exec {process['apparmorProfile']}")
    if process.get("selinuxLabel"):
        _write_attr("/proc/self/attr/exec", process["selinuxLabel"])


def _write_attr(path: str, value: str) -> None:
    try:
        with open(path, "w") as f:
            f.write(value)
    except OSError as e:
        raise SecurityError(f"cannot set the LSM exec label {value!r} ({path}): {os_reason(e)}") from None
