"""The state of a container (runtime.md "State" and "Query State")."""

from __future__ import annotations

from pathlib import Path

from helpers import Bundle, Runtime, new_id


def _created(rt: Runtime, bundle: Bundle) -> str:
    cid = new_id()
    bundle.set_args("sleep", "100")
    rt.create(cid, bundle)
    return cid


def test_state_has_required_fields(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "State": ociVersion, id, status and bundle are REQUIRED; pid is REQUIRED when status is
    created or running on Linux."""
    cid = _created(rt, bundle)
    state = rt.state(cid)
    assert {"ociVersion", "id", "status", "pid", "bundle"} <= state.keys()
    assert isinstance(state["ociVersion"], str) and state["ociVersion"]
    assert state["id"] == cid


def test_state_pid_is_live_host_pid(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "State": "pid (int ...) is the ID of the container process, as seen by the host"."""
    cid = _created(rt, bundle)
    for status in ("created", "running"):
        state = rt.state(cid)
        assert state["status"] == status
        assert isinstance(state["pid"], int) and state["pid"] > 0
        cmdline = Path(f"/proc/{state['pid']}/cmdline").read_bytes()
        if status == "running":
            assert cmdline.split(b"\0")[0] == b"sleep"
            break
        rt.start(cid)


def test_state_bundle_is_absolute(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "State": "bundle (string, REQUIRED) is the absolute path to the container's bundle
    directory" (even when create was given a relative path)."""
    cid = new_id()
    bundle.set_args("sleep", "100")
    bundle.write(cid)
    rt("create", "--bundle", bundle.path.name, cid, cwd=bundle.path.parent, check=True)
    assert rt.state(cid)["bundle"] == str(bundle.path)


def test_state_annotations(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "State": "annotations (map, OPTIONAL) contains the list of annotations associated with
    the container" (config.md "Annotations")."""
    annotations = {"org.pyrunc.test": "yes", "com.example.key": "value with spaces"}
    bundle.config["annotations"] = annotations
    cid = _created(rt, bundle)
    assert rt.state(cid)["annotations"] == annotations


def test_state_stopped(rt: Runtime, bundle: Bundle) -> None:
    """runtime.md "State": status "stopped: the container process has exited"; the state stays
    queryable until delete."""
    cid = new_id()
    bundle.set_args("true")
    rt.create(cid, bundle)
    rt.start(cid)
    state = rt.wait_status(cid, "stopped")
    assert state["id"] == cid
    assert state["bundle"] == str(bundle.path)
