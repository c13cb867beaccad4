"""Shares the container harness of spec-tests/ (one copy: spec-tests/helpers.py and fixtures.py).

Tests that start containers request `rt`, `bundle` and `leak_check`; the rootfs is built on first use.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "spec-tests"))

from fixtures import (  # noqa: F401
    _container_session,
    bundle,
    leak_check,
    make_bundle,
    rt,
    state_root,
    xfail_runc,
)
