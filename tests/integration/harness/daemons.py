"""Starting and stopping the daemons by hand: own state, sockets and logs in a temp dir; stopped by PID."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from helpers import process_gone

from harness import host
from harness.commands import Result, read_text, run, run_in_pty, wait_until

CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"
DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"  # Debian's client: another docker may come first on PATH
PODMAN = "/usr/bin/podman"
CONMON = "/usr/bin/conmon"

# This machine's bounding set lacks CAP_SYS_RESOURCE: rlimits cannot go above the hard limits.
ULIMITS = {"nofile": "20000:20000", "nproc": "32768:32768"}


class Daemon:
    """A daemon process with its log file; `stop()` ends it by PID and waits until it is really gone."""

    def __init__(self, name: str, argv: list[str], log: Path, ready: Callable[[], bool],
                 env: Mapping[str, str] | None = None, timeout: float = 20.0) -> None:
        self.name = name
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"{name} exited {self.proc.returncode} at start-up:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"{name} not ready after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.02)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(read_text(self.log).splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; the Popen object reaps it (no zombie is left)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not process_gone(self.pid):
            raise AssertionError(f"{self.name} (pid {self.pid}) still there after stop")


def socket_ready(path: Path) -> Callable[[], bool]:
    return lambda: path.is_socket()


class Containerd:
    """containerd with root, state and sockets in `base` (and PATH `path_env` if given). Without `cri` the
    CRI plugin is disabled; with it, it has a runtime handler `testrt` whose BinaryName is `runtime`, and
    `sandbox_image` as the pause image."""

    def __init__(self, base: Path, *, cri: bool = False, path_env: str | None = None,
                 runtime: str | None = None, sandbox_image: str | None = None) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.base = base
        self.socket = base / "containerd.sock"
        self.config = base / "config.toml"
        self.config.write_text(containerd_config(base, cri=cri, runtime=runtime, sandbox_image=sandbox_image))
        env = dict(os.environ)
        if path_env is not None:
            env["PATH"] = path_env
        self.daemon = Daemon("containerd", [CONTAINERD, "--config", str(self.config)], base / "containerd.log",
                             socket_ready(self.socket), env=env)

    def ctr_argv(self, *args: str, namespace: str = host.CTR_NAMESPACE) -> list[str]:
        return [CTR, "--address", str(self.socket), "--namespace", namespace, *args]

    def ctr(self, *args: str, namespace: str = host.CTR_NAMESPACE) -> Result:
        return run(self.ctr_argv(*args, namespace=namespace))

    def runtime_binary_of(self, container_id: str, namespace: str = host.CTR_NAMESPACE) -> str | None:
        """BinaryName in a container's runc shim options (containerd.runc.v1.Options, field 6)."""
        info = json.loads(self.ctr("containers", "info", container_id, namespace=namespace).check().stdout)
        return protobuf_string(base64.b64decode(info["Runtime"]["Options"]["value"]), 6)

    def import_image(self, archive: Path, namespace: str = host.CTR_NAMESPACE) -> None:
        self.ctr("images", "import", str(archive), namespace=namespace).check()

    def remove_everything(self) -> None:
        """Delete every task (killing its processes) and container in every namespace: the safety net
        before stopping, so that no shim outlives the daemon."""
        for namespace in self.ctr("namespaces", "ls", "-q").stdout.split():
            for task in self.ctr("task", "ls", "-q", namespace=namespace).stdout.split():
                self.ctr("task", "delete", "--force", task, namespace=namespace)
            for container in self.ctr("containers", "ls", "-q", namespace=namespace).stdout.split():
                self.ctr("containers", "rm", container, namespace=namespace)

    def stop(self) -> None:
        """Remove what is left, stop the daemon, and make sure its shims are gone too (killed if not)."""
        try:
            self.remove_everything()
        finally:
            self.daemon.stop()
        shims = host.processes_naming(str(self.socket))
        if shims and not wait_until(lambda: not host.processes_naming(str(self.socket)), "shims to exit",
                                    raise_on_timeout=False):
            for pid in host.processes_naming(str(self.socket)):
                os.kill(pid, signal.SIGKILL)
            raise AssertionError(f"containerd shims outlived their containers (killed): {shims}")


