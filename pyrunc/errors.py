"""One exception hierarchy: library code raises these, the CLI edge prints one line and exits 1."""


class PyruncError(Exception):
    """Base of every error pyrunc reports to its user; str() is the one-line message."""

    exit_code = 1


class UsageError(PyruncError):
    """The command line itself is wrong (bad flag value, missing argument)."""


class ConfigError(PyruncError):
    """config.json (or a process.json) is missing, malformed or violates the spec."""


class ContainerNotFound(PyruncError):
    """No container with that id exists under the state root."""

    def __init__(self, container_id: str) -> None:
        super().__init__(f"container does not exist: {container_id}")


class ContainerExists(PyruncError):
    def __init__(self, container_id: str) -> None:
        super().__init__(f"container with id exists: {container_id}")


class InvalidState(PyruncError):
    """The operation is not allowed in the container's current status."""


class InitError(PyruncError):
    """The container's init failed before the user process started; carries the init's message."""


class CgroupError(PyruncError):
    pass


class SecurityError(PyruncError):
    """Capabilities, seccomp, rlimits and other confinement settings that cannot be applied."""


class RootfsError(PyruncError):
    pass


class HookError(PyruncError):
    pass
