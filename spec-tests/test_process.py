"""The container process (config.md "Process"): user, env, cwd, args and exit status."""

from __future__ import annotations

from helpers import Bundle, Runtime, run_ok


def test_user_uid_gid(rt: Runtime, bundle: Bundle) -> None:
    """config.md "POSIX process": "uid (int, REQUIRED) specifies the user ID in the container namespace",
    "gid (int, REQUIRED) specifies the group ID in the container namespace"."""
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000}
    assert run_ok(rt, bundle, "sh", "-c", "id -u; id -g").split() == ["1000", "1000"]


def test_user_additional_gids(rt: Runtime, bundle: Bundle) -> None:
    """config.md "POSIX process": "additionalGids (array of ints, OPTIONAL) specifies additional group IDs
    in the container namespace to be added to the process"."""
    bundle.config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [5, 100]}
    groups = run_ok(rt, bundle, "cat", "/proc/self/status")
    line = next(x for x in groups.splitlines() if x.startswith("Groups:"))
    assert sorted(int(g) for g in line.split()[1:]) == [5, 100]


def test_env(rt: Runtime, bundle: Bundle) -> None:
    """config.md "Process": "env (array of strings, OPTIONAL) with the same semantics as IEEE Std
    1003.1-2008's environ"."""
    bundle.config["process"]["env"] = ["PATH=/bin", "FOO=bar baz", "EMPTY="]
    env = run_ok(rt, bundle, "env").splitlines()
    assert "FOO=bar baz" in env
    assert "EMPTY=" in env
    assert "PATH=/bin" in env


def test_cwd(rt: Runtime, bundle: Bundle) -> None:
    """config.md "Process": "cwd (string, REQUIRED) is the working directory that will be set for the
    executable"."""
    bundle.config["process"]["cwd"] = "/etc"
    assert run_ok(rt, bundle, "pwd").strip() == "/etc"


def test_args0_resolved_via_path(rt: Runtime, bundle: Bundle) -> None:
    """config.md "Process": "args ... This specification extends the IEEE standard in that at least one
    entry is REQUIRED, and that entry is used with the same semantics as execvp's file" (PATH lookup)."""
    bundle.config["process"]["env"] = ["PATH=/nowhere:/sbin:/bin"]
    assert run_ok(rt, bundle, "echo", "found").strip() == "found"


def test_args_passed_verbatim(rt: Runtime, bundle: Bundle) -> None:
    """config.md "Process": "args (array of strings, OPTIONAL) with similar semantics to IEEE Std
    1003.1-2008 execvp's argv"."""
    out = run_ok(rt, bundle, "sh", "-c", 'for a in "$@"; do echo "[$a]"; done', "x", "a b", "", "*")
    assert out.splitlines() == ["[a b]", "[]", "[*]"]


def test_run_exit_status(rt: Runtime, bundle: Bundle) -> None:
    """runc `run` exits with the container process's exit status (0 and non-zero)."""
    for status in (0, 1, 7, 255):
        bundle.set_args("sh", "-c", f"exit {status}")
        code, _, _ = rt.run_container(bundle)
        assert code == status


def test_stdout_and_stderr_are_separate(rt: Runtime, bundle: Bundle) -> None:
    """config.md "Process": with terminal false the process's stdio are the runtime's (not a pty)."""
    bundle.set_args("sh", "-c", "echo out; echo err >&2")
    code, out, err = rt.run_container(bundle)
    assert (code, out, err) == (0, "out\n", "err\n")
