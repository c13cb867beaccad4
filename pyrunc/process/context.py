"""Everything the init needs, computed by the parent before it forks (the child inherits it in memory)."""

from __future__ import annotations

from ..namespaces import NamespacePlan


class InitContext:
    """What create has resolved and validated: the init only acts on it, it decides nothing."""

    def __init__(self, *, container_id: str, config: dict, bundle: str, rootfs: str, state_dir: str,
                 state_dir_fd: int,
                 namespaces: NamespacePlan, cgroup: object | None, no_pivot: bool, no_new_keyring: bool,
                 preserve_fds: int,
                 console_socket: str, oci_version: str) -> None:
        self.container_id = container_id
        self.config = config
        self.bundle = bundle
        self.rootfs = rootfs
        self.state_dir = state_dir
        #: O_PATH descriptor of the container's state directory: the init opens exec.fifo through it
        self.state_dir_fd = state_dir_fd
        self.namespaces = namespaces
        self.cgroup = cgroup
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        self.console_socket = console_socket
        self.oci_version = oci_version
        #: host pid of the init, known to the parent once stage-1 reports it (sent with CONTINUE)
        self.init_pid = 0
        #: the pty master a foreground `run` keeps (no --console-socket), else -1
        self.console_master = -1
        #: detached id-mapped bind mounts prepared by the runtime: mounts[] index → mount fd
        self.idmapped: dict[int, int] = {}
        #: set by create before the fork: parsed capabilities and the prepared seccomp filter
        self.capabilities: object = None
        self.seccomp: object = None

    def hook_state(self, status: str) -> dict:
        """The state object handed to hooks on stdin."""
        state = {"ociVersion": self.oci_version, "id": self.container_id, "status": status, "pid": self.init_pid,
                 "bundle": self.bundle}
        annotations = self.config.get("annotations")
        if annotations:
            state["annotations"] = annotations
        return state
