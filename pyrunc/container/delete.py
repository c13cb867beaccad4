"""delete: remove a stopped container (or, with force, kill it first), then run the poststop hooks."""

from __future__ import annotations

from ..errors import InvalidState
from ..state import STOPPED, Container
from .kill import SIGKILL, kill_and_wait


def delete_container(container: Container, force: bool = False) -> None:
    status = container.status()
    if status != STOPPED:
        if not force:
            raise InvalidState(f"cannot delete container {container.id} that is not stopped: {status}")
        kill_and_wait(container)
    cgroup = container.cgroup_manager()
    if cgroup is not None:
        if not container.data.get("own_pid_namespace"):
            cgroup.signal_all(SIGKILL)  # leftovers of a container sharing the host's pid namespace
        cgroup.destroy()
    if (container.config.get("linux") or {}).get("netDevices"):
        from ..netdevices import move_back

        move_back(container.dir)
    container.remove()
    _poststop(container)


def _poststop(container: Container) -> None:
    from ..hooks import has_hooks, run_hooks

    if has_hooks(container.config, "poststop"):  # a failure is logged: delete still completes
        run_hooks(container.config, container.oci_state(STOPPED), "poststop")