def protobuf_string(message: bytes, number: int) -> str | None:
    """The string field `number` of a serialized protobuf message (None when absent)."""

    def varint(pos: int) -> tuple[int, int]:
        value = shift = 0
        while True:
            byte = message[pos]
            value |= (byte & 0x7F) << shift
            pos, shift = pos + 1, shift + 7
            if not byte & 0x80:
                return value, pos

    pos = 0
    while pos < len(message):
        key, pos = varint(pos)
        wire_type = key & 7
        if wire_type == 0:
            _, pos = varint(pos)
        elif wire_type == 2:
            size, pos = varint(pos)
            if key >> 3 == number:
                return message[pos:pos + size].decode()
            pos += size
        else:
            raise ValueError(f"unexpected protobuf wire type {wire_type}")
    return None


def containerd_config(base: Path, *, cri: bool, runtime: str | None, sandbox_image: str | None) -> str:
    lines = [
        "version = 2",
        f'root = "{base}/root"',
        f'state = "{base}/state"',
        "[grpc]",
        f'  address = "{base}/containerd.sock"',
        "[ttrpc]",
        f'  address = "{base}/containerd.sock.ttrpc"',
        '[plugins."io.containerd.internal.v1.opt"]',
        f'  path = "{base}/opt"',
    ]
    if not cri:
        lines.insert(3, 'disabled_plugins = ["io.containerd.grpc.v1.cri"]')
        return "\n".join(lines) + "\n"
    lines += [
        '[plugins."io.containerd.grpc.v1.cri"]',
        f'  sandbox_image = "{sandbox_image}"',
        "  enable_selinux = false",
        "  disable_apparmor = true",
        # The sandbox asks for oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE, which this machine's
        # bounding set lacks: clamp to containerd's own value instead (as for rootless containerd).
        "  restrict_oom_score_adj = true",
        "  disable_cgroup = false",
        '[plugins."io.containerd.grpc.v1.cri".containerd]',
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
        '  runtime_type = "io.containerd.runc.v2"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.testrt]',
        '  runtime_type = "io.containerd.runc.v2"',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.testrt.options]',
        f'  BinaryName = "{runtime}"',
        "  SystemdCgroup = false",
        '[plugins."io.containerd.grpc.v1.cri".cni]',
        f'  bin_dir = "{base}/cni-bin"',
        f'  conf_dir = "{base}/cni-conf"',
    ]
    return "\n".join(lines) + "\n"


class EngineClient:
    """A docker-compatible command line (docker, podman): `run` gets the harness's run options."""

    def __init__(self, base_argv: list[str], run_options: list[str], env: Mapping[str, str] | None = None) -> None:
        self.base_argv = base_argv
        self.run_options = run_options
        self.env = env

    def argv(self, *args: str) -> list[str]:
        if args and args[0] in ("run", "create"):
            args = (args[0], *self.run_options, *args[1:])
        return [*self.base_argv, *args]

    def __call__(self, *args: str) -> Result:
        return run(self.argv(*args), env=self.env)

    def in_pty(self, *args: str, send: str, after: str) -> Result:
        return run_in_pty(self.argv(*args), send=send, after=after, env=self.env)

    def inspect(self, name: str, template: str) -> str:
        return self("inspect", "--format", template, name).check().stdout.strip()

    def info(self, template: str) -> str:
        return self("info", "--format", template).check().stdout.strip()


