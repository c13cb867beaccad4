"""The mount-option table: what each word of `mounts[].options` means (the words runc's `features` lists).

A word is a mount(2) flag to set or clear, a propagation type applied after the mount, a recursive
`r*` attribute applied with mount_setattr(AT_RECURSIVE), an id-mapping request, `tmpcopyup`, or else
filesystem data passed to mount(2) as it is.
"""

from __future__ import annotations

from .. import syscalls as s

#: word → (clear the flag instead of setting it, MS_* flag)
FLAGS: dict[str, tuple[bool, int]] = {
    "defaults": (False, 0),
    "ro": (False, s.MS_RDONLY), "rw": (True, s.MS_RDONLY),
    "nosuid": (False, s.MS_NOSUID), "suid": (True, s.MS_NOSUID),
    "nodev": (False, s.MS_NODEV), "dev": (True, s.MS_NODEV),
    "noexec": (False, s.MS_NOEXEC), "exec": (True, s.MS_NOEXEC),
    "sync": (False, s.MS_SYNCHRONOUS), "async": (True, s.MS_SYNCHRONOUS),
    "dirsync": (False, s.MS_DIRSYNC),
    "remount": (False, s.MS_REMOUNT),
    "mand": (False, s.MS_MANDLOCK), "nomand": (True, s.MS_MANDLOCK),
    "noatime": (False, s.MS_NOATIME), "atime": (True, s.MS_NOATIME),
    "nodiratime": (False, s.MS_NODIRATIME), "diratime": (True, s.MS_NODIRATIME),
    "relatime": (False, s.MS_RELATIME), "norelatime": (True, s.MS_RELATIME),
    "strictatime": (False, s.MS_STRICTATIME), "nostrictatime": (True, s.MS_STRICTATIME),
    "lazytime": (False, s.MS_LAZYTIME), "nolazytime": (True, s.MS_LAZYTIME),
    "iversion": (False, s.MS_I_VERSION), "noiversion": (True, s.MS_I_VERSION),
    "nosymfollow": (False, s.MS_NOSYMFOLLOW), "symfollow": (True, s.MS_NOSYMFOLLOW),
    "silent": (False, s.MS_SILENT), "loud": (True, s.MS_SILENT),
    "acl": (False, s.MS_POSIXACL), "noacl": (True, s.MS_POSIXACL),
    "bind": (False, s.MS_BIND), "rbind": (False, s.MS_BIND | s.MS_REC),
}

#: propagation word → mount(2) flags (also the values linux.rootfsPropagation accepts)
PROPAGATION: dict[str, int] = {
    "private": s.MS_PRIVATE, "rprivate": s.MS_PRIVATE | s.MS_REC,
    "shared": s.MS_SHARED, "rshared": s.MS_SHARED | s.MS_REC,
    "slave": s.MS_SLAVE, "rslave": s.MS_SLAVE | s.MS_REC,
    "unbindable": s.MS_UNBINDABLE, "runbindable": s.MS_UNBINDABLE | s.MS_REC,
}

_ATIME = s.MOUNT_ATTR__ATIME
#: recursive word → (attributes to clear, attributes to set), for mount_setattr(AT_RECURSIVE)
RECURSIVE: dict[str, tuple[int, int]] = {
    "rro": (0, s.MOUNT_ATTR_RDONLY), "rrw": (s.MOUNT_ATTR_RDONLY, 0),
    "rnosuid": (0, s.MOUNT_ATTR_NOSUID), "rsuid": (s.MOUNT_ATTR_NOSUID, 0),
    "rnodev": (0, s.MOUNT_ATTR_NODEV), "rdev": (s.MOUNT_ATTR_NODEV, 0),
    "rnoexec": (0, s.MOUNT_ATTR_NOEXEC), "rexec": (s.MOUNT_ATTR_NOEXEC, 0),
    "rnodiratime": (0, s.MOUNT_ATTR_NODIRATIME), "rdiratime": (s.MOUNT_ATTR_NODIRATIME, 0),
    "rnosymfollow": (0, s.MOUNT_ATTR_NOSYMFOLLOW), "rsymfollow": (s.MOUNT_ATTR_NOSYMFOLLOW, 0),
    # the kernel changes the access-time mode only when the whole atime mask is cleared
    "rnoatime": (_ATIME, s.MOUNT_ATTR_NOATIME), "ratime": (_ATIME, s.MOUNT_ATTR_RELATIME),
    "rstrictatime": (_ATIME, s.MOUNT_ATTR_STRICTATIME), "rnostrictatime": (_ATIME, s.MOUNT_ATTR_RELATIME),
    "rrelatime": (_ATIME, s.MOUNT_ATTR_RELATIME), "rnorelatime": (_ATIME, s.MOUNT_ATTR_STRICTATIME),
}

