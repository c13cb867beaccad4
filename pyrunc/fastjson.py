"""JSON for the hot commands through CPython's C accelerator `_json`.

Importing the `json` package costs several milliseconds at every start (json.decoder imports `re`, which
imports `enum`); `_json` alone costs a fraction of one. The results are those of json.loads and
json.dumps(..., separators=(",", ":")) for the documents pyrunc reads and writes (dicts, lists, str, int,
float, bool, None). Where `_json` is missing (another Python implementation), the `json` package serves.
"""

from __future__ import annotations

try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None


class _ScanContext:
    """The attributes `_json.make_scanner` reads from a decoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    memo: dict = {}

    @staticmethod
    def parse_constant(name: str) -> float:
        return {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}[name]


_WHITESPACE = " \t\n\r"
if _json is not None:
    _scan = _json.make_scanner(_ScanContext)
    # markers=None: no circular-reference check (pyrunc's documents are trees); compact separators.
    _encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",", False, False, True)
    quote = _json.encode_basestring_ascii
else:  # pragma: no cover
    import json as _fallback

    def quote(text: str) -> str:
        return _fallback.dumps(text)


def loads(text: str | bytes) -> object:
    """Parse one JSON document; ValueError when it is not one."""
    if isinstance(text, bytes):
        text = text.decode()
    if _json is None:  # pragma: no cover
        return _fallback.loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as err:
        raise ValueError(f"expecting a JSON value at offset {err.value}") from None
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"extra data at offset {end}")
    return value


def dumps(value: object) -> str:
    """Compact JSON, like json.dumps(value, separators=(",", ":"))."""
    if _json is None:  # pragma: no cover
        return _fallback.dumps(value, separators=(",", ":"))
    return "".join(_encode(value, 0))


def dumps_indented(value: object, indent: str = "  ", level: int = 0) -> str:
    """Like json.dumps(value, indent=len(indent)), which is what `runc state` prints."""
    inner = indent * (level + 1)
    if isinstance(value, dict) and value:
        items = (f"{inner}{quote(str(k))}: {dumps_indented(v, indent, level + 1)}" for k, v in value.items())
        return "{\n" + ",\n".join(items) + "\n" + indent * level + "}"
    if isinstance(value, list | tuple) and value:
        items = (inner + dumps_indented(v, indent, level + 1) for v in value)
        return "[\n" + ",\n".join(items) + "\n" + indent * level + "]"
    return dumps(value)
