"""A figure with its provenance: value, source and as-of date, or unknown with a reason.

Every number shipped in the catalog is a `Figure`. An unknown figure has `value=None` and a
`reason`; it is shown as unknown, never replaced by a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T", int, float, str)


@dataclass(frozen=True, slots=True)
class Figure(Generic[T]):
    value: T | None
    source: str | None = None
    as_of: str | None = None
    reason: str | None = None  # why it is unknown, or a quality caveat when known
    derived: str | None = None  # formula when the figure is derived from sourced figures

    def __post_init__(self) -> None:
        if self.value is None and not self.reason:
            raise ValueError("an unknown figure needs a reason")
        if self.value is not None and not self.source:
            raise ValueError(f"figure {self.value!r} has no source")

    @property
    def known(self) -> bool:
        return self.value is not None

    @classmethod
    def unknown(cls, reason: str) -> Figure[T]:
        return cls(value=None, reason=reason)

    def display(self, fmt: str = "{}") -> str:
        return "unknown" if self.value is None else fmt.format(self.value)

    def to_dict(self) -> dict[str, object]:
        return {
            "value": self.value,
            "source": self.source,
            "as_of": self.as_of,
            "reason": self.reason,
            "derived": self.derived,
        }