IDMAP_WORDS = ("idmap", "ridmap")
EXTRA_WORDS = ("tmpcopyup", *IDMAP_WORDS)

#: mount(2) flags with a mount_setattr attribute, used to apply a bind mount's flags to its clone
_ATTR_OF_FLAG = {
    s.MS_RDONLY: s.MOUNT_ATTR_RDONLY, s.MS_NOSUID: s.MOUNT_ATTR_NOSUID, s.MS_NODEV: s.MOUNT_ATTR_NODEV,
    s.MS_NOEXEC: s.MOUNT_ATTR_NOEXEC, s.MS_NODIRATIME: s.MOUNT_ATTR_NODIRATIME,
    s.MS_NOSYMFOLLOW: s.MOUNT_ATTR_NOSYMFOLLOW,
}
_ATIME_FLAGS = {s.MS_NOATIME: s.MOUNT_ATTR_NOATIME, s.MS_STRICTATIME: s.MOUNT_ATTR_STRICTATIME,
                s.MS_RELATIME: s.MOUNT_ATTR_RELATIME}


class MountOptions:
    """The meaning of one mount's option list."""

    __slots__ = ("cleared", "data", "flags", "idmap", "propagation", "rec_clear", "rec_set", "tmpcopyup")

    def __init__(self) -> None:
        self.flags = 0
        #: flags an option explicitly turned off (`rw`, `suid` ...): a bind clone must clear them
        self.cleared = 0
        self.propagation: list[int] = []
        self.rec_clear = 0
        self.rec_set = 0
        self.data: list[str] = []
        #: "idmap" or "ridmap" when the options ask for an id-mapped mount
        self.idmap: str | None = None
        self.tmpcopyup = False

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & s.MS_BIND)

    @property
    def recursive_bind(self) -> bool:
        return bool(self.flags & s.MS_REC)

    @property
    def data_string(self) -> str | None:
        return ",".join(self.data) or None

    def bind_attributes(self) -> tuple[int, int]:
        """(attributes to clear, attributes to set) that give a bind clone this mount's flags.

        Attributes the options do not mention are left as the source has them, so flags the kernel
        locks on the source (in a user namespace) are kept."""
        clear = set_ = 0
        for flag, attr in _ATTR_OF_FLAG.items():
            if self.flags & flag:
                set_ |= attr
            elif self.cleared & flag:
                clear |= attr
        atime = [attr for flag, attr in _ATIME_FLAGS.items() if self.flags & flag]
        if atime:
            clear |= _ATIME
            set_ |= atime[-1]
        elif self.cleared & (s.MS_NOATIME | s.MS_STRICTATIME | s.MS_RELATIME):
            clear |= _ATIME
        return clear, set_


def parse(options: list[str] | None, mount_type: str | None = None) -> MountOptions:
    """Fold the words in order (a later word overrides an earlier one), as runc does."""
    parsed = MountOptions()
    for word in options or ():
        if word in FLAGS:
            clear, flag = FLAGS[word]
            if clear:
                parsed.flags &= ~flag
                parsed.cleared |= flag
            else:
                parsed.flags |= flag
                parsed.cleared &= ~flag
        elif word in PROPAGATION:
            parsed.propagation.append(PROPAGATION[word])
        elif word in RECURSIVE:
            clear, set_ = RECURSIVE[word]
            parsed.rec_set = (parsed.rec_set & ~clear) | set_
            parsed.rec_clear = (parsed.rec_clear & ~set_) | clear
        elif word in IDMAP_WORDS:
            parsed.idmap = word
        elif word == "tmpcopyup":
            parsed.tmpcopyup = True
        else:
            parsed.data.append(word)
    if mount_type == "bind":
        parsed.flags |= s.MS_BIND
    return parsed


def known_words() -> list[str]:
    """Every option word with a meaning of its own (for `features`)."""
    return sorted({*FLAGS, *PROPAGATION, *RECURSIVE, *EXTRA_WORDS})
