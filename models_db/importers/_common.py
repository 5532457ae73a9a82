"""Helpers shared by the importers: slugs, typed field access with DataErrors."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from forgeplanner.errors import DataError

# Refuse sizes no real model has, so a hostile file cannot make later arithmetic explode.
MAX_DIM = 1 << 24  # hidden/ffn/vocab/context width ceiling (16.7M); real maxima are ~10M ctx
MAX_LAYERS = 4096
MAX_CONTEXT = 1 << 31


def slugify(text: str) -> str:
    slug = re.sub(r"[^a-z0-9._-]+", "-", text.strip().lower()).strip("-._")
    return slug or "imported-model"


class Fields:
    """Typed access to one mapping of an input file; each failure is one DataError."""

    def __init__(self, file: str, data: Mapping[str, Any], prefix: str = "") -> None:
        self.file, self.data, self.prefix = file, data, prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def fail(self, key: str, value: object, problem: str) -> DataError:
        return DataError(self.file, self.name(key), value, problem)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def int_(
        self,
        key: str,
        default: int | None = None,
        *,
        minimum: int = 1,
        maximum: int = MAX_DIM,
        required: bool = True,
    ) -> int:
        value = self.data.get(key)
        if value is None:
            if default is not None:
                return default
            if not required:
                return 0
            raise self.fail(key, value, "is required")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, value, "must be an integer")
        if not minimum <= value <= maximum:
            raise self.fail(key, value, f"out of range [{minimum}, {maximum}]")
        return value

    def opt_int(self, key: str, *, minimum: int = 1, maximum: int = MAX_DIM) -> int | None:
        if self.data.get(key) is None:
            return None
        return self.int_(key, minimum=minimum, maximum=maximum)

    def bool_(self, key: str, default: bool) -> bool:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, value, "must be true or false")
        return value

    def str_(self, key: str, default: str = "") -> str:
        value = self.data.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.fail(key, value, "must be a string")
        return value
