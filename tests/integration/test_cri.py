"""Kubernetes' node path: containerd's CRI plugin with a runtime handler `testrt` (io.containerd.runc.v2,
options.BinaryName = the runtime), driven over CRI v1 gRPC as the kubelet would.

The pod uses the host network (NamespaceOption network NODE), so no CNI plugin is involved; its pid and
ipc namespaces belong to the pod sandbox (the local pause image) and the container joins them. A host
network pod also keeps the host's UTS namespace (so it sets no hostname: a runtime refuses one there)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import host
from harness.daemons import CONTAINERD, Containerd
from harness.images import BUSYBOX, PAUSE, Images
from harness.scenario import TERM_HANDLER, check_nothing_left, require

grpc = pytest.importorskip("grpc")
cri = pytest.importorskip("cri_api.v1.api_pb2")
cri_grpc = pytest.importorskip("cri_api.v1.api_pb2_grpc")

HANDLER = "testrt"
NAMESPACE = "k8s.io"


class Cri:
    """The CRI runtime service of a containerd, with the helpers a scenario needs."""

    def __init__(self, containerd: Containerd) -> None:
        self.containerd = containerd
        self.channel = grpc.insecure_channel(f"unix://{containerd.socket}")
        self.runtime = cri_grpc.RuntimeServiceStub(self.channel)

    def pod_config(self, name: str) -> object:
        return cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name=name, uid=uuid.uuid4().hex, namespace="default", attempt=0),
            linux=cri.LinuxPodSandboxConfig(
                cgroup_parent=f"/{host.CRI_CGROUP_PARENT}",
                security_context=cri.LinuxSandboxSecurityContext(namespace_options=cri.NamespaceOption(
                    network=cri.NODE, pid=cri.POD, ipc=cri.POD)),
            ),
        )

    def run_pod(self, config: object) -> str:
        request = cri.RunPodSandboxRequest(config=config, runtime_handler=HANDLER)
        return self.runtime.RunPodSandbox(request, timeout=30).pod_sandbox_id

    def create_container(self, pod_id: str, pod_config: object, name: str, command: list[str]) -> str:
        config = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name=name, attempt=0),
            image=cri.ImageSpec(image=BUSYBOX),
            command=command,
            linux=cri.LinuxContainerConfig(security_context=cri.LinuxContainerSecurityContext(
                namespace_options=cri.NamespaceOption(network=cri.NODE, pid=cri.POD, ipc=cri.POD))),
        )
        request = cri.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod_config)
        return self.runtime.CreateContainer(request, timeout=30).container_id

    def exec_sync(self, container_id: str, *cmd: str) -> object:
        return self.runtime.ExecSync(cri.ExecSyncRequest(container_id=container_id, cmd=list(cmd), timeout=20),
                                     timeout=30)

    def container_status(self, container_id: str) -> object:
        return self.runtime.ContainerStatus(cri.ContainerStatusRequest(container_id=container_id), timeout=10).status

    def task_pid(self, task_id: str) -> int:
        """The host pid of a container's init, from containerd's task list."""
        lines = self.containerd.ctr("task", "ls", namespace=NAMESPACE).check().stdout.splitlines()[1:]
        pids = {f[0]: int(f[1]) for f in (line.split() for line in lines) if f}
        return pids[task_id]

    def pods(self) -> list[str]:
        return [p.id for p in self.runtime.ListPodSandbox(cri.ListPodSandboxRequest(), timeout=10).items]

    def containers(self) -> list[str]:
        return [c.id for c in self.runtime.ListContainers(cri.ListContainersRequest(), timeout=10).containers]

    def remove_all(self) -> None:
        for pod_id in self.pods():
            self.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
            self.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)


@pytest.fixture(scope="module")
def cri_session(runtime: str, images: Images, base_dir: Path) -> Iterator[Cri]:
    require(CONTAINERD)
    daemon = Containerd(base_dir / "cri", cri=True, runtime=runtime, sandbox_image=PAUSE)
    client = None
    try:
        daemon.import_image(images.pause_docker, namespace=NAMESPACE)
        daemon.import_image(images.busybox_docker, namespace=NAMESPACE)
        client = Cri(daemon)
        yield client
    finally:
        if client is not None:
            client.remove_all()
            client.channel.close()
        daemon.stop()


@pytest.fixture
def cri_client(request: pytest.FixtureRequest, cri_session: Cri) -> Iterator[Cri]:
    assert not cri_session.pods(), "pods left by an earlier scenario"
    yield cri_session
    left = cri_session.pods() + cri_session.containers()
    cri_session.remove_all()
    check_nothing_left(request, left, "pods or containers")


def namespaces(pid: int, kinds: tuple[str, ...] = ("pid", "ipc", "uts", "net", "mnt")) -> dict[str, str]:
    return {kind: os.readlink(f"/proc/{pid}/ns/{kind}") for kind in kinds}


def test_runtime_handler_is_known(cri_client: Cri) -> None:
    status = cri_client.runtime.Status(cri.StatusRequest(verbose=True), timeout=10)
    runtime_ready = {c.type: c.status for c in status.status.conditions}
    assert runtime_ready.get("RuntimeReady") is True, status
    assert f'"{HANDLER}"' in status.info.get("config", ""), "runtime handler missing from the CRI config"


def test_pod_lifecycle(cri_client: Cri, runtime: str) -> None:
    """RunPodSandbox, CreateContainer + StartContainer in it, ExecSync, ContainerStats, StopContainer,
    StopPodSandbox, RemovePodSandbox."""
    pod_config = cri_client.pod_config("pyrunc-pod")
    pod_id = cri_client.run_pod(pod_config)
    pod_pid = cri_client.task_pid(pod_id)
    assert cri_client.containerd.runtime_binary_of(pod_id, namespace=NAMESPACE) == runtime
    assert Path(f"/proc/{pod_pid}/cmdline").read_bytes().split(b"\0")[0] == b"/pause"

    cid = cri_client.create_container(pod_id, pod_config, "busybox", ["sh", "-c", TERM_HANDLER])
    assert cri_client.container_status(cid).state == cri.CONTAINER_CREATED
    assert cri_client.containerd.runtime_binary_of(cid, namespace=NAMESPACE) == runtime
    cri_client.runtime.StartContainer(cri.StartContainerRequest(container_id=cid), timeout=30)
    assert cri_client.container_status(cid).state == cri.CONTAINER_RUNNING

    # The container joins the pod's pid and ipc namespaces; both keep the host's network and UTS namespaces.
    mine, pods, hosts = namespaces(cri_client.task_pid(cid)), namespaces(pod_pid), namespaces(os.getpid())
    assert (mine["pid"], mine["ipc"]) == (pods["pid"], pods["ipc"])
    assert hosts["pid"] != pods["pid"] and hosts["ipc"] != pods["ipc"]
    assert (mine["net"], mine["uts"]) == (pods["net"], pods["uts"]) == (hosts["net"], hosts["uts"])
    assert mine["mnt"] != pods["mnt"]

    result = cri_client.exec_sync(cid, "sh", "-c", "cat /proc/1/cmdline; echo; echo err >&2; exit 3")
    assert result.exit_code == 3, result
    assert result.stdout == b"/pause\0-P\0\n", result
    assert result.stderr == b"err\n", result

    stats = cri_client.runtime.ContainerStats(cri.ContainerStatsRequest(container_id=cid), timeout=10).stats
    assert stats.attributes.id == cid
    assert stats.memory.working_set_bytes.value > 0, stats
    assert stats.cpu.usage_core_nano_seconds.value > 0, stats

    cri_client.runtime.StopContainer(cri.StopContainerRequest(container_id=cid, timeout=10), timeout=30)
    status = cri_client.container_status(cid)
    assert status.state == cri.CONTAINER_EXITED and status.exit_code == 7, status
    cri_client.runtime.RemoveContainer(cri.RemoveContainerRequest(container_id=cid), timeout=30)

    cri_client.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
    cri_client.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
    assert not cri_client.pods() and not cri_client.containers()
    assert not cri_client.containerd.ctr("containers", "ls", "-q", namespace=NAMESPACE).stdout.split()


def test_remove_pod_with_running_container(cri_client: Cri) -> None:
    """RemovePodSandbox after StopPodSandbox takes a running container down with the pod."""
    pod_config = cri_client.pod_config("pyrunc-pod2")
    pod_id = cri_client.run_pod(pod_config)
    cid = cri_client.create_container(pod_id, pod_config, "sleeper", ["sleep", "1000"])
    cri_client.runtime.StartContainer(cri.StartContainerRequest(container_id=cid), timeout=30)
    cri_client.runtime.StopPodSandbox(cri.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
    assert cri_client.container_status(cid).state == cri.CONTAINER_EXITED
    cri_client.runtime.RemovePodSandbox(cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
    assert not cri_client.pods() and not cri_client.containers()
