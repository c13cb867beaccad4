"""Bad input must fail cleanly: exit status 1, a message on stderr, nothing left behind.

runtime.md "Create": "If the runtime cannot create the container as specified ... it MUST generate an
error"; runtime.md "Errors": "When an operation ... generates an error, ... the state of the environment
... MUST be as if the operation had never been attempted" (the leak check fixture verifies mounts,
cgroups, processes and state entries). For pyrunc the message is exactly one line without a traceback
that names the problem (runc prints logrus lines, so those asserts are skipped for runc).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from helpers import Bundle, Runtime, new_id


@dataclass(frozen=True)
class BadBundle:
    spoil: Callable[[Bundle], None]  # applied after config.json is written
    names: str  # what pyrunc's one-line message must mention
    runc_deviation: str = ""  # spec clause runc does not follow, for a strict xfail


def _rewrite(change: Callable[[dict], None]) -> Callable[[Bundle], None]:
    def spoil(bundle: Bundle) -> None:
        change(bundle.config)
        bundle.write("unused")

    return spoil


def _write_text(text: str) -> Callable[[Bundle], None]:
    return lambda bundle: (bundle.path / "config.json").write_text(text)


CASES = {
    # runtime.md "Create": "This operation MUST generate an error if it is not provided a path to the bundle".
    "missing-bundle": BadBundle(lambda b: shutil.rmtree(b.path), "bundle"),
    # bundle.md: "config.json: This REQUIRED file MUST reside in the root of the bundle directory".
    "missing-config": BadBundle(lambda b: (b.path / "config.json").unlink(), "config.json"),
    "malformed-json": BadBundle(_write_text('{"ociVersion": "1.0.2", "process": '), "config.json"),
    "not-an-object": BadBundle(_write_text("[1, 2]"), "config.json"),
    # config.md "Process": args "at least one entry is REQUIRED".
    "empty-args": BadBundle(_rewrite(lambda c: c["process"].update(args=[])), "args"),
    # config.md "Mounts": destination "This value MUST be an absolute path".
    "relative-mount-destination": BadBundle(
        _rewrite(lambda c: c["mounts"].append({"destination": "relative/dir", "type": "tmpfs",
                                               "source": "tmpfs"})),
        "relative/dir",
        'config.md "Mounts": destination "MUST be an absolute path"; runc 1.1 only warns and runs',
    ),
    # config-linux.md "Namespaces": type "MUST be one of" the listed types.
    "unknown-namespace-type": BadBundle(
        _rewrite(lambda c: c["linux"]["namespaces"].append({"type": "bogus"})), "bogus"
    ),
    # config.md "Root": path "The value MUST be ... a path to the root filesystem" (it must exist).
    "missing-rootfs": BadBundle(lambda b: shutil.rmtree(b.rootfs), "rootfs"),
    # config.md "Process": args[0] "used with the same semantics as execvp's file"; not found is an error.
    "args0-not-found": BadBundle(_rewrite(lambda c: c["process"].update(args=["no-such-binary"])),
                                 "no-such-binary"),
}


def _assert_clean_failure(rt: Runtime, result, cid: str, names: str) -> None:
    assert result.returncode == 1, f"exit {result.returncode}, stderr: {result.stderr}"
    assert result.stderr.strip(), "no error message on stderr"
    assert cid not in rt.container_ids(), "a state entry was left for the failed container"
    assert rt("state", cid).returncode != 0
    if not rt.is_runc:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got: {result.stderr!r}"
        assert "Traceback" not in result.stderr
        assert names in lines[0], f"the message does not name {names!r}: {lines[0]!r}"


@pytest.mark.parametrize("command", ["run", "create"])
@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_bundle_fails_cleanly(rt: Runtime, bundle: Bundle, case: str, command: str, xfail_runc) -> None:
    """runtime.md "Create" / "Errors": an invalid bundle is an error and leaves nothing behind."""
    bad = CASES[case]
    if bad.runc_deviation:
        xfail_runc(bad.runc_deviation)
    cid = new_id()
    bundle.write(cid)
    bad.spoil(bundle)
    result = rt(command, "--bundle", str(bundle.path), cid)
    _assert_clean_failure(rt, result, cid, bad.names)


def test_existing_id_fails_without_side_effects(rt: Runtime, make_bundle) -> None:
    """runtime.md "Create": a non-unique id "MUST generate an error and a new container MUST NOT be
    created"; the existing container is untouched."""
    first, second = make_bundle(), make_bundle()
    cid = new_id()
    first.set_args("sleep", "100")
    rt.create(cid, first)
    before = rt.state(cid)
    result = rt.create(cid, second, check=False)
    assert result.returncode == 1
    assert result.stderr.strip()
    assert rt.state(cid) == before
    if not rt.is_runc:
        assert len(result.stderr.strip().splitlines()) == 1
        assert cid in result.stderr
