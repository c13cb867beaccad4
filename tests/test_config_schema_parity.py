"""pyrunc's schema.json against the runtime-spec's own schema (Debian's golang-github-opencontainers-specs-dev).

On every document of the corpus both schemas must agree about valid/invalid, except on the documents
listed in DIFFERENCES: things pyrunc's schema knows from runtime-spec 1.1/1.2 (the Debian copy is older)
or requires on purpose. A listed document must really be judged differently, so the list stays honest.
"""

from __future__ import annotations

import copy
import json
import pathlib

import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from pyrunc.config.defaults import default_spec
from pyrunc.config.load import schema

OFFICIAL_DIR = pathlib.Path("/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema")

pytestmark = pytest.mark.skipif(not (OFFICIAL_DIR / "config-schema.json").exists(),
                                reason="install golang-github-opencontainers-specs-dev for the official schema")


def official_validator() -> jsonschema.Validator:
    resources = []
    for path in OFFICIAL_DIR.glob("*.json"):
        contents = json.loads(path.read_text())
        resources.append((path.as_uri(), Resource.from_contents(contents, default_specification=DRAFT4)))
    registry = Registry().with_resources(resources)
    root = (OFFICIAL_DIR / "config-schema.json").as_uri()
    return jsonschema.Draft4Validator({"$ref": root}, registry=registry)


def with_change(change) -> dict:
    config = copy.deepcopy(default_spec(False))
    change(config)
    return config


def linux(**values):
    return lambda c: c["linux"].update(values)


def process(**values):
    return lambda c: c["process"].update(values)


CORPUS = {
    # valid for both
    "default": lambda c: None,
    "rootless": lambda c: c.update(default_spec(True)),
    "minimal": lambda c: (c.clear(), c.update(ociVersion="1.0.0", root={"path": "r"},
                                              process={"cwd": "/", "args": ["sh"]})),
    "unknown extra properties": lambda c: c.update(vendorThing={"x": 1}),
    "hooks": lambda c: c.update(hooks={"prestart": [{"path": "/bin/true", "timeout": 3}], "poststop": []}),
    "createRuntime hooks": lambda c: c.update(hooks={"createRuntime": [{"path": "/h", "args": ["h", "x"]}]}),
    "seccomp": linux(seccomp={"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                              "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}),
    "seccomp args": linux(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
         "args": [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]}]}),
    "resources": linux(resources={"memory": {"limit": 1024, "swap": -1}, "cpu": {"shares": 2, "quota": 1000},
                                  "pids": {"limit": 4}, "hugepageLimits": [{"pageSize": "2MB", "limit": 0}],
                                  "unified": {"io.weight": "10"}, "rdma": {"mlx5": {"hcaObjects": 2}}}),
    "devices": linux(devices=[{"type": "c", "path": "/dev/null", "major": 1, "minor": 3, "fileMode": 438}]),
    "idmapped mount": lambda c: c["mounts"].append({"destination": "/m", "source": "/s", "type": "bind",
                                                    "uidMappings": [{"containerID": 0, "hostID": 1, "size": 2}]}),
    "rootfsPropagation": linux(rootfsPropagation="slave"),
    "personality": linux(personality={"domain": "LINUX32", "flags": []}),
    "console size": process(consoleSize={"height": 1, "width": 2}),
    # invalid for both
    "no ociVersion": lambda c: c.pop("ociVersion"),
    "ociVersion not a string": lambda c: c.update(ociVersion=1),
    "no cwd": lambda c: c["process"].pop("cwd"),
    "args not strings": process(args=["sh", 1]),
    "env not an array": process(env="A=1"),
    "terminal not boolean": process(terminal="true"),
    "negative uid": lambda c: c["process"]["user"].update(uid=-1),
    "rlimit lower-case": process(rlimits=[{"type": "RLIMIT_nofile", "soft": 1, "hard": 1}]),
    "rlimit without hard": process(rlimits=[{"type": "RLIMIT_CORE", "soft": 1}]),
    "mount without destination": lambda c: c["mounts"].append({"source": "/x"}),
    "mount options not array": lambda c: c["mounts"][0].update(options="ro"),
    "hook without path": lambda c: c.update(hooks={"prestart": [{"args": []}]}),
    "hook timeout 0": lambda c: c.update(hooks={"poststop": [{"path": "/h", "timeout": 0}]}),
    "root without path": lambda c: c.update(root={"readonly": True}),
    "unknown namespace": linux(namespaces=[{"type": "foo"}]),
    "namespace without type": linux(namespaces=[{"path": "/proc/1/ns/net"}]),
    "id mapping incomplete": linux(uidMappings=[{"containerID": 0, "hostID": 0}]),
    "seccomp without defaultAction": linux(seccomp={"syscalls": []}),
    "seccomp bad action": linux(seccomp={"defaultAction": "SCMP_ACT_NOPE"}),
    "seccomp bad arch": linux(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
    "seccomp empty names": linux(seccomp={"defaultAction": "SCMP_ACT_ALLOW",
                                          "syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]}),
    "seccomp bad op": linux(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["read"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "EQ"}]}]}),
    "device bad type": linux(devices=[{"type": "x", "path": "/dev/x"}]),
    "device mode too big": linux(devices=[{"type": "c", "path": "/dev/x", "fileMode": 1000}]),
    "pids without limit": linux(resources={"pids": {}}),
    "memory limit string": linux(resources={"memory": {"limit": "1G"}}),
    "hugepage size": linux(resources={"hugepageLimits": [{"pageSize": "2mb", "limit": 1}]}),
    "device cgroup without allow": linux(resources={"devices": [{"access": "rwm"}]}),
    "bad propagation": linux(rootfsPropagation="sideways"),
    "recursive propagation": linux(rootfsPropagation="rslave"),
    "sysctl value not string": linux(sysctl={"kernel.x": 1}),
    "annotation not string": lambda c: c.update(annotations={"a": 1}),
    "memBwSchema": linux(intelRdt={"memBwSchema": "L3:0=1"}),
    "console size incomplete": process(consoleSize={"height": 1}),
    "personality domain": linux(personality={"domain": "BSD"}),
    "seccomp flag": linux(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]}),
    "blockIO weight too big": linux(resources={"blockIO": {"weight": 70000}}),
    # judged differently: see DIFFERENCES
    "time namespace": linux(namespaces=[{"type": "time"}]),
    "no root": lambda c: c.pop("root"),
    "no args": lambda c: c["process"].pop("args"),
    "empty args": process(args=[]),
    "ioPriority bad class": process(ioPriority={"class": "IOPRIO_CLASS_NONE"}),
    "scheduler without policy": process(scheduler={"nice": 1}),
    "execCPUAffinity": process(execCPUAffinity={"initial": "a-b"}),
    "timeOffsets": linux(timeOffsets={"monotonic": {"secs": "1"}}),
    "netDevices": linux(netDevices={"eth0": {"name": 1}}),
    "memoryPolicy": linux(memoryPolicy={"mode": "MPOL_NOPE"}),
    "seccomp loongarch": linux(seccomp={"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_LOONGARCH64"]}),
    "intelRdt schemata": linux(intelRdt={"schemata": "L3:0=1"}),
    "annotation with empty key": lambda c: c.update(annotations={"": 1}),
}

