"""Strict JSON reading for every file and reply ForgePlanner reads: one DataError naming the
file, the place (line and column) and the problem, never a traceback.

Python's `json` accepts things other JSON tools do not (RFC 8259): NaN and Infinity, numbers
that overflow to infinity (1e400), duplicate keys (the last one silently wins, so an edited
file can hide a value from a reviewer), integers of any length (past 4,300 digits int() raises
ValueError, not a JSONDecodeError) and any nesting depth (RecursionError, here or in the code
that walks the result). `loads` refuses all of these, and accepts a UTF-8 byte order mark
(Windows editors write one; RFC 8259 section 8.1 lets a parser ignore it).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from forgeplanner.errors import DataError

MAX_DEPTH = 64  # the deepest real document (a plan with a cluster layout) is about 10
MAX_INT_DIGITS = 30  # byte counts and nanoseconds fit in 20 digits; anything longer is hostile
BOM = b"\xef\xbb\xbf"


class _Refused(ValueError):
    def __init__(self, field: str, value: object, problem: str) -> None:
        super().__init__(problem)
        self.field, self.value, self.problem = field, value, problem


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(key, key, f"duplicate key '{key}' in one object (which value counts?)")
        out[key] = value
    return out


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise _Refused("(number)", text, f"an integer with more than {MAX_INT_DIGITS} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("(number)", text, "a number too large for a 64-bit float")
    return value


def _constant(name: str) -> Any:
    raise _Refused("(number)", name, f"{name} is not a JSON number (RFC 8259)")


def _line_col(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line} column {col}"


def _where(text: str, key: str) -> str:
    """Line and column of the second place `key` occurs as an object key (the json module
    reports a hook's error without a position; the repeat is usually the second one)."""
    found = list(re.finditer(re.escape(json.dumps(key)) + r"\s*:", text))
    m = found[1] if len(found) > 1 else (found[0] if found else None)
    return _line_col(text, m.start()) if m else "(document)"


def depth(value: Any) -> int:
    """Nesting depth of a decoded JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            deepest = max(deepest, d)
            stack.extend((x, d + 1) for x in v.values())
        elif isinstance(v, list):
            deepest = max(deepest, d)
            stack.extend((x, d + 1) for x in v)
    return deepest


def _bracket_depth(text: str, limit: int) -> int | None:
    """Position where '[' / '{' nesting first exceeds `limit` outside strings, else None.
    Checked before decoding so thousands of brackets never reach the recursive decoder."""
    if text.count("[") + text.count("{") <= limit:
        return None
    d = 0
    in_str = False
    skip = -1
    for m in _TOKENS.finditer(text):
        i = m.start()
        if i < skip:
            continue
        ch = text[i]
        if in_str:
            if ch == "\\":
                skip = i + 2
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            d += 1
            if d > limit:
                return i
        elif ch in "]}":
            d -= 1
    return None


_TOKENS = re.compile(r'[\[\]{}"\\]')


def loads(data: bytes | str, source: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Decode strict JSON from `data` (bytes: UTF-8, an optional BOM); DataError otherwise."""
    if isinstance(data, bytes):
        if data.startswith(BOM):
            data = data[len(BOM) :]
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DataError(
                source, f"byte {exc.start}", exc.object[exc.start : exc.end], "not UTF-8 text"
            ) from None
    else:
        text = data[1:] if data.startswith("\ufeff") else data
    deep = _bracket_depth(text, max_depth)
    if deep is not None:
        raise DataError(
            source, _line_col(text, deep), text[deep : deep + 8], f"nested deeper than {max_depth}"
        )
    try:
        return json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
        )
    except json.JSONDecodeError as exc:
        raise DataError(
            source,
            _line_col(text, exc.pos),
            text[exc.pos : exc.pos + 20],
            f"not valid JSON: {exc.msg}",
        ) from None
    except _Refused as exc:
        where = _number_at(text, exc) if exc.field == "(number)" else _where(text, exc.field)
        raise DataError(source, where, exc.value, exc.problem) from None
    except RecursionError:
        raise DataError(source, "(document)", "", f"nested deeper than {max_depth}") from None


def _number_at(text: str, exc: _Refused) -> str:
    value = str(exc.value)
    i = text.find(value[:40])
    return _line_col(text, i) if i >= 0 else "(number)"
