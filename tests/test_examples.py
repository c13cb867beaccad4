"""Every bundle in config-examples/ runs to completion (exit status 0) under the runtime from $RUNTIME."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import REPO, Bundle, Runtime, new_id

EXAMPLES = sorted(p.parent for p in (REPO / "config-examples").glob("*/config.json"))


@pytest.mark.usefixtures("leak_check")
@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(rt: Runtime, bundle: Bundle, example: Path) -> None:
    """The example's config.json, with the built busybox rootfs as its root, exits 0 by itself."""
    config = json.loads((example / "config.json").read_text())
    assert config["root"]["path"] == "rootfs", "examples use the built rootfs, linked in as ./rootfs"
    bundle.config = config
    code, out, err = rt.run_container(bundle, new_id(), timeout=30)
    assert code == 0, f"{example.name}: exit {code}\nstdout: {out}\nstderr: {err}"
