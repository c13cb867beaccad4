"""The runtime-spec "features" document printed by `pyrunc features` (features.md, features-linux.md).

What pyrunc supports is stated once, in the constants below: when a part of the runtime gains or
loses a feature, change it here. Only the seccomp architectures are asked of libseccomp, when the
document is built (never at import: `features` is not a hot command, the bindings are imported lazily).
"""

from __future__ import annotations

from pyrunc import SPEC_VERSION, __version__
from pyrunc.config.validate import CAPABILITIES, HOOK_KINDS, NAMESPACE_TYPES

# ---- what pyrunc supports ------------------------------------------------------------------------------
OCI_VERSION_MIN = "1.0.0"
CGROUP_SUPPORT = {"v1": True, "v2": True, "systemd": True, "systemdUser": False, "rdma": False}
APPARMOR_ENABLED = False  # no LSM support in pyrunc (and none on the hosts it is tested on)
SELINUX_ENABLED = False
INTEL_RDT_ENABLED = False
IDMAP_MOUNTS_ENABLED = True  # mounts[].uidMappings/gidMappings through mount_setattr(MOUNT_ATTR_IDMAP)
NET_DEVICES_ENABLED = True  # linux.netDevices moved into the container's network namespace
# ---------------------------------------------------------------------------------------------------------


def features_document() -> dict:
    """The features document, as a dict ready for json.dumps."""
    from pyrunc.rootfs.options import known_words
    from pyrunc.security import seccomp

    seccomp_archs, libseccomp_version = _libseccomp_facts()
    annotations = {"org.pyrunc.version": __version__}
    if libseccomp_version:
        annotations["io.github.seccomp.libseccomp.version"] = libseccomp_version
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": SPEC_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": known_words(),
        "linux": {
            "namespaces": list(NAMESPACE_TYPES),
            "capabilities": list(CAPABILITIES),
            "cgroup": dict(CGROUP_SUPPORT),
            "seccomp": {
                "enabled": bool(seccomp_archs),
                "actions": sorted(seccomp.ACTIONS),
                "operators": sorted(seccomp.OPERATORS),
                "archs": seccomp_archs,
                "knownFlags": sorted(seccomp.FLAGS),
                "supportedFlags": sorted(seccomp.FLAGS),
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
    from pyrunc.version_info import libseccomp_version

    return sorted(archs), libseccomp_version()
