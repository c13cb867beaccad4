"""Read config.json / process.json / LinuxResources documents and check them.

Checking happens in two passes. The fast pass interprets `schema.json` with a small evaluator
written here (only the keywords the schema uses), so a valid config costs a few hundred microseconds.
Only when it finds a problem is `jsonschema` imported (about 55 ms) to find and word the error with
its JSON path; if jsonschema agrees the document is valid, the fast pass's own finding is reported.
Semantic checks that JSON Schema cannot express live in `validate.py`.
"""

from __future__ import annotations

import math
import os

from pyrunc import fastjson
from pyrunc.config import pattern, validate
from pyrunc.errors import ConfigError

TYPE_CHECKING = False  # io only annotates
if TYPE_CHECKING:
    import io

SCHEMA_PATH = os.path.join(os.path.dirname(__file__), "schema.json")
#: Names of the schema's definitions used for the documents other than config.json.
PROCESS_DEF = "Process"
RESOURCES_DEF = "LinuxResources"


_schema: dict = {}


def schema() -> dict:
    """The project's schema, parsed once per process."""
    if not _schema:
        with open(SCHEMA_PATH, encoding="utf-8") as f:
            _schema.update(fastjson.loads(f.read()))
    return _schema


def load_bundle_config(bundle: str) -> dict:
    """Read, parse and check `<bundle>/config.json` (and that its rootfs exists); return the config."""
    if not os.path.isdir(bundle):
        raise ConfigError(f"bundle {bundle}: no such directory")
    path = os.path.join(bundle, "config.json")
    config = _parse(_read(path), "config.json")
    check_document(config, "config.json", None)
    validate.check_config(config)
    validate.check_rootfs(config, bundle)
    return config


def load_process(path_or_file: str | io.TextIOBase) -> dict:
    """Read and check a process.json (`exec --process`): a path or an open text file."""
    text = path_or_file.read() if hasattr(path_or_file, "read") else _read(path_or_file)
    process = _parse(text, "process.json")
    check_document(process, "process.json", PROCESS_DEF)
    validate.check_process(process, "process.json", "")
    return process


def validate_resources(resources: object, what: str = "resources") -> dict:
    """Check a LinuxResources document (`update --resources`); returns it unchanged."""
    check_document(resources, what, RESOURCES_DEF)
    return resources


def check_document(doc: object, what: str, definition: str | None) -> None:
    """Raise ConfigError worded `<what>: <json path>: <problem>` if `doc` violates the schema.

    `definition` names the `$defs` entry the document must match (None: the whole config).
    """
    root = schema()
    node = root if definition is None else root["$defs"][definition]
    problem = _first_problem(doc, node, root["$defs"], ())
    if problem is None:
        return
    path, reason = problem
    worded = _jsonschema_problem(doc, definition)
    if worded is not None:
        path, reason = worded
    raise ConfigError(f"{what}: {format_path(path)}: {reason}" if path else f"{what}: {reason}")


def format_path(path: tuple) -> str:
    """("mounts", 2, "destination") -> "mounts[2].destination"."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def show(value: object, limit: int = 80) -> str:
    """A value as JSON for an error message, shortened to about `limit` characters."""
    import json  # error messages only: json.dumps spaces its separators as jsonschema's users expect

    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read: {getattr(e, 'strerror', None) or e}") from None


def _parse(text: str, what: str) -> object:
    try:
        return fastjson.loads(text)
    except ValueError:
        pass
    import json  # only to word the error: json's message has the line and column

    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{what}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None


# ---- fast pass: an evaluator of the keywords schema.json uses -------------------------------------------

_TYPE_CHECKS = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    # JSON Schema counts 1.0 as an integer, and Python's bool is an int subclass.
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and math.isfinite(v) and v.is_integer()),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "null": lambda v: v is None,
}
#: Keywords that only annotate; everything else the evaluator must understand (a test checks it).
ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description"})
EVALUATED = frozenset({"$ref", "type", "properties", "required", "additionalProperties", "items", "enum",
                       "pattern", "minimum", "maximum", "minItems"})


def _first_problem(value: object, node: dict, defs: dict, path: tuple) -> tuple[tuple, str] | None:
    """The first violation of `node` by `value` as (path, reason), or None."""
    ref = node.get("$ref")
    if ref is not None:
        problem = _first_problem(value, defs[ref.rpartition("/")[2]], defs, path)
        if problem is not None:
            return problem
    kind = node.get("type")
    if kind is not None and not _TYPE_CHECKS[kind](value):
        return path, f"{show(value)} is not of type {show(kind)}"
    if "enum" in node and value not in node["enum"]:
        return path, f"{show(value)} is not one of {show(node['enum'], 400)}"
    if isinstance(value, dict):
        return _object_problem(value, node, defs, path)
    if isinstance(value, list):
        if len(value) < node.get("minItems", 0):
            return path, f"{show(value)} is too short"
        items = node.get("items")
        if items is not None:
            for i, item in enumerate(value):
                problem = _first_problem(item, items, defs, (*path, i))
                if problem is not None:
                    return problem
        return None
    if isinstance(value, str):
        if "pattern" in node and not pattern.search(node["pattern"], value):
            return path, f"{show(value)} does not match {show(node['pattern'])}"
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < node.get("minimum", value):
            return path, f"{show(value)} is less than the minimum of {node['minimum']}"
        if value > node.get("maximum", value):
            return path, f"{show(value)} is greater than the maximum of {node['maximum']}"
    return None


def _object_problem(value: dict, node: dict, defs: dict, path: tuple) -> tuple[tuple, str] | None:
    for key in node.get("required", ()):
        if key not in value:
            return path, f"{show(key)} is a required property"
    properties = node.get("properties", {})
    extra = node.get("additionalProperties")
    for key, item in value.items():
        sub = properties.get(key, extra)
        if sub is not None:
            problem = _first_problem(item, sub, defs, (*path, key))
            if problem is not None:
                return problem
    return None


# ---- slow pass: jsonschema words the error --------------------------------------------------------------


def _jsonschema_problem(doc: object, definition: str | None) -> tuple[tuple, str] | None:
    """jsonschema's best error as (path, reason), or None if jsonschema finds the document valid."""
    import jsonschema

    root = schema()
    target = root if definition is None else {"$defs": root["$defs"], "$ref": f"#/$defs/{definition}"}
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(target).iter_errors(doc))
    if error is None:
        return None
    return tuple(error.absolute_path), _reason(error)


def _reason(error: object) -> str:
    """jsonschema's message, with the instance shown as JSON rather than as a Python repr."""
    value, kind, expected = error.instance, error.validator, error.validator_value
    if kind == "type":
        return f"{show(value)} is not of type {show(expected)}"
    if kind == "enum":
        return f"{show(value)} is not one of {show(expected, 400)}"
    if kind == "minItems":
        return f"{show(value)} is too short"
    if kind == "pattern":
        return f"{show(value)} does not match {show(expected)}"
    if kind == "required":
        missing = next((key for key in expected if key not in value), expected[0])
        return f"{show(missing)} is a required property"
    return error.message
