"""Errors the user sees as one clear line. Never a traceback for bad input."""

from __future__ import annotations


class ForgePlannerError(Exception):
    """Base for every error that is the user's input, not a bug."""


class DataError(ForgePlannerError):
    """Bad data in a file: names the file, the field and the offending value."""

    def __init__(self, file: str, field: str, value: object, problem: str) -> None:
        self.file = file
        self.field = field
        self.value = value
        self.problem = problem
        shown = repr(value)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        super().__init__(f"{file}: field '{field}' = {shown}: {problem}")


class NotFoundError(ForgePlannerError):
    """An unknown id; the message suggests the nearest valid ids (a typo is the usual cause),
    else lists what is valid."""

    def __init__(self, kind: str, value: str, valid: list[str] | tuple[str, ...]) -> None:
        self.kind = kind
        self.value = value
        self.valid = list(valid)
        self.suggestions = suggest(value, self.valid)
        shown_value = value if len(value) <= 80 else value[:77] + "..."
        if self.suggestions:
            hint = "did you mean " + " or ".join(self.suggestions) + "?"
        else:
            hint = "valid: " + ", ".join(self.valid[:12]) + (" ..." if len(self.valid) > 12 else "")
        super().__init__(f"unknown {kind} '{shown_value}'; {hint}")


def suggest(value: str, valid: list[str], n: int = 3) -> list[str]:
    """The valid ids nearest to `value` (difflib's ratio, case-insensitive), best first."""
    import difflib

    if not value or len(value) > 200:
        return []
    lowered = {v.lower(): v for v in valid}
    close = difflib.get_close_matches(value.lower(), list(lowered), n=n, cutoff=0.8)
    return [lowered[c] for c in close]
