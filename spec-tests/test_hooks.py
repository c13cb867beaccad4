"""Hooks (config.md "POSIX-platform Hooks", runtime.md "Lifecycle").

Every hook here is one shell script that records its name, its state (stdin), its arguments and an
environment variable into a directory. Hooks run by the runtime use the host's /bin/sh and write to the
host directory; startContainer runs inside the container (its path resolves there, after pivot_root), so
it is a copy of the script in the rootfs writing to a bind mount of the same directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import Bundle, Runtime, new_id

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
IN_CONTAINER_OUT = "/hookout"
SCRIPT = """#!/bin/sh
kind=$1; out=$2
cat > "$out/$kind.json"
echo "$kind" >> "$out/order"
echo "$HOOK_VAR $*" > "$out/$kind.args"
exit "${3:-0}"
"""



def create_start_delete(rt: Runtime, bundle: Bundle) -> str:
    """A container running `true` through create, start, its exit and delete: its id."""
    bundle.set_args("true")
    cid = new_id()
    rt.create(cid, bundle)
    rt.start(cid)
    rt.wait_status(cid, "stopped")
    rt.delete(cid)
    return cid

def add_hook(bundle: Bundle, out: Path, kind: str, *extra: str, timeout: int | None = None,
             path: str | None = None) -> None:
    """Append a recording hook of `kind`; `extra` are more arguments (the third is the exit status)."""
    in_container = kind == "startContainer"
    script = bundle.path / "hook.sh"
    if not script.exists():
        script.write_text(SCRIPT)
        script.chmod(0o755)
        (bundle.rootfs / "hook.sh").write_text(SCRIPT)
        (bundle.rootfs / "hook.sh").chmod(0o755)
        (bundle.rootfs / IN_CONTAINER_OUT.lstrip("/")).mkdir()
        bundle.add_bind(out, IN_CONTAINER_OUT)
    hook_path = path or ("/hook.sh" if in_container else str(script))
    hook = {"path": hook_path, "args": ["hook.sh", kind, IN_CONTAINER_OUT if in_container else str(out), *extra],
            "env": ["PATH=/usr/bin:/bin", f"HOOK_VAR=env-of-{kind}"]}
    if timeout is not None:
        hook["timeout"] = timeout
    bundle.config.setdefault("hooks", {}).setdefault(kind, []).append(hook)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    directory = tmp_path / "hookout"
    directory.mkdir()
    return directory


def order(out: Path) -> list[str]:
    path = out / "order"
    return path.read_text().split() if path.exists() else []


def test_all_six_hooks_in_order_with_their_state(rt: Runtime, bundle: Bundle, out: Path, xfail_runc) -> None:
    xfail_runc("runc 1.1 runs the poststart hooks at the end of create, before start runs the program "
               "(runtime.md Lifecycle: poststart hooks are invoked after the runtime runs the user-specified program)")
    for kind in KINDS:
        add_hook(bundle, out, kind)
    bundle.config["annotations"] = {"org.example.key": "value"}
    bundle.set_args("sleep", "1000")
    cid = new_id()
    rt.create(cid, bundle)
    init_pid = rt.state(cid)["pid"]
    assert order(out) == ["prestart", "createRuntime", "createContainer"]
    rt.start(cid)
    assert order(out) == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart"]
    rt.kill(cid, "KILL")
    rt.wait_status(cid, "stopped")
    rt.delete(cid)
    assert order(out) == list(KINDS)
    expected_status = {"prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
                       "startContainer": "created", "poststart": "running", "poststop": "stopped"}
    for kind in KINDS:
        state = json.loads((out / f"{kind}.json").read_text())
        assert state["id"] == cid, kind
        assert state["bundle"] == str(bundle.path), kind
        assert state["annotations"] == {"org.example.key": "value"}, kind
        assert state["status"] == expected_status[kind], kind
        assert "ociVersion" in state, kind
        assert (out / f"{kind}.args").read_text().split() == [f"env-of-{kind}", kind,
                                                                IN_CONTAINER_OUT if kind == "startContainer"
                                                                else str(out)], kind
    # "pid ... For hooks executed in the runtime namespace, it is the pid as seen by the runtime. For hooks
    # executed in the container namespace, it is the pid as seen by the container." (runtime.md State)
    for kind in ("prestart", "createRuntime", "poststart"):
        assert json.loads((out / f"{kind}.json").read_text())["pid"] == init_pid, kind
    for kind in ("createContainer", "startContainer"):
        assert json.loads((out / f"{kind}.json").read_text())["pid"] == 1, kind


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create(rt: Runtime, bundle: Bundle, out: Path, kind: str) -> None:
    """"If any <kind> hook fails, the runtime MUST generate an error, stop the container" (runtime.md)."""
    add_hook(bundle, out, kind, "3")
    cid = new_id()
    result = rt.create(cid, bundle, check=False)
    assert result.returncode != 0
    assert kind in result.stderr or "hook" in result.stderr
    assert rt("state", cid).returncode != 0
    assert order(out) == [kind]


def test_failing_start_container_hook_stops_the_container(rt: Runtime, bundle: Bundle, out: Path,
                                                          xfail_runc) -> None:
    """"If any startContainer hook fails, the runtime MUST generate an error, stop the container" and the
    user-specified program never runs (runtime.md Lifecycle steps 7-8)."""
    xfail_runc("runc 1.1: start succeeds, the failure only goes to the init's stderr")
    add_hook(bundle, out, "startContainer", "3")
    bundle.set_args("sh", "-c", f"touch {IN_CONTAINER_OUT}/program-ran")
    cid = new_id()
    rt.create(cid, bundle)
    result = rt.start(cid, check=False)
    rt.wait_status(cid, "stopped")
    assert not (out / "program-ran").exists()
    assert result.returncode != 0


def test_failing_poststart_hook_is_a_warning(rt: Runtime, bundle: Bundle, out: Path, xfail_runc) -> None:
    """"If any poststart hook fails, the runtime MUST log a warning, but the remaining hooks and lifecycle
    continue as if the hook had succeeded" (runtime.md Lifecycle)."""
    xfail_runc("runc 1.1 kills the container and fails start when a poststart hook fails")
    add_hook(bundle, out, "poststart", "3")
    add_hook(bundle, out, "poststart")
    bundle.set_args("sleep", "1000")
    cid = new_id()
    rt.create(cid, bundle)
    rt.start(cid)
    assert rt.state(cid)["status"] == "running"
    assert order(out) == ["poststart", "poststart"]


