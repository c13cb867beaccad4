"""`exec`: a new process in a running container's namespaces, cgroup and root, with its own identity.

`exec` is a runc command (not part of the runtime-spec operations); what is checked here is what
containerd, podman and Docker rely on: the namespaces, user, capabilities and exit codes of the
process, `--process`, `--detach --pid-file`, `--preserve-fds`, and that nothing of the host leaks in.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from helpers import Bundle, Runtime, new_id, process_gone

NAMESPACES = ("ipc", "mnt", "net", "pid", "uts")


def running(rt: Runtime, bundle: Bundle, *args: str) -> str:
    """A started container running `args` (default: sleep), its id."""
    bundle.set_args(*(args or ("sleep", "1000")))
    container_id = new_id()
    rt.create(container_id, bundle)
    rt.start(container_id)
    return container_id


def one_line_error(rt: Runtime, result: subprocess.CompletedProcess) -> None:
    """A failed command: non-zero; for pyrunc exactly exit 1 and one line on stderr."""
    assert result.returncode != 0, result
    if not rt.is_runc:
        assert result.returncode == 1, result
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_exec_id(rt: Runtime, bundle: Bundle) -> None:
    cid = running(rt, bundle)
    result = rt("exec", cid, "id", check=True)
    assert result.stdout.strip() == "uid=0(root) gid=0(root)"


def test_exec_joins_every_namespace_of_the_init(rt: Runtime, bundle: Bundle) -> None:
    cid = running(rt, bundle)
    init_pid = rt.state(cid)["pid"]
    script = "; ".join(f"readlink /proc/self/ns/{ns}" for ns in NAMESPACES)
    inside = rt("exec", cid, "sh", "-c", script, check=True).stdout.split()
    assert inside == [os.readlink(f"/proc/{init_pid}/ns/{ns}") for ns in NAMESPACES]
    assert inside != [os.readlink(f"/proc/self/ns/{ns}") for ns in NAMESPACES]


def test_exec_joins_the_cgroup_and_sees_the_container_root(rt: Runtime, bundle: Bundle) -> None:
    cid = running(rt, bundle)
    init_pid = rt.state(cid)["pid"]
    own = rt("exec", cid, "cat", "/proc/self/cgroup", check=True).stdout
    assert own == Path(f"/proc/{init_pid}/cgroup").read_text()
    assert rt("exec", cid, "hostname", check=True).stdout.strip() == "pyrunc-test"
    status = rt("exec", cid, "cat", "/proc/self/status", check=True).stdout
    assert "NoNewPrivs:\t1" in status  # the container's process.noNewPrivileges


def test_exec_as_another_user_with_groups(rt: Runtime, bundle: Bundle) -> None:
    cid = running(rt, bundle)
    result = rt("exec", "--user", "1000:1001", "-g", "10", "-g", "20", cid, "sh", "-c",
                "id -u; id -g; id -G", check=True)
    uid, gid, *groups = result.stdout.split()
    assert (uid, gid) == ("1000", "1001")
    assert set(groups) - {gid} == {"10", "20"}


def _cap_eff(status: str) -> int:
    line = next(line for line in status.splitlines() if line.startswith("CapEff:"))
    return int(line.split()[1], 16)


def test_exec_capabilities(rt: Runtime, bundle: Bundle) -> None:
    cid = running(rt, bundle)
    default = _cap_eff(rt("exec", cid, "cat", "/proc/self/status", check=True).stdout)
    assert default == (1 << 29) | (1 << 5) | (1 << 10)  # AUDIT_WRITE, KILL, NET_BIND_SERVICE
    more = _cap_eff(rt("exec", "--cap", "CAP_SYS_ADMIN", cid, "cat", "/proc/self/status", check=True).stdout)
    assert more == default | (1 << 21)


@pytest.mark.parametrize(("command", "code"), [("exit 0", 0), ("exit 7", 7), ("kill -9 $$", 137),
                                                ("kill -15 $$", 143)])
def test_exec_exit_code(rt: Runtime, bundle: Bundle, command: str, code: int) -> None:
    cid = running(rt, bundle)
    assert rt("exec", cid, "sh", "-c", command).returncode == code


def test_exec_env_cwd_and_home(rt: Runtime, bundle: Bundle) -> None:
    cid = running(rt, bundle)
    result = rt("exec", "--cwd", "/etc", "-e", "FOO=bar", "-e", "TERM=dumb", cid, "sh", "-c",
                'echo "$PWD $FOO $TERM $HOME"', check=True)
    assert result.stdout.strip() == "/etc bar dumb /root"


def test_exec_process_json(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    cid = running(rt, bundle)
    process = {"args": ["sh", "-c", 'id -u; echo "$X"; pwd'], "cwd": "/tmp", "env": ["PATH=/bin:/usr/bin", "X=y"],
               "user": {"uid": 5, "gid": 6}}
    path = tmp_path / "process.json"
    path.write_text(json.dumps(process))
    result = rt("exec", "--process", str(path), cid, check=True)
    assert result.stdout.split() == ["5", "y", "/tmp"]


def test_exec_detach_writes_pid_file(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    cid = running(rt, bundle)
    pid_file = tmp_path / "exec.pid"
    rt("exec", "--detach", "--pid-file", str(pid_file), cid, "sleep", "1000", check=True)
    pid = int(pid_file.read_text())
    assert Path(f"/proc/{pid}/cgroup").read_text() == Path(f"/proc/{rt.state(cid)['pid']}/cgroup").read_text()
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{rt.state(cid)['pid']}/ns/pid")
    assert pid in json.loads(rt("ps", "--format", "json", cid, check=True).stdout)
    table = rt("ps", cid, check=True).stdout.splitlines()
    assert table[0].split()[1] == "PID" and any(line.split()[1] == str(pid) for line in table[1:])
    rt.kill(cid, "KILL")
    rt.delete(cid, force=True)
    assert process_gone(pid)


def test_exec_preserve_fds(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    cid = running(rt, bundle)
    secret = tmp_path / "passed"
    secret.write_text("through fd 3\n")
    command = f"exec {rt.path} --root {rt.root} exec --preserve-fds 1 {cid} cat /proc/self/fd/3 3<{secret}"
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "through fd 3\n"


def test_exec_sees_no_host_descriptor(rt: Runtime, bundle: Bundle) -> None:
    """Only stdio reaches the process (runc CVE-2024-21626 class); the cwd is the container's."""
    cid = running(rt, bundle)
    listing = rt("exec", cid, "sh", "-c", "ls /proc/$$/fd; readlink /proc/$$/cwd; readlink /proc/$$/root", check=True)
    assert listing.stdout.split() == ["0", "1", "2", "/", "/"]


