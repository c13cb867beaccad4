"""Device access rules: from config.json to one normalized list shared by v1 (devices.allow/deny) and v2 (BPF).

Semantics are runc's: everything is denied by default, `linux.resources.devices` apply in order (the last
matching rule wins), then the devices every container gets are allowed (runc's default list, checked
against runc 1.1.5's devices.list on this host). Unlike runc, each `linux.devices` entry is allowed with
"rwm" too, unless `linux.resources.devices` says otherwise: those allows go in after the config's last
reset rule (its usual leading deny-all) and before its other rules, so that a deny rule still wins.
"""

from __future__ import annotations

from pyrunc.errors import CgroupError

WILDCARD = -1


class Rule(tuple):
    """One device rule: allow, type ("a" all, "c" or "b"), major and minor (WILDCARD for any), access (a
    non-empty subset of "rwm", in that order). A plain tuple subclass: namedtuple imports `collections`,
    milliseconds at every create."""

    __slots__ = ()

    def __new__(cls, allow: bool, type: str, major: int, minor: int, access: str) -> Rule:
        return tuple.__new__(cls, (allow, type, major, minor, access))

    allow = property(lambda self: self[0])
    type = property(lambda self: self[1])
    major = property(lambda self: self[2])
    minor = property(lambda self: self[3])
    access = property(lambda self: self[4])

    def __repr__(self) -> str:
        return f"Rule{tuple(self)!r}"

    def of_type(self, type_: str) -> Rule:
        return Rule(self[0], type_, self[2], self[3], self[4])

    def is_reset(self) -> bool:
        """A rule on every device with every access: it replaces the default and everything before it."""
        return self.type == "a" and self.major == WILDCARD and self.minor == WILDCARD and self.access == "rwm"

    def v1_line(self) -> str:
        """The line written to devices.allow or devices.deny."""
        if self.type == "a":
            return "a"
        major = "*" if self.major == WILDCARD else str(self.major)
        minor = "*" if self.minor == WILDCARD else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


def _allowed(type_: str, major: int, minor: int) -> Rule:
    return Rule(True, type_, major, minor, "rwm")


DEFAULT_ALLOWED = (
    Rule(True, "c", WILDCARD, WILDCARD, "m"),  # mknod of any device (opening it is still filtered)
    Rule(True, "b", WILDCARD, WILDCARD, "m"),
    _allowed("c", 1, 3),  # /dev/null
    _allowed("c", 1, 8),  # /dev/random
    _allowed("c", 1, 7),  # /dev/full
    _allowed("c", 5, 0),  # /dev/tty
    _allowed("c", 1, 5),  # /dev/zero
    _allowed("c", 1, 9),  # /dev/urandom
    _allowed("c", 136, WILDCARD),  # /dev/pts/*
    _allowed("c", 5, 2),  # /dev/ptmx
    _allowed("c", 10, 200),  # /dev/net/tun
)


def _access(value: object, where: str) -> str:
    text = "rwm" if value is None else value
    if not isinstance(text, str) or not text or set(text) - set("rwm"):
        raise CgroupError(f"{where}.access: {value!r} is not a non-empty combination of r, w and m")
    return "".join(c for c in "rwm" if c in text)


def _number(value: object, where: str) -> int:
    if value is None:
        return WILDCARD
    if not isinstance(value, int) or isinstance(value, bool) or value < WILDCARD:
        raise CgroupError(f"{where}: {value!r} is not a device number")
    return value


def parse_resource_rules(entries: list, where: str = "linux.resources.devices") -> list[Rule]:
    """`linux.resources.devices` as rules; a partial rule of type "a" becomes a "c" and a "b" rule."""
    rules: list[Rule] = []
    for index, entry in enumerate(entries or []):
        at = f"{where}[{index}]"
        type_ = entry.get("type", "a") or "a"
        if type_ not in ("a", "b", "c"):
            raise CgroupError(f"{at}.type: {type_!r} is not one of a, b, c")
        rule = Rule(bool(entry.get("allow")), type_, _number(entry.get("major"), f"{at}.major"),
                    _number(entry.get("minor"), f"{at}.minor"), _access(entry.get("access"), at))
        if rule.type == "a" and not rule.is_reset():
            rules += [rule.of_type("c"), rule.of_type("b")]
        else:
            rules.append(rule)
    return rules


def linux_device_rules(config: dict) -> list[Rule]:
    """Each device `linux.devices` creates is allowed with every access."""
    devices = (config.get("linux") or {}).get("devices") or []
    return [_allowed("b" if d["type"] == "b" else "c", d["major"], d["minor"])
            for d in devices if d.get("type") in ("c", "u", "b")]


def container_rules(config: dict, extra: list[Rule] | None = None) -> list[Rule]:
    """Every rule for a container, deny-all first; `extra` replaces the linux.devices ones (for update)."""
    linux = config.get("linux") or {}
    configured = parse_resource_rules((linux.get("resources") or {}).get("devices") or [])
    after_reset = max((index + 1 for index, rule in enumerate(configured) if rule.is_reset()), default=0)
    listed = linux_device_rules(config) if extra is None else extra
    return [Rule(False, "a", WILDCARD, WILDCARD, "rwm"), *configured[:after_reset], *listed,
            *configured[after_reset:], *DEFAULT_ALLOWED]


def effective(rules: list[Rule]) -> tuple[bool, list[Rule]]:
    """(allow by default?, the rules after the last reset rule); no reset at all means deny by default."""
    default_allow = False
    start = 0
    for index, rule in enumerate(rules):
        if rule.is_reset():
            default_allow, start = rule.allow, index + 1
    return default_allow, rules[start:]
