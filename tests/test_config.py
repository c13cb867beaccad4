"""config.json loading: errors and their wording, the fast pass against jsonschema, speed, `spec` defaults."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
import time

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrunc import SPEC_VERSION
from pyrunc.config import load_bundle_config, load_process, validate_resources
from pyrunc.config.defaults import default_spec
from pyrunc.config.load import ANNOTATIONS, EVALUATED, _first_problem, schema
from pyrunc.config.validate import CAPABILITIES
from pyrunc.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_bundle(tmp_path, config) -> str:
    text = config if isinstance(config, str) else json.dumps(config)
    (tmp_path / "rootfs").mkdir(exist_ok=True)
    (tmp_path / "config.json").write_text(text)
    return str(tmp_path)


def config_error(tmp_path, config) -> str:
    with pytest.raises(ConfigError) as raised:
        load_bundle_config(write_bundle(tmp_path, config))
    return str(raised.value)


@pytest.fixture
def config() -> dict:
    return default_spec(rootless=False)


@pytest.mark.parametrize("rootless", [False, True])
def test_default_spec_loads(tmp_path, rootless):
    spec = default_spec(rootless)
    assert load_bundle_config(write_bundle(tmp_path, spec)) == spec
    assert spec["ociVersion"] == SPEC_VERSION


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc not installed")
@pytest.mark.parametrize("rootless", [False, True])
def test_default_spec_is_runcs_example(tmp_path, rootless):
    subprocess.run(["runc", "spec", *(["--rootless"] if rootless else [])], cwd=tmp_path, check=True)
    theirs = json.loads((tmp_path / "config.json").read_text())
    theirs["ociVersion"] = SPEC_VERSION
    assert default_spec(rootless) == theirs
    # runc's own file (ociVersion 1.0.2-dev) is a valid config too.
    (tmp_path / "config.json").unlink()
    subprocess.run(["runc", "spec", *(["--rootless"] if rootless else [])], cwd=tmp_path, check=True)
    (tmp_path / "rootfs").mkdir()
    load_bundle_config(str(tmp_path))


def test_default_spec_rootless_maps_caller():
    linux = default_spec(rootless=True)["linux"]
    assert linux["uidMappings"] == [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
    assert "resources" not in linux
    assert "network" not in [ns["type"] for ns in linux["namespaces"]]


def test_default_spec_is_fresh_each_time():
    first = default_spec(False)
    first["mounts"][4]["options"].append("ro")
    assert "ro" not in default_spec(False)["mounts"][4]["options"]


# ---- reading errors ------------------------------------------------------------------------------------


def test_missing_bundle(tmp_path):
    with pytest.raises(ConfigError, match=r"^bundle /.*/nope: no such directory$"):
        load_bundle_config(str(tmp_path / "nope"))


def test_missing_config(tmp_path):
    with pytest.raises(ConfigError, match=r"^/.*/config\.json: no such file$"):
        load_bundle_config(str(tmp_path))


def test_unreadable_config(tmp_path):
    (tmp_path / "config.json").mkdir()
    with pytest.raises(ConfigError, match=r"config\.json: cannot read: Is a directory"):
        load_bundle_config(str(tmp_path))


def test_malformed_json(tmp_path):
    message = config_error(tmp_path, '{\n  "ociVersion": "1.2.0",\n  oops\n}')
    assert message == "config.json: invalid JSON at line 3 column 3: Expecting property name enclosed in double quotes"


# ---- schema errors worded by jsonschema ----------------------------------------------------------------


def test_empty_args(tmp_path, config):
    config["process"]["args"] = []
    assert config_error(tmp_path, config) == "config.json: process.args: [] is too short"


def test_unknown_namespace_type(tmp_path, config):
    config["linux"]["namespaces"][1]["type"] = "foo"
    message = config_error(tmp_path, config)
    assert message.startswith('config.json: linux.namespaces[1].type: "foo" is not one of ["mount", "pid"')


def test_wrong_type(tmp_path, config):
    config["linux"]["resources"]["devices"][0]["allow"] = "no"
    assert config_error(tmp_path, config) == (
        'config.json: linux.resources.devices[0].allow: "no" is not of type "boolean"'
    )


def test_missing_required(tmp_path, config):
    del config["root"]
    assert config_error(tmp_path, config) == 'config.json: "root" is a required property'


def test_bad_pattern(tmp_path, config):
    config["process"]["rlimits"][0]["type"] = "nofile"
    assert config_error(tmp_path, config) == (
        'config.json: process.rlimits[0].type: "nofile" does not match "^RLIMIT_[A-Z]+$"'
    )


def test_out_of_range(tmp_path, config):
    config["process"]["user"]["uid"] = -1
    assert config_error(tmp_path, config) == "config.json: process.user.uid: -1 is less than the minimum of 0"


def test_hook_timeout(tmp_path, config):
    config["hooks"] = {"prestart": [{"path": "/bin/true", "timeout": 0}]}
    assert config_error(tmp_path, config) == "config.json: hooks.prestart[0].timeout: 0 is less than the minimum of 1"


def test_not_an_object(tmp_path):
    assert config_error(tmp_path, "[]") == 'config.json: [] is not of type "object"'


# ---- semantic errors worded by validate.py -------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["mounts"][2].update(destination="tmp"),
         'config.json: mounts[2].destination: "tmp" is not an absolute path'),
        (lambda c: c.update(ociVersion="2.0.0"),
         'config.json: ociVersion: "2.0.0" is not supported (pyrunc reads 1.x)'),
        (lambda c: c.update(ociVersion="1.0"), 'config.json: ociVersion: "1.0" is not a SemVer version'),
        (lambda c: c["root"].update(path=""), "config.json: root.path: must not be empty"),
        (lambda c: c.pop("process"), "config.json: process: is required to create a container"),
        (lambda c: c["process"].update(cwd="work"), 'config.json: process.cwd: "work" is not an absolute path'),
        (lambda c: c["linux"]["namespaces"].append({"type": "pid"}),
         'config.json: linux.namespaces[5].type: "pid" is duplicated'),
        (lambda c: c["linux"]["namespaces"].append({"type": "ipc", "path": "proc/1/ns/ipc"}),
         'config.json: linux.namespaces[5].type: "ipc" is duplicated'),
        (lambda c: c["linux"]["namespaces"].append({"type": "cgroup", "path": "proc/1/ns/cgroup"}),
         'config.json: linux.namespaces[5].path: "proc/1/ns/cgroup" is not an absolute path'),
        (lambda c: c["linux"]["namespaces"].append({"type": "user"}),
         "config.json: linux: a new user namespace needs uidMappings and gidMappings"),
        (lambda c: c["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000, "size": 1}]),
         "config.json: linux: uidMappings/gidMappings given without a user namespace"),
        (lambda c: c["linux"].update(namespaces=[{"type": "mount"}]),
         "config.json: hostname: unable to set hostname without a private UTS namespace"),
        (lambda c: c["linux"]["namespaces"].__setitem__(3, {"type": "uts", "path": "/proc/1/ns/uts"}),
         "config.json: hostname: unable to set hostname without a private UTS namespace"),
        (lambda c: c["linux"].update(timeOffsets={"monotonic": {"secs": 1}}),
         "config.json: linux.timeOffsets: unable to set time offsets without a new time namespace"),
        (lambda c: c["process"]["capabilities"]["ambient"].append("CAP_FOO"),
         'config.json: process.capabilities.ambient[3]: "CAP_FOO": unknown capability'),
        (lambda c: c["process"]["capabilities"]["bounding"].append("kill"),
         'config.json: process.capabilities.bounding[3]: "kill": not a capability name'),
        (lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_FOO", "soft": 1, "hard": 1}),
         'config.json: process.rlimits[1].type: "RLIMIT_FOO": unknown rlimit'),
        (lambda c: c["process"]["rlimits"].append({"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}),
         'config.json: process.rlimits[1].type: "RLIMIT_NOFILE" is duplicated'),
        (lambda c: c.update(hooks={"poststop": [{"path": "hook.sh"}]}),
         'config.json: hooks.poststop[0].path: "hook.sh" is not an absolute path'),
    ],
)  # fmt: skip
def test_semantic_errors(tmp_path, config, mutate, expected):
    mutate(config)
    assert config_error(tmp_path, config) == expected


def test_missing_rootfs(tmp_path, config):
    config["root"]["path"] = "nope"
    assert config_error(tmp_path, config) == f'config.json: root.path: "{tmp_path}/nope": no such directory'


def test_absolute_rootfs(tmp_path, config):
    config["root"]["path"] = str(tmp_path / "rootfs")
    load_bundle_config(write_bundle(tmp_path, config))


def test_semantic_accepts(tmp_path, config):
    linux = config["linux"]
    linux["namespaces"] += [{"type": "user"}, {"type": "time"}, {"type": "cgroup", "path": "/proc/1/ns/cgroup"}]
    linux["uidMappings"] = linux["gidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]
    linux["timeOffsets"] = {"boottime": {"secs": -5, "nanosecs": 10}}
    config["process"]["capabilities"]["bounding"] = list(CAPABILITIES)
    load_bundle_config(write_bundle(tmp_path, config))
    linux["namespaces"][5] = {"type": "user", "path": "/proc/1/ns/user"}  # mappings kept, as podman does
    load_bundle_config(write_bundle(tmp_path, config))


# ---- process.json and resources --------------------------------------------------------------------------


def test_load_process(tmp_path, config):
    path = tmp_path / "process.json"
    path.write_text(json.dumps(config["process"]))
    assert load_process(str(path)) == config["process"]
    with open(path) as f:
        assert load_process(f) == config["process"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"args": []}, "process.json: args: [] is too short"),
        ({"terminal": "yes"}, 'process.json: terminal: "yes" is not of type "boolean"'),
        ({"cwd": "relative"}, 'process.json: cwd: "relative" is not an absolute path'),
        ({"capabilities": {"effective": ["CAP_NOPE"]}},
         'process.json: capabilities.effective[0]: "CAP_NOPE": unknown capability'),
    ],
)
def test_load_process_errors(tmp_path, config, change, expected):
    path = tmp_path / "process.json"
    path.write_text(json.dumps({**config["process"], **change}))
    with pytest.raises(ConfigError) as raised:
        load_process(str(path))
    assert str(raised.value) == expected


def test_load_process_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"process\.json: no such file"):
        load_process(str(tmp_path / "process.json"))


def test_validate_resources():
    resources = {"memory": {"limit": 1 << 30, "swap": -1}, "pids": {"limit": 100}, "cpu": {"shares": 512}}
    assert validate_resources(resources) is resources
    with pytest.raises(ConfigError) as raised:
        validate_resources({"memory": {"limit": "1G"}})
    assert str(raised.value) == 'resources: memory.limit: "1G" is not of type "integer"'


# ---- the fast pass and jsonschema ------------------------------------------------------------------------


def keywords(node, found):
    if isinstance(node, dict):
        for key, value in node.items():
            found.add(key)
            if key in ("properties", "$defs"):
                for sub in value.values():
                    keywords(sub, found)
            elif key in ("items", "additionalProperties"):
                keywords(value, found)
    return found


def test_fast_pass_understands_every_keyword_of_the_schema():
    assert keywords(schema(), set()) <= EVALUATED | ANNOTATIONS


def jsonschema_valid(doc) -> bool:
    return jsonschema.Draft202012Validator(schema()).is_valid(doc)


def fast_valid(doc) -> bool:
    return _first_problem(doc, schema(), schema()["$defs"], ()) is None


def rich_config() -> dict:
    """A config using most of the schema, valid."""
    config = default_spec(False)
    config["process"].update(
        consoleSize={"height": 24, "width": 80}, oomScoreAdj=-500, apparmorProfile="p", selinuxLabel="l",
        ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 4}, user={"uid": 1, "gid": 1, "umask": 18,
        "additionalGids": [5, 6]}, scheduler={"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_FLAG_RECLAIM"]},
        execCPUAffinity={"initial": "0-1", "final": "0, 1"},
    )  # fmt: skip
    config["hooks"] = {"prestart": [{"path": "/bin/true", "args": ["true"], "env": ["A=1"], "timeout": 5}]}
    config["annotations"] = {"a": "b"}
    config["mounts"].append({"destination": "/data", "source": "/srv", "type": "bind", "options": ["rbind"],
                             "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 10}]})
    linux = config["linux"]
    linux["resources"].update(
        memory={"limit": 1 << 30, "swap": -1, "disableOOMKiller": False}, cpu={"shares": 1024, "quota": -1,
        "cpus": "0"}, pids={"limit": 10}, hugepageLimits=[{"pageSize": "2MB", "limit": 0}],
        blockIO={"weight": 10, "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 100}]},
        unified={"memory.high": "max"}, rdma={"mlx": {"hcaHandles": 1}}, network={"classID": 1,
        "priorities": [{"name": "eth0", "priority": 1}]},
    )  # fmt: skip
    linux["devices"] = [{"type": "c", "path": "/dev/fuse", "major": 10, "minor": 229, "fileMode": 438}]
    linux["sysctl"] = {"net.ipv4.ip_forward": "1"}
    rule = {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}
    linux["seccomp"] = {"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1, "architectures": ["SCMP_ARCH_X86_64"],
                        "flags": ["SECCOMP_FILTER_FLAG_LOG"], "syscalls": [rule]}
    linux["rootfsPropagation"] = "slave"
    linux["intelRdt"] = {"closID": "c", "memBwSchema": "MB:0=20"}
    linux["personality"] = {"domain": "LINUX"}
    linux["memoryPolicy"] = {"mode": "MPOL_BIND", "nodes": "0"}
    linux["netDevices"] = {"eth1": {"name": "eth0"}}
    linux["cgroupsPath"] = "/pyrunc/test"
    return config


def test_rich_config_valid(tmp_path):
    config = rich_config()
    assert jsonschema_valid(config)
    load_bundle_config(write_bundle(tmp_path, config))


def paths_of(value, prefix=()):
    """Every (path) inside a JSON value, including the root."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths_of(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths_of(item, (*prefix, i))


