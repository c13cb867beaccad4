"""Who the container process runs as: bounding set, user and groups, capabilities, umask, no_new_privs.

The order is runc's: drop the bounding set while still privileged, keep the permitted capabilities across
setresuid with PR_SET_KEEPCAPS, switch groups and user, then capset the configured sets and raise the
ambient ones.
"""

from __future__ import annotations

import os

from pyrunc import syscalls
from pyrunc.errors import SecurityError
from pyrunc.security import capabilities, os_reason
from pyrunc.security.capabilities import CapSets

DEFAULT_UMASK = 0o022


def parse_capabilities(caps: dict | None) -> CapSets:
    """At create: `process.capabilities` → bitmasks; an unknown name raises SecurityError."""
    return capabilities.parse(caps)


def _setgroups_allowed() -> bool:
    """False in a user namespace whose /proc/self/setgroups says "deny" (rootless single-id maps)."""
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() != "deny"
    except FileNotFoundError:
        return True


def _switch_user(user: dict) -> None:
    uid, gid = user.get("uid", 0), user.get("gid", 0)
    groups = list(user.get("additionalGids") or ())
    if _setgroups_allowed():
        try:
            os.setgroups(groups)
        except OSError as e:
            raise SecurityError(f"cannot set additionalGids {groups}: {os_reason(e)}") from None
    elif groups:
        raise SecurityError(f"cannot set additionalGids {groups}: setgroups is denied in this user namespace")
    for kind, number, switch in (("gid", gid, os.setresgid), ("uid", uid, os.setresuid)):
        try:
            switch(number, number, number)
        except OSError as e:
            raise SecurityError(
                f"cannot switch to {kind} {number}: {os_reason(e)} (is it mapped in the user namespace?)"
            ) from None


def switch_identity(user: dict, caps: CapSets) -> None:
    """In the init, after pivot_root: become `process.user` with exactly the configured capabilities."""
    try:
        capabilities.drop_bounding(caps.bounding)
    except OSError as e:
        raise SecurityError(f"unable to drop the capability bounding set: {os_reason(e)}") from None
    syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 1)
    _switch_user(user)
    syscalls.prctl(syscalls.PR_SET_KEEPCAPS, 0)
    capabilities.apply_sets(caps)
    os.umask(user.get("umask", DEFAULT_UMASK))


def set_no_new_privs() -> None:
    syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
