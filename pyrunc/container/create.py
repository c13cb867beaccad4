"""create: from a bundle to an init blocked on the exec fifo, or nothing at all.

Every resource create makes (state directory, cgroup, init process) is undone when a later step fails,
so a failed create leaves nothing behind.
"""

from __future__ import annotations

import os

from .. import SPEC_VERSION
from ..errors import ConfigError, HookError, PyruncError, RootfsError
from ..hooks import has_hooks
from ..log import logger
from ..namespaces import NamespacePlan
from ..process.context import InitContext
from ..state import EXEC_FIFO, Container, StateRoot, process_start_time, rfc3339_now


class CreateOptions:
    """The flags of create/run that shape the container."""

    def __init__(self, o: dict) -> None:
        self.bundle: str = os.path.abspath(o.get("bundle") or ".")
        self.console_socket: str = o.get("console_socket") or ""
        self.pid_file: str = o.get("pid_file") or ""
        self.no_pivot: bool = o.get("no_pivot", False)
        self.no_new_keyring: bool = o.get("no_new_keyring", False)
        self.preserve_fds: int = o.get("preserve_fds") or 0


def _resolve_rootfs(config: dict, bundle: str) -> str:
    root = config.get("root") or {}
    path = root.get("path")
    if not path:
        raise ConfigError("config.json: root.path: is required")
    rootfs = os.path.join(bundle, path)  # an absolute path replaces the bundle
    if not os.path.isdir(rootfs):
        raise RootfsError(f"rootfs {rootfs}: no such directory")
    return os.path.realpath(rootfs)


def write_pid_file(path: str, pid: int) -> None:
    """Write the pid atomically: a shim polling the file never reads a partial number."""
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.rename(tmp, path)


def _prepare_security(ctx: InitContext) -> None:
    """Validate and precompute confinement before the fork, so mistakes fail create on the host side."""
    config = ctx.config
    process = config["process"]
    linux = config.get("linux") or {}
    from ..security import identity, lsm, process_attrs, rlimits

    ctx.capabilities = identity.parse_capabilities(process.get("capabilities"))
    if process.get("rlimits"):
        rlimits.check_rlimits(process["rlimits"])
    process_attrs.check(process, linux)
    lsm.check(process, linux)
    if linux.get("sysctl"):
        from ..security.sysctl import check_sysctls

        check_sysctls(linux["sysctl"], ctx.namespaces.new | set(ctx.namespaces.join))
    if linux.get("seccomp"):
        from ..security import seccomp

        ctx.seccomp = seccomp.prepare(linux["seccomp"])
    if has_hooks(config, "startContainer"):
        import subprocess  # noqa: F401 - the hook runner needs it after pivot_root, out of the package's reach


def create_container(g: object, container_id: str, opts: CreateOptions, *, foreground: bool = False) -> Container:
    """Create the container and return it with its init waiting on the exec fifo."""
    from ..config.load import load_bundle_config

    config = load_bundle_config(opts.bundle)
    rootfs = _resolve_rootfs(config, opts.bundle)
    from ..config.validate import check_terminal_flags

    check_terminal_flags(bool(config["process"].get("terminal")), opts.console_socket, detach=not foreground)
    from ..rootfs import check_mounts, open_idmapped_mounts

    check_mounts(config, opts.bundle)
    net_devices = bool((config.get("linux") or {}).get("netDevices"))
    if net_devices:
        from ..netdevices import check_net_devices

        check_net_devices(config)
    namespaces = NamespacePlan((config.get("linux") or {}).get("namespaces") or ())
    container = StateRoot(g.root).new(container_id)
    cgroup = None
    state_dir_fd = -1
    try:
        namespaces.open_joined()
        cgroup = _create_cgroup(g, config, container_id)
        fifo = os.path.join(container.dir, EXEC_FIFO)
        os.mkfifo(fifo)
        os.chmod(fifo, 0o622)  # writable by the init whatever user it has become (umask would mask it)
        state_dir_fd = os.open(container.dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        ctx = InitContext(container_id=container_id, config=config, bundle=opts.bundle, rootfs=rootfs,
                          state_dir=container.dir, state_dir_fd=state_dir_fd, namespaces=namespaces, cgroup=cgroup,
                          no_pivot=opts.no_pivot, no_new_keyring=opts.no_new_keyring,
                          preserve_fds=opts.preserve_fds,
                          console_socket=opts.console_socket, oci_version=config.get("ociVersion", SPEC_VERSION))
        _prepare_security(ctx)
        # Id-mapped binds are cloned here: inside the container's user namespace the init no longer
        # owns the source filesystem, and only its owner may id-map it.
        ctx.idmapped = open_idmapped_mounts(config, opts.bundle)
        try:
            pid = _launch(ctx)
        finally:
            for fd in ctx.idmapped.values():
                os.close(fd)
        container.console_master = ctx.console_master
        container.data = {
            "ociVersion": ctx.oci_version,
            "pid": pid,
            "start_time": process_start_time(pid)[0],
            "bundle": opts.bundle,
            "rootfs": rootfs,
            "created": rfc3339_now(),
            "config": config,
            "cgroup": cgroup.to_state() if cgroup is not None else None,
            "own_pid_namespace": "pid" in namespaces.new,
        }
        container.save()
        if opts.pid_file:
            write_pid_file(opts.pid_file, pid)
    except BaseException as err:
        _undo(container, cgroup, net_devices)
        if isinstance(err, HookError):
            # runtime.md: a failed prestart/createRuntime/createContainer hook continues the lifecycle at
            # the container's destruction, which runs the poststop hooks.
            _poststop_after_failure(config, container_id, opts.bundle)
        raise
    finally:
        namespaces.close()
        if state_dir_fd >= 0:
            os.close(state_dir_fd)
    return container


def _create_cgroup(g: object, config: dict, container_id: str) -> object:
    from ..cgroups import manager_for

    cgroup = manager_for(config, container_id, systemd=g.systemd_cgroup, rootless=g.rootless)
    cgroup.create()
    return cgroup


def _launch(ctx: InitContext) -> int:
    from ..process.parent import start_init

    def parent_hooks() -> None:
        from ..hooks import run_hooks

        run_hooks(ctx.config, ctx.hook_state("creating"), "prestart", "createRuntime")

    def send_console(master_fd: int) -> None:
        if not ctx.console_socket:  # a foreground `run`: it proxies the user's terminal itself
            ctx.console_master = os.dup(master_fd)
            return
        from ..terminal import send_console_master

        send_console_master(ctx.console_socket, master_fd)

    return start_init(ctx, parent_hooks, send_console)


def _poststop_after_failure(config: dict, container_id: str, bundle: str) -> None:
    from ..hooks import run_hooks

    state = {"ociVersion": config.get("ociVersion", SPEC_VERSION), "id": container_id, "status": "stopped",
             "pid": 0, "bundle": bundle}
    run_hooks(config, state, "poststop")  # a failure is logged


def _undo(container: Container, cgroup: object | None, net_devices: bool) -> None:
    """Remove what a failed create made; a failure here is logged, the original error wins."""
    if net_devices:
        from ..netdevices import move_back

        move_back(container.dir)
    try:
        if cgroup is not None:
            cgroup.destroy()
    except (PyruncError, OSError) as err:
        logger.warning(f"cleanup of the cgroup after a failed create: {err}")
    try:
        container.remove()
    except OSError as err:
        logger.warning(f"cleanup of {container.dir} after a failed create: {err}")
