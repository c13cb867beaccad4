"""Capabilities, user/groups, umask and no_new_privs, applied in a forked child as the init does."""

from __future__ import annotations

import pytest
from test_security_helpers import CHILD_FAILED, run_child, status_fields

from pyrunc import syscalls
from pyrunc.errors import SecurityError
from pyrunc.security import capabilities, identity

STATUS = ["busybox", "cat", "/proc/self/status"]


def mask(*names: str) -> str:
    value = 0
    for name in names:
        value |= 1 << capabilities.NUMBERS[name]
    return f"{value:016x}"


def caps_config(**sets: list[str]) -> dict:
    return {name: sets.get(name, []) for name in capabilities.SET_NAMES}


def test_all_names_up_to_checkpoint_restore() -> None:
    assert len(capabilities.NAMES) == 41
    assert capabilities.NUMBERS["CAP_CHECKPOINT_RESTORE"] == 40
    assert capabilities.NUMBERS["CAP_SYS_RESOURCE"] == 24


def test_unknown_capability_is_refused() -> None:
    with pytest.raises(SecurityError, match=r"^unknown capability CAP_FOO in process.capabilities.effective$"):
        identity.parse_capabilities(caps_config(effective=["CAP_KILL", "CAP_FOO"]))


def test_root_gets_the_configured_sets_after_exec() -> None:
    base = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"]
    caps = identity.parse_capabilities(
        caps_config(bounding=base, effective=base, permitted=base, inheritable=["CAP_KILL"], ambient=["CAP_KILL"])
    )
    result = run_child(lambda: identity.switch_identity({"uid": 0, "gid": 0}, caps), STATUS)
    assert result.status == 0, result.err
    status = status_fields(result.out)
    assert status["CapBnd"] == status["CapEff"] == status["CapPrm"] == mask(*base)
    assert status["CapInh"] == status["CapAmb"] == mask("CAP_KILL")
    assert status["Uid"].split() == ["0"] * 4


def test_non_root_keeps_exactly_the_configured_sets_after_exec() -> None:
    kept = ["CAP_KILL", "CAP_NET_BIND_SERVICE"]
    bounding = [*kept, "CAP_CHOWN", "CAP_SETUID"]
    caps = identity.parse_capabilities(
        caps_config(bounding=bounding, effective=kept, permitted=kept, inheritable=kept, ambient=kept)
    )
    user = {"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o077}
    result = run_child(lambda: identity.switch_identity(user, caps), STATUS)
    assert result.status == 0, result.err
    status = status_fields(result.out)
    assert status["CapBnd"] == mask(*bounding)
    for field in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert status[field] == mask(*kept), field
    assert status["Uid"].split() == ["1000"] * 4
    assert status["Gid"].split() == ["1001"] * 4
    assert status["Groups"].split() == ["10", "20"]
    assert status["Umask"] == "0077"


def test_sets_before_exec_are_exact() -> None:
    """Before exec (what capset set): effective is a strict subset of permitted; no additionalGids → none."""
    caps = identity.parse_capabilities(
        caps_config(bounding=["CAP_KILL", "CAP_CHOWN"], effective=["CAP_KILL"], permitted=["CAP_KILL", "CAP_CHOWN"])
    )

    def step() -> dict:
        identity.switch_identity({"uid": 1000, "gid": 1000}, caps)
        with open("/proc/self/status") as f:
            return status_fields(f.read())

    status = run_child(step).json()
    assert (status["CapEff"], status["CapPrm"], status["CapInh"]) == (
        mask("CAP_KILL"), mask("CAP_KILL", "CAP_CHOWN"), mask(),
    )
    assert status["Groups"].strip() == ""
    assert status["Umask"] == "0022"


def test_ambient_not_in_inheritable_is_skipped_like_runc() -> None:
    """runc's default spec lists ambient caps but no inheritable ones: the kernel refuses them, runc goes on."""
    base = ["CAP_KILL", "CAP_AUDIT_WRITE"]
    caps = identity.parse_capabilities(caps_config(bounding=base, effective=base, permitted=base, ambient=base))
    result = run_child(lambda: identity.switch_identity({"uid": 0, "gid": 0}, caps), STATUS)
    assert result.status == 0, result.err
    assert status_fields(result.out)["CapAmb"] == mask()


def test_capability_the_runtime_lacks_is_an_error_naming_it() -> None:
    """This host's bounding set lacks CAP_SYS_RESOURCE; runc fails too ("unable to apply caps")."""
    _, held, _ = syscalls.capget()
    if held >> capabilities.NUMBERS["CAP_SYS_RESOURCE"] & 1:
        pytest.skip("this host grants CAP_SYS_RESOURCE")
    wanted = ["CAP_KILL", "CAP_SYS_RESOURCE"]
    caps = identity.parse_capabilities(caps_config(bounding=wanted, effective=wanted, permitted=wanted))
    result = run_child(lambda: identity.switch_identity({"uid": 0, "gid": 0}, caps))
    assert result.status == CHILD_FAILED
    assert "SecurityError: unable to apply capabilities: Operation not permitted: the runtime does not hold " \
           "CAP_SYS_RESOURCE\n" in result.err


def _enter_user_namespace_mapping_only_root() -> None:
    """A new user namespace where only id 0 is mapped and setgroups is denied (as rootless)."""
    syscalls.unshare(syscalls.CLONE_NEWUSER)
    for name, text in (("uid_map", "0 0 1"), ("setgroups", "deny"), ("gid_map", "0 0 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)


def test_unmapped_uid_is_reported() -> None:
    def step() -> None:
        _enter_user_namespace_mapping_only_root()
        identity.switch_identity({"uid": 1000, "gid": 0}, identity.parse_capabilities(None))

    result = run_child(step)
    assert result.status == CHILD_FAILED
    assert "SecurityError: cannot switch to uid 1000: Invalid argument (is it mapped in the user namespace?)\n" \
           in result.err


def test_additional_gids_when_setgroups_is_denied() -> None:
    def step() -> None:
        _enter_user_namespace_mapping_only_root()
        identity.switch_identity({"uid": 0, "gid": 0, "additionalGids": [0]}, identity.parse_capabilities(None))

    result = run_child(step)
    assert result.status == CHILD_FAILED
    assert "SecurityError: cannot set additionalGids [0]: setgroups is denied in this user namespace\n" in result.err


def test_root_in_user_namespace_without_setgroups() -> None:
    kept = ["CAP_KILL"]
    caps = identity.parse_capabilities(caps_config(bounding=kept, effective=kept, permitted=kept))

    def step() -> None:
        _enter_user_namespace_mapping_only_root()
        identity.switch_identity({"uid": 0, "gid": 0}, caps)

    result = run_child(step, STATUS)
    assert result.status == 0, result.err
    status = status_fields(result.out)
    assert status["CapBnd"] == status["CapEff"] == mask(*kept)


def test_no_new_privs() -> None:
    result = run_child(identity.set_no_new_privs, STATUS)
    assert result.status == 0, result.err
    assert status_fields(result.out)["NoNewPrivs"] == "1"