class Dockerd(EngineClient):
    """dockerd on an existing containerd, with data/exec roots, pidfile, socket and config in `base`, and
    the docker client on it (containers get no network).

    The runtime is added as `testrt` by `--add-runtime` (and `run` gets `--runtime testrt`), or with
    `default_runtime` in daemon.json as a runtime that is also the `default-runtime`."""

    def __init__(self, base: Path, containerd: Containerd, runtime: str, *, default_runtime: bool = False) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.socket = base / "docker.sock"
        self.exec_root = base / "exec"
        self.default_runtime = default_runtime
        config: dict = {
            "exec-opts": ["native.cgroupdriver=cgroupfs"],
            "cgroup-parent": f"/{host.DOCKER_CGROUP_PARENT}",
            "iptables": False, "ip6tables": False, "ip-forward": False, "ip-masq": False, "bridge": "none",
            "deprecated-key-path": str(base / "key.json"),  # else /etc/docker/key.json is written
        }
        runtime_flags = []
        run_options = ["--network", "none"]
        if default_runtime:
            config["runtimes"] = {"testrt": {"path": runtime}}
            config["default-runtime"] = "testrt"
        else:
            runtime_flags = ["--add-runtime", f"testrt={runtime}"]
            run_options += ["--runtime", "testrt"]
        super().__init__([DOCKER, "-H", f"unix://{self.socket}"], run_options)
        config_file = base / "daemon.json"
        config_file.write_text(json.dumps(config, indent=2))
        argv = [DOCKERD, "--config-file", str(config_file), "--data-root", str(base / "data"),
                "--exec-root", str(self.exec_root), "--pidfile", str(base / "docker.pid"),
                "-H", f"unix://{self.socket}", "--containerd", str(containerd.socket), *runtime_flags]
        self.daemon = Daemon("dockerd", argv, base / "dockerd.log", self._ready)

    def _ready(self) -> bool:
        return self.socket.is_socket() and run(self.argv("version")).returncode == 0

    @property
    def runtime_root(self) -> Path:
        """Where dockerd's shims keep the runtime's state (`--root`) for every runc-type runtime."""
        return self.exec_root / "runtime-runc" / "moby"

    def stop(self) -> None:
        """Remove what is left (the safety net), then stop the daemon."""
        try:
            left = self("ps", "-aq").stdout.split()
            if left:
                self("rm", "-f", *left)
        finally:
            self.daemon.stop()


class Podman(EngineClient):
    """podman with its own root, runroot and tmpdir in `base` (no daemon), driving conmon and the runtime;
    containers get no network, rlimits this machine can grant, and this session's cgroup parent.

    With `containers_conf`, all that but the cgroup parent, and the runtime (named `testrt`, listed in
    runtime_supports_json so conmon passes `--log-format=json --log`), come from a CONTAINERS_CONF file;
    otherwise from flags."""

    def __init__(self, base: Path, runtime: str, *, containers_conf: bool = False) -> None:
        self.base = base
        self.storage_home = base / "root" / "overlay"  # the overlay driver bind-mounts it onto itself
        for sub in ("root", "runroot", "tmp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        argv = [PODMAN, "--root", str(base / "root"), "--runroot", str(base / "runroot"),
                "--tmpdir", str(base / "tmp")]
        run_options = [f"--cgroup-parent=/{host.PODMAN_CGROUP_PARENT}"]
        if containers_conf:
            conf = base / "containers.conf"
            conf.write_text(podman_containers_conf(runtime))
            env["CONTAINERS_CONF"] = str(conf)
        else:
            argv += ["--runtime", runtime, "--conmon", CONMON, "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file"]
            run_options += ["--network", "none", *(f"--ulimit={k}={v}" for k, v in ULIMITS.items())]
        super().__init__(argv, run_options, env)

    def wait_idle(self) -> None:
        """Wait for the clean-up podman processes that conmon starts when a container exits."""
        wait_until(lambda: not host.processes_naming(str(self.base)), "podman's clean-up processes to end")


def podman_containers_conf(runtime: str) -> str:
    """The containers.conf a user puts in /etc/containers/containers.conf (docs/podman.md)."""
    ulimits = ", ".join(f'"{k}={v}"' for k, v in ULIMITS.items())
    return f"""[containers]
netns = "none"
default_ulimits = [{ulimits}]

[engine]
runtime = "testrt"
cgroup_manager = "cgroupfs"
events_logger = "file"
conmon_path = ["{CONMON}"]
runtime_supports_json = ["testrt", "crun", "runc", "kata", "runsc", "youki", "krun"]

[engine.runtimes]
testrt = ["{runtime}"]
"""
