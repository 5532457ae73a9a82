"""argparse types shared by every command: numbers are checked where they enter.

`float("nan")`, `float("inf")` and `int("1" * 30)` all parse, and a NaN compares False with
everything, so `--budget-usd nan` used to switch the budget check off. Every numeric flag
takes one of these types instead of bare `int`/`float`; each refuses with one line naming the
value and the range (argparse adds the flag's name).

The bounds are what a small lab can mean, not what the engine could compute: a context beyond
MAX_TOKENS (16.8 M tokens; the longest published context today is 10 M) or 10^30 machines is a
typo or an attack, and letting it through crashed exports and exhausted memory later.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import re
from collections.abc import Callable

MAX_TOKENS = 1 << 24  # context, depth, prompt tokens
MAX_MACHINES = 1000  # machines of one configuration in a plan or a shelf
MAX_CLUSTER_NODES = 64  # nodes of one inference cluster
MAX_MONEY = 1e9  # USD or any currency: a budget, a unit price
MAX_WATTS = 1e7
MAX_TARIFF = 1e3  # per kWh
MAX_MIB = 1 << 20  # 1 TiB in MiB: a benchmark's working set
MAX_THREADS = 1024
MAX_REPETITIONS = 1000
MAX_SECONDS = 7 * 24 * 3600.0


def _err(text: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(text)


def _shown(text: str) -> str:
    """The value as typed, escaped (a newline or control character stays on one line)."""
    text = text.encode("unicode_escape").decode("ascii") if not text.isprintable() else text
    return text if len(text) <= 40 else text[:37] + "..."


def bounded_int(lo: int, hi: int, what: str = "") -> Callable[[str], int]:
    """An integer lo..hi (decimal digits only)."""

    def parse(text: str) -> int:
        t = text.strip().replace("_", "")
        if not re.fullmatch(r"[+-]?\d+", t):
            raise _err(f"'{_shown(text)}' is not an integer {lo}..{hi:,}{what}")
        if len(t.lstrip("+-")) > 19:  # int() of thousands of digits is itself slow
            raise _err(f"'{_shown(text)}' is out of range: expected {lo}..{hi:,}{what}")
        value = int(t)
        if not lo <= value <= hi:
            raise _err(f"{value:,} is out of range: expected {lo}..{hi:,}{what}")
        return value

    parse.__name__ = "integer"
    return parse


def finite_float(
    lo: float = 0.0, hi: float = math.inf, *, lo_open: bool = False, what: str = ""
) -> Callable[[str], float]:
    """A finite number in [lo, hi] ((lo, hi] with lo_open); NaN and infinity are refused."""

    def parse(text: str) -> float:
        try:
            value = float(text.strip())
        except ValueError:
            raise _err(f"'{_shown(text)}' is not a number{what}") from None
        if not math.isfinite(value):
            raise _err(f"'{_shown(text)}' is not a finite number{what}")
        if value < lo or (lo_open and value == lo) or value > hi:
            left = "(" if lo_open else "["
            raise _err(f"{value:g} is out of range {left}{lo:g}, {hi:g}]{what}")
        return value

    parse.__name__ = "number"
    return parse


# The flags' types, one per kind of quantity.
tokens = bounded_int(1, MAX_TOKENS, " tokens")
depth_tokens = bounded_int(0, MAX_TOKENS, " tokens")
machine_count = bounded_int(1, MAX_MACHINES, " machines")
gpu_cores = bounded_int(1, 256, " GPU cores")
memory_gb = bounded_int(1, 1 << 16, " GB")
wired_limit_mb = bounded_int(0, 1 << 24, " MB")
threads = bounded_int(1, MAX_THREADS, " threads")
repetitions = bounded_int(1, MAX_REPETITIONS, " repetitions")
mebibytes = bounded_int(1, MAX_MIB, " MiB")
positive_count = bounded_int(1, 1 << 31)
record_id = bounded_int(1, (1 << 63) - 1)
money = finite_float(0.0, MAX_MONEY, what=" (USD)")
unit_price = finite_float(0.0, MAX_MONEY, lo_open=True, what=" (USD)")
watts = finite_float(0.0, MAX_WATTS, what=" W")
tariff = finite_float(0.0, MAX_TARIFF, what=" per kWh")
hours_per_day = finite_float(0.0, 24.0, what=" hours per day")
tokens_per_s = finite_float(0.0, 1e7, what=" tokens/s")
seconds = finite_float(0.0, MAX_SECONDS, lo_open=True, what=" seconds")


def token_list(text: str) -> tuple[int, ...]:
    """'512,1024' -> (512, 1024): llama-bench's comma-separated token counts, each 0..MAX."""
    parse = bounded_int(0, MAX_TOKENS, " tokens")
    parts = [p for p in text.split(",") if p.strip()]
    if not parts or len(parts) > 64:
        raise _err(f"'{_shown(text)}' is not a comma-separated list of 1-64 token counts")
    return tuple(parse(p) for p in parts)


def iso_date(text: str) -> str:
    """YYYY-MM-DD, a real calendar date from 2000 to next year."""
    t = text.strip()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", t):
            raise ValueError
        day = _dt.date.fromisoformat(t)
    except ValueError:
        raise _err(f"'{_shown(text)}' is not a date YYYY-MM-DD") from None
    if not 2000 <= day.year <= _dt.date.today().year + 1:
        raise _err(f"{t} is outside 2000..{_dt.date.today().year + 1}")
    return day.isoformat()


def currency_code(text: str) -> str:
    t = text.strip().upper()
    if not re.fullmatch(r"[A-Z]{3}", t):
        raise _err(f"'{_shown(text)}' is not a 3-letter currency code (ISO 4217, e.g. EUR)")
    return t


def fx_pair(text: str) -> tuple[str, float]:
    """'EUR=1.08' -> ('EUR', 1.08): USD per unit of the currency, finite and > 0."""
    code, sep, rate = text.partition("=")
    if not sep:
        raise _err(f"'{_shown(text)}': expected CODE=USD_PER_UNIT, e.g. EUR=1.08")
    parsed = currency_code(code)
    value = finite_float(0.0, 1e6, lo_open=True, what=f" USD per {parsed}")(rate)
    return parsed, value
