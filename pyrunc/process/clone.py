"""Forking stage-1 (of create and exec) the cheapest way the kernel allows.

With clone3 the child can be born where it is going anyway:
- in the container's cgroup v2 directory (CLONE_INTO_CGROUP; pure v2, or the hybrid unified hierarchy):
  moving it there later means a write to cgroup.procs, which waits for an RCU grace period (5-20 ms);
- in the container's new namespaces, when the plan allows (all new, no user or time namespace): the child
  is then the init itself, pid 1 of its pid namespace, and no second fork is needed.
The kernel may refuse (no clone3, a seccomp filter, a cgroup it will not place the child in): then it is a
plain fork, and the child joins and unshares as it always could.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..cgroups.manager import Manager


def fork_stage1(cgroup: Manager | None, namespace_flags: int = 0) -> tuple[int, int]:
    """(pid, namespace flags the child was born with), like os.fork(): pid 0 in the child. In the child,
    `cgroup.born_in_v2` tells whether it already is in the cgroup's v2 directory."""
    directory = cgroup.v2_dir() if cgroup is not None else None
    fd = -1
    if directory is not None:
        try:
            fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            fd = -1
    if fd < 0 and not namespace_flags:
        return os.fork(), 0
    from ..syscalls import clone3_fork

    try:
        pid = clone3_fork(namespace_flags, fd)
    except OSError:
        return os.fork(), 0
    finally:
        if fd >= 0:
            os.close(fd)
    if pid == 0 and fd >= 0 and cgroup is not None:
        cgroup.born_in_v2 = True
    return pid, namespace_flags