#: Documents the two schemas judge differently, and why: (valid for pyrunc, valid for the Debian copy).
DIFFERENCES = {
    "time namespace": ((True, False), "1.2 added the time namespace"),
    "recursive propagation": ((True, False), "runc accepts rslave/rprivate/rshared/runbindable too"),
    "no root": ((False, True), "pyrunc requires root (spec: REQUIRED on Linux)"),
    "no args": ((False, True), "pyrunc requires process.args (spec: at least one entry on POSIX)"),
    "empty args": ((False, True), "at least one entry REQUIRED on POSIX"),
    "ioPriority bad class": ((False, True), "1.2 process.ioPriority"),
    "scheduler without policy": ((False, True), "1.2 process.scheduler requires policy"),
    "execCPUAffinity": ((False, True), "1.2 process.execCPUAffinity pattern"),
    "timeOffsets": ((False, True), "1.2 linux.timeOffsets"),
    "netDevices": ((False, True), "1.2 linux.netDevices"),
    "memoryPolicy": ((False, True), "linux.memoryPolicy (runtime-spec after 1.2)"),
    "seccomp loongarch": ((True, False), "newer architectures known to libseccomp 2.5+/2.6"),
    "intelRdt schemata": ((False, True), "intelRdt.schemata (after 1.2) is an array of strings"),
    "annotation with empty key": ((False, True), "pyrunc: every map value must be a string, even under an empty key"),
}


@pytest.fixture(scope="module")
def official():
    return official_validator()


@pytest.fixture(scope="module")
def ours():
    return jsonschema.Draft202012Validator(schema())


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_schemas_agree(name, official, ours):
    document = with_change(CORPUS[name])
    judged = (ours.is_valid(document), official.is_valid(document))
    if name in DIFFERENCES:
        expected, why = DIFFERENCES[name]
        assert judged == expected, why
    else:
        assert judged[0] == judged[1], f"pyrunc says {judged[0]}, the official schema says {judged[1]}"


def test_differences_are_in_the_corpus():
    assert set(DIFFERENCES) <= set(CORPUS)
