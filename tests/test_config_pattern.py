"""The schema's `pattern` keywords are matched without `re`, exactly as `re.search` would."""

from __future__ import annotations

import json
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pyrunc.config import pattern

SCHEMA = Path(__file__).resolve().parent.parent / "pyrunc" / "config" / "schema.json"


def schema_patterns() -> list[str]:
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.append(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(SCHEMA.read_text()))
    return found


PATTERNS = [*schema_patterns(), r"a.c", r"[\-x]+", r"^[]a]?b*$", r"x\.y", r"^[^a-c\n]*$", r"ab?c+"]
ALPHABET = "aAbcxyz09 ,-.\n\\]KMGBRLIMT_:" + "RLIMIT_NOFILE"


def test_the_schema_uses_only_the_fast_subset() -> None:
    patterns = schema_patterns()
    assert patterns, "schema.json has pattern keywords"
    for p in patterns:
        assert pattern._compile(p) is not None, f"{p} falls back to re"


@settings(max_examples=3000, deadline=None)
@given(st.sampled_from(PATTERNS), st.text(alphabet=ALPHABET, max_size=12))
def test_matches_like_re_search(p: str, text: str) -> None:
    assert pattern.search(p, text) == (re.search(p, text) is not None)


def test_known_values() -> None:
    assert pattern.search("^RLIMIT_[A-Z]+$", "RLIMIT_NOFILE")
    assert pattern.search("^RLIMIT_[A-Z]+$", "RLIMIT_NOFILE\n")  # as re.search: $ before a final newline
    assert not pattern.search("^RLIMIT_[A-Z]+$", "RLIMIT_nofile")
    assert pattern.search("^[1-9][0-9]*[KMG]B$", "64KB")
    assert not pattern.search("^[1-9][0-9]*[KMG]B$", "064KB")
    assert pattern.search("^[0-9, -]*$", "0-3, 5")


def test_other_syntax_goes_to_re() -> None:
    assert pattern._compile("(a|b)") is None
    assert pattern.search("^(a|b)c$", "bc")
    assert pattern._compile(r"\d+") is None
    assert pattern.search(r"^\d+$", "42")
