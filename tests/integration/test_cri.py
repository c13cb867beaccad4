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
RPC_TIMEOUT = 30.0


def pod_namespaces() -> object:
    """The host's network (no CNI needed), the pod's pid and ipc namespaces."""
    return cri.NamespaceOption(network=cri.NODE, pid=cri.POD, ipc=cri.POD)


class Cri:
    """The CRI runtime service of a containerd, called as the kubelet calls it."""

    def __init__(self, containerd: Containerd) -> None:
        self.containerd = containerd
        self.channel = grpc.insecure_channel(f"unix://{containerd.socket}")
        self.service = cri_grpc.RuntimeServiceStub(self.channel)

    def __call__(self, method: str, request: object) -> object:
        """One RuntimeService RPC, e.g. `cri("StartContainer", cri.StartContainerRequest(...))`."""
        return getattr(self.service, method)(request, timeout=RPC_TIMEOUT)

    @staticmethod
    def pod_config(name: str) -> object:
        return cri.PodSandboxConfig(
            metadata=cri.PodSandboxMetadata(name=name, uid=uuid.uuid4().hex, namespace="default", attempt=0),
            linux=cri.LinuxPodSandboxConfig(
                cgroup_parent=f"/{host.CRI_CGROUP_PARENT}",
                security_context=cri.LinuxSandboxSecurityContext(namespace_options=pod_namespaces()),
            ),
        )

    def run_pod(self, config: object) -> str:
        return self("RunPodSandbox", cri.RunPodSandboxRequest(config=config, runtime_handler=HANDLER)).pod_sandbox_id

    def create_container(self, pod_id: str, pod_config: object, name: str, command: list[str]) -> str:
        config = cri.ContainerConfig(
            metadata=cri.ContainerMetadata(name=name, attempt=0),
            image=cri.ImageSpec(image=BUSYBOX),
            command=command,
            linux=cri.LinuxContainerConfig(
                security_context=cri.LinuxContainerSecurityContext(namespace_options=pod_namespaces())),
        )
        request = cri.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod_config)
        return self("CreateContainer", request).container_id

    def start_container(self, container_id: str) -> None:
        self("StartContainer", cri.StartContainerRequest(container_id=container_id))

    def container_status(self, container_id: str) -> object:
        return self("ContainerStatus", cri.ContainerStatusRequest(container_id=container_id)).status

    def remove_pod(self, pod_id: str) -> None:
        """StopPodSandbox (stops its containers too), then RemovePodSandbox."""
        self("StopPodSandbox", cri.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        self("RemovePodSandbox", cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id))

    def pods(self) -> list[str]:
        return [p.id for p in self("ListPodSandbox", cri.ListPodSandboxRequest()).items]

    def containers(self) -> list[str]:
        return [c.id for c in self("ListContainers", cri.ListContainersRequest()).containers]

    def task_pid(self, task_id: str) -> int:
        """The host pid of a container's init, from containerd's task list."""
        lines = self.containerd.ctr("task", "ls", namespace=NAMESPACE).check().stdout.splitlines()[1:]
        return {f[0]: int(f[1]) for f in (line.split() for line in lines) if f}[task_id]

    def runtime_binary_of(self, container_id: str) -> str | None:
        return self.containerd.runtime_binary_of(container_id, namespace=NAMESPACE)


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
            for pod_id in client.pods():  # the safety net
                client.remove_pod(pod_id)
            client.channel.close()
        daemon.stop()


@pytest.fixture
def kubelet(request: pytest.FixtureRequest, cri_session: Cri) -> Iterator[Cri]:
    assert not cri_session.pods(), "pods left by an earlier scenario"
    yield cri_session
    left = cri_session.pods() + cri_session.containers()
    for pod_id in cri_session.pods():
        cri_session.remove_pod(pod_id)
    check_nothing_left(request, left, "pods or containers")


def namespaces(pid: int) -> dict[str, str]:
    return {kind: os.readlink(f"/proc/{pid}/ns/{kind}") for kind in ("pid", "ipc", "uts", "net", "mnt")}


def test_runtime_handler_is_configured(kubelet: Cri) -> None:
    status = kubelet("Status", cri.StatusRequest(verbose=True))
    conditions = {c.type: c.status for c in status.status.conditions}
    assert conditions.get("RuntimeReady") is True, status
    assert f'"{HANDLER}"' in status.info.get("config", ""), "runtime handler missing from the CRI config"


def test_pod_lifecycle(kubelet: Cri, runtime: str) -> None:
    """RunPodSandbox, CreateContainer + StartContainer in it, ExecSync, ContainerStats, StopContainer,
    RemoveContainer, StopPodSandbox, RemovePodSandbox."""
    pod_config = kubelet.pod_config("pyrunc-pod")
    pod_id = kubelet.run_pod(pod_config)
    pod_pid = kubelet.task_pid(pod_id)
    assert kubelet.runtime_binary_of(pod_id) == runtime
    assert Path(f"/proc/{pod_pid}/cmdline").read_bytes() == b"/pause\0-P\0"

    cid = kubelet.create_container(pod_id, pod_config, "busybox", ["sh", "-c", TERM_HANDLER])
    assert kubelet.container_status(cid).state == cri.CONTAINER_CREATED
    assert kubelet.runtime_binary_of(cid) == runtime
    kubelet.start_container(cid)
    assert kubelet.container_status(cid).state == cri.CONTAINER_RUNNING

    # The container joins the pod's pid and ipc namespaces; both keep the host's network and UTS namespaces.
    mine, pods, hosts = namespaces(kubelet.task_pid(cid)), namespaces(pod_pid), namespaces(os.getpid())
    assert (mine["pid"], mine["ipc"]) == (pods["pid"], pods["ipc"])
    assert hosts["pid"] != pods["pid"] and hosts["ipc"] != pods["ipc"]
    assert (mine["net"], mine["uts"]) == (pods["net"], pods["uts"]) == (hosts["net"], hosts["uts"])
    assert mine["mnt"] != pods["mnt"]

    script = "cat /proc/1/cmdline; echo; echo err >&2; exit 3"
    result = kubelet("ExecSync", cri.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", script], timeout=20))
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"/pause\0-P\0\n", b"err\n"), result

    stats = kubelet("ContainerStats", cri.ContainerStatsRequest(container_id=cid)).stats
    assert stats.attributes.id == cid
    assert stats.memory.working_set_bytes.value > 0, stats
    assert stats.cpu.usage_core_nano_seconds.value > 0, stats

    kubelet("StopContainer", cri.StopContainerRequest(container_id=cid, timeout=10))
    status = kubelet.container_status(cid)
    assert (status.state, status.exit_code) == (cri.CONTAINER_EXITED, 7), status
    kubelet("RemoveContainer", cri.RemoveContainerRequest(container_id=cid))

    kubelet.remove_pod(pod_id)
    assert not kubelet.pods() and not kubelet.containers()
    assert not kubelet.containerd.ctr("containers", "ls", "-q", namespace=NAMESPACE).stdout.split()


def test_remove_pod_with_running_container(kubelet: Cri) -> None:
    """StopPodSandbox takes a running container down with the pod; RemovePodSandbox removes both."""
    pod_config = kubelet.pod_config("pyrunc-pod2")
    pod_id = kubelet.run_pod(pod_config)
    cid = kubelet.create_container(pod_id, pod_config, "sleeper", ["sleep", "1000"])
    kubelet.start_container(cid)
    kubelet("StopPodSandbox", cri.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    assert kubelet.container_status(cid).state == cri.CONTAINER_EXITED
    kubelet("RemovePodSandbox", cri.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    assert not kubelet.pods() and not kubelet.containers()
