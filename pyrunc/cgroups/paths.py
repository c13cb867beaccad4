"""Where a container's cgroups live: the host's mode (v1/hybrid or pure v2), the hierarchies, the paths.

Placement follows runc's cgroupfs driver:
- an absolute `linux.cgroupsPath` is taken from the root of each hierarchy;
- a relative one is placed under the runtime's own cgroup (from /proc/self/cgroup), per v1 hierarchy;
  on pure v2 under the *parent* of the runtime's own cgroup (that cgroup has processes, so it cannot
  hand controllers down to a child);
- no `cgroupsPath` means the relative path `<container id>`.
"""

from __future__ import annotations

import os

from pyrunc.errors import CgroupError

CGROUP_ROOT = "/sys/fs/cgroup"

V1_CONTROLLERS = frozenset({
    "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "net_prio", "blkio",
    "perf_event", "hugetlb", "pids", "rdma", "misc",
})


def is_pure_v2(root: str = CGROUP_ROOT) -> bool:
    """True when /sys/fs/cgroup itself is a cgroup2 mount (only cgroup2 has cgroup.controllers at its root)."""
    return os.path.exists(os.path.join(root, "cgroup.controllers"))


def unescape_mountinfo(field: str) -> str:
    """A mountinfo field with the kernel's octal escapes (\\040 for a space, \\134 for a backslash) decoded."""
    if "\\" not in field:
        return field
    first, *rest = field.split("\\")
    out = [first]
    for part in rest:
        octal = part[:3]
        if len(octal) == 3 and all(c in "01234567" for c in octal):
            out.append(chr(int(octal, 8)) + part[3:])
        else:
            out.append("\\" + part)
    return "".join(out)


class Mount:
    __slots__ = ("mountpoint", "root")

    def __init__(self, mountpoint: str, root: str) -> None:
        self.mountpoint = mountpoint
        self.root = root


def parse_mountinfo(text: str) -> tuple[dict[str, Mount], Mount | None]:
    """The v1 hierarchies by controller ("name=systemd" included) and the first cgroup2 mount, if any."""
    v1: dict[str, Mount] = {}
    v2: Mount | None = None
    for line in text.splitlines():
        fields = line.split()
        try:
            sep = fields.index("-")
        except ValueError:
            continue
        fstype = fields[sep + 1]
        if fstype not in ("cgroup", "cgroup2"):
            continue
        mount = Mount(unescape_mountinfo(fields[4]), unescape_mountinfo(fields[3]))
        if fstype == "cgroup2":
            v2 = v2 or mount
            continue
        for option in fields[sep + 3].split(","):
            if option in V1_CONTROLLERS or option.startswith("name="):
                v1.setdefault(option, mount)
    return v1, v2


def parse_proc_cgroup(text: str) -> dict[str, str]:
    """/proc/PID/cgroup as {controller: path}; the cgroup2 entry is under the key ""."""
    result: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            result[controller] = parts[2]
    return result


def clean(path: str) -> str:
    """runc's CleanPath: lexically clean, and a relative path cannot climb above its base with "..".

    Returns an absolute path for an absolute input, else a relative one ("" for nothing left).
    """
    if os.path.isabs(path):
        return os.path.normpath(path)
    cleaned = os.path.relpath(os.path.normpath("/" + path), "/")
    return "" if cleaned == "." else cleaned


def inner_path(cgroups_path: str | None, container_id: str) -> str:
    """The configured path, cleaned, or the container id when the config has none."""
    if cgroups_path:
        return clean(cgroups_path)
    return clean(container_id)


def hierarchy_dir(mount: Mount, own: str | None, inner: str, *, parent_of_own: bool = False) -> str:
    """The container's directory in one hierarchy mounted at `mount`."""
    if os.path.isabs(inner):
        return os.path.normpath(mount.mountpoint + inner)
    base = own or "/"
    if parent_of_own:
        base = os.path.dirname(base)
    # Our own cgroup is reported from the hierarchy's root; the mount may show only a subtree of it.
    if mount.root != "/" and (base == mount.root or base.startswith(mount.root + "/")):
        base = base[len(mount.root):] or "/"
    return os.path.normpath(os.path.join(mount.mountpoint + base, inner))


def read_text(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError as e:
        raise CgroupError(f"read {path}: {e.strerror}") from None
