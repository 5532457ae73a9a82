"""The `.fplan` document: a Plan as JSON with a schema version, and migration of older versions.

Layout (schema 2):

    {"format": "forgeplanner.plan", "schema_version": 2, "plan": {...Plan fields...}}

Reading runs the migration chain (`MIGRATIONS[v]` turns version v into v + 1) until the
current version, then converts the JSON into frozen value types field by field, so a bad file
gives one error naming the file, the field path (`plan.build.machines[0].count`) and the value.
A file newer than this program is refused rather than guessed at. Unknown fields are refused
too: a typo in a hand-edited plan must not silently drop a machine.

The dataclass <-> JSON conversion is written here because the value types are plain frozen
dataclasses with tuples (no pydantic models) and the error must name the field path; it follows
the type hints, so a new field needs no code here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable
from typing import Any

from forgeplanner.domain.plan import Plan
from forgeplanner.errors import DataError

FORMAT = "forgeplanner.plan"
SCHEMA_VERSION = 2
# The evidence record digests plans as RFC 8785 JSON, whose numbers are IEEE doubles: an
# integer past 2^53 - 1 cannot be represented exactly (and rfc8785 refuses it).
MAX_SAFE_INT = 2**53 - 1


# -- migrations ---------------------------------------------------------------------------------


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 (the first draft, 2026-11) was flat: `machines` and `models` at the top level,
    a machine's price as `price_usd` + `price_basis`, no alternatives, runs or power settings.
    Schema 2 nests them in `plan.build`, makes the price a PlanPrice and adds the rest with
    defaults. Estimates are carried over when present; `plan recompute` refreshes them."""
    machines = []
    for m in doc.get("machines", []):
        basis = m.get("price_basis") or ("user" if m.get("price_usd") is not None else "unknown")
        price: dict[str, Any] = {"usd": m.get("price_usd"), "basis": basis}
        if m.get("price_date"):
            price["as_of"] = m["price_date"]
        if price["usd"] is None:
            price["basis"] = "unknown"
            price["reason"] = "no price in the schema-1 plan"
        machines.append(
            {
                "config_id": m["config_id"],
                "count": m.get("count", 1),
                "label": m.get("name", m["config_id"]),
                "chip_id": m.get("chip_id", ""),
                "memory_gb": m.get("memory_gb", 0),
                "price": price,
            }
        )
    models = [
        {
            "model_id": m["model_id"],
            "quant": m["quant"],
            "runtime": m.get("runtime", "llama.cpp"),
            "context": m.get("context", 8192),
        }
        for m in doc.get("models", [])
    ]
    created = doc.get("created", "")
    return {
        "format": FORMAT,
        "schema_version": 2,
        "plan": {
            "name": doc["name"],
            "created_at": created,
            "updated_at": doc.get("modified", created),
            "notes": doc.get("notes", ""),
            "build": {"machines": machines, "models": models},
        },
    }


MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2}


def migrate(doc: Any, source: str = "<plan>") -> dict[str, Any]:
    """Bring a decoded `.fplan` document to SCHEMA_VERSION (pure: returns a new dict)."""
    if not isinstance(doc, dict):
        raise DataError(source, "(document)", type(doc).__name__, "a plan must be a JSON object")
    version = doc.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise DataError(source, "schema_version", version, "must be an integer")
    if version > SCHEMA_VERSION:
        raise DataError(
            source,
            "schema_version",
            version,
            f"written by a newer ForgePlanner (this one reads up to {SCHEMA_VERSION}); upgrade",
        )
    if version < 1:
        raise DataError(source, "schema_version", version, "must be >= 1")
    while version < SCHEMA_VERSION:
        try:
            doc = MIGRATIONS[version](doc)
        except (KeyError, TypeError, AttributeError) as exc:
            raise DataError(
                source, "schema_version", version, f"cannot migrate to {version + 1}: {exc!r}"
            ) from exc
        version = doc["schema_version"]
    if doc.get("format") != FORMAT:
        raise DataError(source, "format", doc.get("format"), f"expected '{FORMAT}'")
    return doc


# -- value <-> JSON --------------------------------------------------------------------------------