def test_failing_poststop_hook_is_a_warning(rt: Runtime, bundle: Bundle, out: Path, xfail_runc) -> None:
    """"If any poststop hook fails, the runtime MUST log a warning, but the remaining hooks and lifecycle
    continue as if the hook had succeeded" (runtime.md Lifecycle)."""
    xfail_runc("runc 1.1 stops at the first failing poststop hook (the remaining hooks MUST still run)")
    add_hook(bundle, out, "poststop", "3")
    add_hook(bundle, out, "poststop")
    cid = create_start_delete(rt, bundle)
    assert rt("state", cid).returncode != 0
    assert order(out) == ["poststop", "poststop"]


def test_hook_timeout_kills_it_and_fails_create(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    """"timeout (int, OPTIONAL) is the number of seconds before aborting the hook" (config.md Hooks)."""
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}
    cid = new_id()
    bundle.write(cid)
    result = rt("create", "--bundle", str(bundle.path), cid, timeout=15)
    assert result.returncode != 0
    assert rt("state", cid).returncode != 0


def test_hook_path_that_does_not_exist(rt: Runtime, bundle: Bundle, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-hook"
    bundle.config["hooks"] = {"prestart": [{"path": str(missing)}]}
    cid = new_id()
    result = rt.create(cid, bundle, check=False)
    assert result.returncode != 0
    assert str(missing) in result.stderr
    if not rt.is_runc:
        assert result.returncode == 1 and len(result.stderr.strip().splitlines()) == 1
    assert rt("state", cid).returncode != 0


def test_hook_that_does_not_read_its_state(rt: Runtime, bundle: Bundle) -> None:
    """A hook exiting without reading stdin (a large state: annotations) must not break the runtime."""
    bundle.config["annotations"] = {f"key{i}": "v" * 1000 for i in range(200)}
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/true"}], "poststop": [{"path": "/bin/true"}]}
    create_start_delete(rt, bundle)
