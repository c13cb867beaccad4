"""Semantic checks of a config that JSON Schema cannot express (run after the schema check passed).

Messages follow the schema errors' style: `config.json: <json path>: <problem>`.
"""

from __future__ import annotations

import os

from pyrunc.errors import ConfigError
from pyrunc.fastjson import quote
from pyrunc.security.capabilities import NAMES as capability_names
from pyrunc.security.rlimits import NAMES as rlimit_numbers

#: Every capability and rlimit pyrunc knows: the tables of the modules that apply them.
CAPABILITIES = capability_names
RLIMITS = tuple(rlimit_numbers)
#: The namespace types of the runtime-spec, all supported by pyrunc.
NAMESPACE_TYPES = ("cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts")
#: The ociVersion major versions pyrunc reads.
SUPPORTED_MAJOR = 1
CAPABILITY_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")

# A string: `re` compiles it on first use (only when a capability is unknown), not at import.
_CAPABILITY_SHAPE = r"CAP_[A-Z_0-9]+"
_KNOWN_CAPABILITIES = frozenset(CAPABILITIES)


def problem(what: str, path: str, message: str) -> ConfigError:
    return ConfigError(f"{what}: {path}: {message}")


def check_config(config: dict) -> None:
    """Raise ConfigError for the first semantic problem of a schema-valid config.json."""
    what = "config.json"
    check_oci_version(config["ociVersion"], what)
    if not config["root"]["path"]:
        raise problem(what, "root.path", "must not be empty")
    for i, mount in enumerate(config.get("mounts", ())):
        require_absolute(mount["destination"], what, f"mounts[{i}].destination")
    for kind in HOOK_KINDS:
        for i, hook in enumerate(config.get("hooks", {}).get(kind, ())):
            require_absolute(hook["path"], what, f"hooks.{kind}[{i}].path")
    if "process" not in config:
        raise problem(what, "process", "is required to create a container")
    check_process(config["process"], what, "process.")
    check_namespaces(config, what)


def check_rootfs(config: dict, bundle: str) -> None:
    """root.path (relative to the bundle) must name an existing directory."""
    rootfs = os.path.join(bundle, config["root"]["path"])
    if not os.path.isdir(rootfs):
        raise problem("config.json", "root.path", f"{quote(rootfs)}: no such directory")


def check_oci_version(version: str, what: str) -> None:
    """MAJOR.MINOR.PATCH[-pre][+build] with major 1 (parsed by hand: a regex costs 0.2 ms to compile)."""
    numbers = version.partition("+")[0].partition("-")[0].split(".")
    if len(numbers) != 3 or not all(_is_semver_number(n) for n in numbers):
        raise problem(what, "ociVersion", f"{quote(version)} is not a SemVer version")
    if int(numbers[0]) != SUPPORTED_MAJOR:
        raise problem(what, "ociVersion", f"{quote(version)} is not supported (pyrunc reads {SUPPORTED_MAJOR}.x)")


def _is_semver_number(text: str) -> bool:
    return text.isascii() and text.isdigit() and (text == "0" or not text.startswith("0"))


def require_absolute(path: str, what: str, where: str) -> None:
    if not path.startswith("/"):
        raise problem(what, where, f"{quote(path)} is not an absolute path")


def check_process(process: dict, what: str, prefix: str) -> None:
    """Checks of a process object; `prefix` is its JSON path with a trailing dot ("process." or "")."""
    require_absolute(process["cwd"], what, f"{prefix}cwd")
    for kind in CAPABILITY_SETS:
        for i, name in enumerate(process.get("capabilities", {}).get(kind, ())):
            if name not in _KNOWN_CAPABILITIES:
                import re  # only for this error's wording

                shape = "unknown capability" if re.fullmatch(_CAPABILITY_SHAPE, name) else "not a capability name"
                raise problem(what, f"{prefix}capabilities.{kind}[{i}]", f"{quote(name)}: {shape}")
    seen: set[str] = set()
    for i, rlimit in enumerate(process.get("rlimits", ())):
        kind = rlimit["type"]
        if kind not in RLIMITS:
            raise problem(what, f"{prefix}rlimits[{i}].type", f"{quote(kind)}: unknown rlimit")
        if kind in seen:
            raise problem(what, f"{prefix}rlimits[{i}].type", f"{quote(kind)} is duplicated")
        seen.add(kind)


def check_namespaces(config: dict, what: str) -> None:
    """Unique types, absolute paths, and settings that need a new namespace of some type."""
    linux = config.get("linux", {})
    new: set[str] = set()
    joined: set[str] = set()
    for i, namespace in enumerate(linux.get("namespaces", ())):
        kind = namespace["type"]
        if kind in new or kind in joined:
            raise problem(what, f"linux.namespaces[{i}].type", f"{quote(kind)} is duplicated")
        if "path" in namespace:
            require_absolute(namespace["path"], what, f"linux.namespaces[{i}].path")
            joined.add(kind)
        else:
            new.add(kind)
    has_mappings = bool(linux.get("uidMappings") or linux.get("gidMappings"))
    if "user" in new and not (linux.get("uidMappings") and linux.get("gidMappings")):
        raise problem(what, "linux", "a new user namespace needs uidMappings and gidMappings")
    # Clients such as podman keep the mappings when they join a user namespace; runc accepts that too.
    if has_mappings and "user" not in new and "user" not in joined:
        raise problem(what, "linux", "uidMappings/gidMappings given without a user namespace")
    for key in ("hostname", "domainname"):
        if config.get(key) and "uts" not in new:
            raise problem(what, key, f"unable to set {key} without a private UTS namespace")
    if linux.get("timeOffsets") and "time" not in new:
        raise problem(what, "linux.timeOffsets", "unable to set time offsets without a new time namespace")


def check_terminal_flags(terminal: bool, console_socket: str, detach: bool) -> None:
    """runc's rules for a terminal: a detached process needs a console socket, and a socket needs both."""
    if detach and terminal and not console_socket:
        raise ConfigError("cannot allocate tty if runc will detach without setting console socket")
    if console_socket and (not detach or not terminal):
        raise ConfigError("cannot use console socket if runc will not detach or allocate tty")
