"""The runtime-spec "features" document printed by `pyrunc features` (features.md, features-linux.md).

What pyrunc supports is stated once, in the constants below: when a part of the runtime gains or
loses a feature, change it here. Only the seccomp architectures are asked of libseccomp, when the
document is built (never at import: `features` is not a hot command, the bindings are imported lazily).
"""

from __future__ import annotations

import ctypes

from pyrunc import SPEC_VERSION, __version__
from pyrunc.config.validate import CAPABILITIES, HOOK_KINDS, NAMESPACE_TYPES

# ---- what pyrunc supports ------------------------------------------------------------------------------
OCI_VERSION_MIN = "1.0.0"
#: Mount options understood in `mounts[].options` (the same vocabulary as runc).
MOUNT_OPTIONS = (
    "acl", "async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "iversion", "lazytime",
    "loud", "mand", "noacl", "noatime", "nodev", "nodiratime", "noexec", "noiversion", "nolazytime", "nomand",
    "norelatime", "nostrictatime", "nosuid", "nosymfollow", "private", "ratime", "rbind", "rdev", "rdiratime",
    "relatime", "remount", "rexec", "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnorelatime",
    "rnostrictatime", "rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared",
    "rslave", "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent", "slave",
    "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable",
)
CGROUP_SUPPORT = {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False}
SECCOMP_ACTIONS = (
    "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
    "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP",
)
SECCOMP_OPERATORS = (
    "SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE",
)
#: Filter flags pyrunc knows how to apply, and those this kernel accepts (all of them since Linux 4.17).
SECCOMP_KNOWN_FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_LOG")
SECCOMP_SUPPORTED_FLAGS = SECCOMP_KNOWN_FLAGS
APPARMOR_ENABLED = False  # no LSM support in pyrunc (and none on the hosts it is tested on)
SELINUX_ENABLED = False
INTEL_RDT_ENABLED = False
IDMAP_MOUNTS_ENABLED = True  # mounts[].uidMappings/gidMappings through mount_setattr(MOUNT_ATTR_IDMAP)
NET_DEVICES_ENABLED = True  # linux.netDevices moved into the container's network namespace
# ---------------------------------------------------------------------------------------------------------


def features_document() -> dict:
    """The features document, as a dict ready for json.dumps."""
    seccomp_archs, libseccomp_version = _libseccomp_facts()
    annotations = {"org.pyrunc.version": __version__}
    if libseccomp_version:
        annotations["io.github.seccomp.libseccomp.version"] = libseccomp_version
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": SPEC_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": list(MOUNT_OPTIONS),
        "linux": {
            "namespaces": list(NAMESPACE_TYPES),
            "capabilities": list(CAPABILITIES),
            "cgroup": dict(CGROUP_SUPPORT),
            "seccomp": {
                "enabled": bool(seccomp_archs),
                "actions": list(SECCOMP_ACTIONS),
                "operators": list(SECCOMP_OPERATORS),
                "archs": seccomp_archs,
                "knownFlags": list(SECCOMP_KNOWN_FLAGS),
                "supportedFlags": list(SECCOMP_SUPPORTED_FLAGS),
            },
            "apparmor": {"enabled": APPARMOR_ENABLED},
            "selinux": {"enabled": SELINUX_ENABLED},
            "intelRdt": {"enabled": INTEL_RDT_ENABLED},
            "mountExtensions": {"idmap": {"enabled": IDMAP_MOUNTS_ENABLED}},
            "netDevices": {"enabled": NET_DEVICES_ENABLED},
        },
        "annotations": annotations,
    }


def _libseccomp_facts() -> tuple[list[str], str | None]:
    """(sorted SCMP_ARCH_* names libseccomp accepts, libseccomp version); ([], None) without libseccomp."""
    try:
        import pyseccomp
    except (ImportError, OSError):  # the bindings raise OSError when libseccomp.so is missing
        return [], None
    archs = []
    for name, token in vars(pyseccomp.Arch).items():
        if name.startswith("_") or name == "NATIVE":
            continue
        # A filter holds one byte order: start from an empty one so big-endian archs can be tried too.
        scratch = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
        scratch.remove_arch(pyseccomp.system_arch())
        try:
            scratch.add_arch(token)
        except OSError:
            continue
        archs.append(f"SCMP_ARCH_{name}")
    return sorted(archs), _libseccomp_version()


class _SeccompVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


def _libseccomp_version() -> str | None:
    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return None
    lib.seccomp_version.restype = ctypes.POINTER(_SeccompVersion)
    v = lib.seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"
