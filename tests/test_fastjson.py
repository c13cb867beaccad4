"""pyrunc.fastjson must read and write exactly what the json package does, for pyrunc's documents."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyrunc import fastjson

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text()
documents = st.recursive(scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=30)


@given(documents)
def test_dumps_like_json(doc: object) -> None:
    assert fastjson.dumps(doc) == json.dumps(doc, separators=(",", ":"))


@given(documents)
def test_indented_like_json(doc: object) -> None:
    assert fastjson.dumps_indented(doc) == json.dumps(doc, indent=2)


@given(documents)
def test_loads_like_json(doc: object) -> None:
    text = json.dumps(doc, indent=1)
    assert fastjson.loads(text) == json.loads(text)
    assert fastjson.loads(f" \n{text}\n ".encode()) == json.loads(text)


@pytest.mark.parametrize("bad", ["", "{", '{"a":1} x', "[1,]", "nul"])
def test_loads_refuses_what_json_refuses(bad: str) -> None:
    with pytest.raises(ValueError):
        json.loads(bad)
    with pytest.raises(ValueError):
        fastjson.loads(bad)