RICH_PATHS = list(paths_of(rich_config()))
REPLACEMENTS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**65), max_value=2**65), st.floats(allow_nan=False),
    st.text(max_size=8), st.sampled_from(["/abs", "rel", "CAP_KILL", "SCMP_ACT_LOG", "2MB", "RLIMIT_CORE", "pid"]),
    st.just([]), st.just({}), st.just(["x"]), st.just([{}]), st.just({"path": 1}),
)


def mutate(config: dict, path: tuple, action: str, replacement) -> dict:
    config = copy.deepcopy(config)
    if not path:
        return replacement
    parent = config
    for part in path[:-1]:
        parent = parent[part]
    if action == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = replacement
    return config


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(RICH_PATHS), st.sampled_from(["replace", "delete"]), REPLACEMENTS)
def test_fast_pass_agrees_with_jsonschema(path, action, replacement):
    doc = mutate(rich_config(), path, action, replacement)
    assert fast_valid(doc) == jsonschema_valid(doc)


# ---- speed: the hot path stays away from jsonschema ------------------------------------------------------

CHILD = """
import json, sys
from pyrunc.config import load_bundle_config
from pyrunc.errors import ConfigError
try:
    load_bundle_config(sys.argv[1])
    print(json.dumps(["ok", "jsonschema" in sys.modules]))
except ConfigError as e:
    print(json.dumps([str(e), "jsonschema" in sys.modules]))
"""


def run_child(bundle: str) -> list:
    out = subprocess.run([sys.executable, "-c", CHILD, bundle], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_valid_config_does_not_import_jsonschema(tmp_path, config):
    assert run_child(write_bundle(tmp_path, config)) == ["ok", False]


def test_invalid_config_is_worded_by_jsonschema(tmp_path, config):
    config["mounts"][0]["options"] = "ro"
    assert run_child(write_bundle(tmp_path, config)) == [
        'config.json: mounts[0].options: "ro" is not of type "array"', True]


def test_load_is_fast(tmp_path):
    bundle = write_bundle(tmp_path, rich_config())
    load_bundle_config(bundle)
    rounds = 200
    start = time.perf_counter()
    for _ in range(rounds):
        load_bundle_config(bundle)
    assert (time.perf_counter() - start) / rounds < 0.002
