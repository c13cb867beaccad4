"""`re.search` for the `pattern` keywords of schema.json, without importing `re` on the create path.

Importing `re` (and the `enum` it needs) costs milliseconds at every `create`. The schema's patterns use a
small subset of the syntax: the anchors `^` and `$`, literal characters, `.`, character classes with
ranges and negation, backslash escapes of single characters (`\\n`, `\\-` ...), and the quantifiers `*`,
`+` and `?`. Such a pattern is matched here with the semantics of Python's `re.search` (which is what
jsonschema uses: `$` also matches before a final newline). Any other pattern is handed to `re`.
"""

from __future__ import annotations

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "f": "\f", "v": "\v"}
_SPECIAL = frozenset("()|{}")


class _Atom:
    """One character test, repeated between `least` and `most` times (most None: unbounded)."""

    __slots__ = ("chars", "least", "most", "negated", "ranges")

    def __init__(self, chars: str, ranges: list[tuple[str, str]], negated: bool) -> None:
        self.chars, self.ranges, self.negated = chars, ranges, negated
        self.least, self.most = 1, 1

    def accepts(self, c: str) -> bool:
        inside = c in self.chars or any(low <= c <= high for low, high in self.ranges)
        return inside != self.negated


class _Compiled:
    __slots__ = ("at_end", "at_start", "atoms")

    def __init__(self, atoms: list[_Atom], at_start: bool, at_end: bool) -> None:
        self.atoms, self.at_start, self.at_end = atoms, at_start, at_end


_cache: dict[str, _Compiled | None] = {}


def search(pattern: str, text: str) -> bool:
    """True when `pattern` matches somewhere in `text`, as `re.search(pattern, text)` would say."""
    if pattern not in _cache:
        _cache[pattern] = _compile(pattern)
    compiled = _cache[pattern]
    if compiled is None:
        import re

        return re.search(pattern, text) is not None
    starts = (0,) if compiled.at_start else range(len(text) + 1)
    return any(_match(compiled, 0, text, start) for start in starts)


def _match(compiled: _Compiled, index: int, text: str, pos: int) -> bool:
    if index == len(compiled.atoms):
        return not compiled.at_end or pos == len(text) or (pos == len(text) - 1 and text[-1] == "\n")
    atom = compiled.atoms[index]
    end = pos
    while end < len(text) and (atom.most is None or end - pos < atom.most) and atom.accepts(text[end]):
        end += 1
    return any(_match(compiled, index + 1, text, stop) for stop in range(end, pos + atom.least - 1, -1))


def _compile(pattern: str) -> _Compiled | None:
    """The atoms of a pattern in the supported subset; None for anything else."""
    at_start = pattern.startswith("^")
    at_end = pattern.endswith("$") and not pattern.endswith("\\$")
    body = pattern[int(at_start): len(pattern) - int(at_end)]
    atoms: list[_Atom] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c in _SPECIAL or c in "^$":
            return None
        if c in "*+?":
            if not atoms or atoms[-1].most != 1 or atoms[-1].least != 1:
                return None
            atoms[-1].least = 0 if c in "*?" else 1
            atoms[-1].most = 1 if c == "?" else None
            i += 1
        elif c == "[":
            parsed = _parse_class(body, i + 1)
            if parsed is None:
                return None
            atom, i = parsed
            atoms.append(atom)
        elif c == "\\":
            literal = _escaped(body, i + 1)
            if literal is None:
                return None
            atoms.append(_Atom(literal, [], False))
            i += 2
        else:
            atoms.append(_Atom("\n", [], True) if c == "." else _Atom(c, [], False))
            i += 1
    return _Compiled(atoms, at_start, at_end)


def _escaped(body: str, i: int) -> str | None:
    """The character an escape stands for; None for class escapes (\\d, \\w ...) and the like."""
    if i >= len(body):
        return None
    c = body[i]
    if c in _ESCAPES:
        return _ESCAPES[c]
    return c if not c.isalnum() else None


def _parse_class(body: str, i: int) -> tuple[_Atom, int] | None:
    """A `[...]` class starting after its `[`: the atom and the index after its `]`."""
    negated = i < len(body) and body[i] == "^"
    i += int(negated)
    members: list[tuple[str, bool]] = []  # (character, escaped): an escaped "-" makes no range
    first = True
    while i < len(body) and (body[i] != "]" or first):
        first = False
        if body[i] == "[":
            return None
        if body[i] == "\\":
            literal = _escaped(body, i + 1)
            if literal is None:
                return None
            members.append((literal, True))
            i += 2
        else:
            members.append((body[i], False))
            i += 1
    if i >= len(body):
        return None
    chars, ranges, k = "", [], 0
    while k < len(members):
        if k + 2 < len(members) and members[k + 1] == ("-", False):
            ranges.append((members[k][0], members[k + 2][0]))
            k += 3
        else:
            chars += members[k][0]
            k += 1
    return _Atom(chars, ranges, negated), i + 1
