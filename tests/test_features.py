"""The `features` document: required fields, sane types, and agreement with `runc features` where it should."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from pyrunc import SPEC_VERSION
from pyrunc.features import features_document


@pytest.fixture(scope="module")
def document() -> dict:
    return json.loads(json.dumps(features_document()))


def strings(value) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value) and len(set(value)) == len(value)


def test_top_level(document):
    assert document["ociVersionMin"] == "1.0.0"
    assert document["ociVersionMax"] == SPEC_VERSION
    assert document["hooks"] == ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
                                 "poststop"]
    assert strings(document["mountOptions"]) and "rbind" in document["mountOptions"]
    assert all(isinstance(v, str) for v in document["annotations"].values())


def test_linux(document):
    linux = document["linux"]
    assert sorted(linux["namespaces"]) == ["cgroup", "ipc", "mount", "network", "pid", "time", "user", "uts"]
    assert strings(linux["capabilities"]) and len(linux["capabilities"]) == 41
    assert linux["capabilities"][0] == "CAP_CHOWN" and linux["capabilities"][-1] == "CAP_CHECKPOINT_RESTORE"
    assert linux["cgroup"] == {"v1": True, "v2": True, "systemd": True, "systemdUser": False, "rdma": False}
    assert linux["apparmor"] == {"enabled": False} and linux["selinux"] == {"enabled": False}
    assert linux["mountExtensions"] == {"idmap": {"enabled": True}}
    for section in ("intelRdt", "netDevices"):
        assert isinstance(linux[section]["enabled"], bool)


def test_seccomp(document):
    seccomp = document["linux"]["seccomp"]
    assert seccomp["enabled"] is True
    assert "SCMP_ACT_NOTIFY" in seccomp["actions"] and "SCMP_CMP_MASKED_EQ" in seccomp["operators"]
    assert "SCMP_ARCH_X86_64" in seccomp["archs"] and "SCMP_ARCH_S390X" in seccomp["archs"]
    assert seccomp["archs"] == sorted(seccomp["archs"])
    assert set(seccomp["supportedFlags"]) <= set(seccomp["knownFlags"])
    for key in ("actions", "operators", "archs", "knownFlags", "supportedFlags"):
        assert strings(seccomp[key]), key
    assert document["annotations"]["io.github.seccomp.libseccomp.version"].count(".") == 2


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc not installed")
def test_same_vocabulary_as_runc(document):
    runc = json.loads(subprocess.run(["runc", "features"], capture_output=True, text=True, check=True).stdout)
    # pyrunc knows every word runc 1.1.5 knows, plus the newer idmap/ridmap.
    assert set(document["mountOptions"]) - set(runc["mountOptions"]) == {"idmap", "ridmap"}
    assert set(runc["mountOptions"]) <= set(document["mountOptions"])
    assert document["hooks"] == runc["hooks"]
    assert document["linux"]["capabilities"] == runc["linux"]["capabilities"]
    assert set(runc["linux"]["namespaces"]) <= set(document["linux"]["namespaces"])
    for key in ("actions", "operators", "archs"):
        assert set(runc["linux"]["seccomp"][key]) <= set(document["linux"]["seccomp"][key]), key


def test_import_does_no_work():
    code = "import sys, pyrunc.features; print('pyseccomp' in sys.modules, 'jsonschema' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
