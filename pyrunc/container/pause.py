"""pause/resume: freeze and thaw every process of the container through its cgroup's freezer."""

from __future__ import annotations

from ..errors import CgroupError, InvalidState
from ..state import PAUSED, RUNNING, Container


def _freezer(container: Container) -> object:
    cgroup = container.cgroup_manager()
    if cgroup is None or not cgroup.has_freezer():
        raise CgroupError(f"container {container.id} has no freezer cgroup to pause it with")
    return cgroup


def pause_container(container: Container) -> None:
    if container.status() != RUNNING:
        raise InvalidState("container not running")
    _freezer(container).freeze()


def resume_container(container: Container) -> None:
    if container.status() != PAUSED:
        raise InvalidState("container not paused")
    _freezer(container).thaw()