def test_exec_cannot_write_a_runtime_binary(rt: Runtime, bundle: Bundle) -> None:
    """No process visible in the container runs a host binary that it could open for writing (CVE-2019-5736)."""
    cid = running(rt, bundle)
    script = ('for p in /proc/[0-9]*; do if [ -e $p/exe ] && (: >> $p/exe) 2>/dev/null; then echo "writable $p"; '
              "fi; done; echo done")
    result = rt("exec", cid, "sh", "-c", script, check=True)
    assert result.stdout.strip() == "done"


def test_exec_into_unknown_container(rt: Runtime) -> None:
    one_line_error(rt, rt("exec", "nosuch", "true"))


def test_exec_into_created_container_fails(rt: Runtime, bundle: Bundle) -> None:
    if rt.is_runc:
        pytest.skip("runc lets exec join a created container; exec is not a runtime-spec operation")
    bundle.set_args("sleep", "1000")
    cid = new_id()
    rt.create(cid, bundle)
    one_line_error(rt, rt("exec", cid, "true"))
    assert rt.state(cid)["status"] == "created"


def test_exec_into_paused_container_fails(rt: Runtime, bundle: Bundle) -> None:
    cid = running(rt, bundle)
    rt("pause", cid, check=True)
    one_line_error(rt, rt("exec", cid, "true"))
    assert rt.state(cid)["status"] == "paused"
    rt("resume", cid, check=True)


def test_exec_into_stopped_container_fails(rt: Runtime, bundle: Bundle) -> None:
    cid = running(rt, bundle, "true")
    rt.wait_status(cid, "stopped")
    one_line_error(rt, rt("exec", cid, "true"))


def test_exec_missing_binary_fails(rt: Runtime, bundle: Bundle) -> None:
    cid = running(rt, bundle)
    result = rt("exec", cid, "no-such-binary")
    one_line_error(rt, result)
    assert "no-such-binary" in result.stderr


@pytest.mark.parametrize("document", ['{"args": ["true"], "cwd": "/"', '{"args": "true", "cwd": "/"}',
                                      '{"args": [], "cwd": "/"}', '{"args": ["true"], "cwd": "relative"}'])
def test_exec_malformed_process_json(rt: Runtime, bundle: Bundle, tmp_path: Path, document: str) -> None:
    cid = running(rt, bundle)
    path = tmp_path / "process.json"
    path.write_text(document)
    one_line_error(rt, rt("exec", "--process", str(path), cid))


def test_exec_leaves_nothing_after_a_failure(rt: Runtime, bundle: Bundle) -> None:
    cid = running(rt, bundle)
    pids = set(json.loads(rt("ps", "--format", "json", cid, check=True).stdout))
    one_line_error(rt, rt("exec", "--cwd", "/no/such/dir", cid, "true"))
    time.sleep(0.1)
    assert set(json.loads(rt("ps", "--format", "json", cid, check=True).stdout)) == pids