def to_jsonable(obj: Any) -> Any:
    """Frozen dataclasses -> plain JSON values (dicts, lists, str, int, float, bool, None)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ValueError(f"cannot store a non-finite number ({obj}) in a plan")
    return obj


def from_jsonable(tp: Any, value: Any, path: str, source: str) -> Any:
    """Build a value of type `tp` from JSON, naming `path` in any error."""
    origin = typing.get_origin(tp)
    if tp is Any:
        _check_plain(value, path, source)
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return from_jsonable(non_none[0], value, path, source)
        for arg in non_none:  # int | float style unions
            try:
                return from_jsonable(arg, value, path, source)
            except DataError:
                continue
        raise DataError(source, path, value, f"expected {tp}")
    if dataclasses.is_dataclass(tp):
        return _dataclass_from(tp, value, path, source)
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, list):
            raise DataError(source, path, value, "expected a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(
                from_jsonable(args[0], v, f"{path}[{i}]", source) for i, v in enumerate(value)
            )
        if len(args) != len(value):
            raise DataError(source, path, value, f"expected {len(args)} items")
        return tuple(
            from_jsonable(a, v, f"{path}[{i}]", source)
            for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if origin is dict:
        _key_t, val_t = typing.get_args(tp)
        if not isinstance(value, dict):
            raise DataError(source, path, value, "expected an object")
        return {str(k): from_jsonable(val_t, v, f"{path}.{k}", source) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise DataError(source, path, value, "expected true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(source, path, value, "expected an integer")
        if abs(value) > MAX_SAFE_INT:
            raise DataError(source, path, value, f"integer beyond +-{MAX_SAFE_INT} (2^53 - 1)")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DataError(source, path, value, "expected a number")
        if not math.isfinite(value):
            raise DataError(source, path, value, "expected a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise DataError(source, path, value, "expected a string")
        return value
    raise TypeError(f"plan document: no conversion for {tp!r} at {path}")  # a bug, not input


def _check_plain(value: Any, path: str, source: str) -> None:
    """Free-form JSON (a fingerprint, an engine's result) must still be plain, finite JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        raise DataError(source, path, value, "expected a finite number")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INT:
        raise DataError(source, path, value, f"integer beyond +-{MAX_SAFE_INT} (2^53 - 1)")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise DataError(source, path, k, "object keys must be strings")
            _check_plain(v, f"{path}.{k}", source)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_plain(v, f"{path}[{i}]", source)
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise DataError(source, path, value, "expected a JSON value")


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _dataclass_from(cls: type, value: Any, path: str, source: str) -> Any:
    if not isinstance(value, dict):
        raise DataError(source, path, value, "expected an object")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(value) - set(fields))
    if unknown:
        raise DataError(
            source, f"{path}.{unknown[0]}", value[unknown[0]], "unknown field (typo or newer file?)"
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        if name in value:
            kwargs[name] = from_jsonable(hints[name], value[name], f"{path}.{name}", source)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise DataError(source, f"{path}.{name}", None, "required field is missing")
    try:
        return cls(**kwargs)
    except ValueError as exc:
        raise DataError(source, path, _short(value), str(exc)) from exc


def _short(value: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in list(value.items())[:3])


# -- the document ------------------------------------------------------------------------------


def plan_to_document(plan: Plan) -> dict[str, Any]:
    return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "plan": to_jsonable(plan)}


def plan_from_document(doc: Any, source: str = "<plan>") -> Plan:
    doc = migrate(doc, source)
    extra = sorted(set(doc) - {"format", "schema_version", "plan"})
    if extra:
        raise DataError(source, extra[0], doc[extra[0]], "unknown top-level field")
    return from_jsonable(Plan, doc.get("plan"), "plan", source)


def dumps(plan: Plan) -> str:
    """The file text: indented, keys in field order, UTF-8, newline at the end (diffable)."""
    return json.dumps(plan_to_document(plan), indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def loads(text: str | bytes, source: str = "<plan>") -> Plan:
    """Strict JSON (forgeplanner.jsonio: no NaN, duplicate keys, huge integers or deep
    nesting), then the schema migration and the field-by-field conversion."""
    from forgeplanner import jsonio

    return plan_from_document(jsonio.loads(text, source), source)
