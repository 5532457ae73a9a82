"""Fuzzing the readers with hypothesis, bounded in examples and time: whatever the bytes, each
reader returns a value or raises its one-line error type, never anything else.

Mutations start from real files (the example plan, an evidence record made from it, the
example policy, a price CSV) so they reach deep into the parsers, not only the first byte.
FUZZ_EXAMPLES (the sum of max_examples below) is the number the report quotes.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forgeplanner import jsonio
from forgeplanner.cli import argtypes
from forgeplanner.errors import DataError, ForgePlannerError
from forgeplanner.evidence.record import build_record, dumps, verify_bytes
from forgeplanner.governance.policy import PolicyError, parse_policy
from forgeplanner.plan import document
from forgeplanner.prices_import import parse_amount

ROOT = Path(__file__).resolve().parents[2]
PLAN = (ROOT / "examples" / "70b-home-lab.fplan").read_bytes()
POLICY = (ROOT / "examples" / "policy.toml").read_bytes()
RECORD = dumps(build_record(document.loads(PLAN, "example"), "2026-11-26T14:00:00Z")).encode()

# Warm the caches a first example would otherwise pay for (the deadline is per example).
import pandas  # noqa: E402,F401  (parse_date's date parser)

from catalog import load_catalog  # noqa: E402

CATALOG = load_catalog()

FAST = settings(
    deadline=dt.timedelta(seconds=5),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,  # the same examples on every run: a CI failure reproduces locally
)
EXAMPLES = {
    "plan": 600,
    "json": 400,
    "evidence": 300,
    "policy": 400,
    "csv": 200,
    "amount": 400,
    "argtypes": 600,
}
FUZZ_EXAMPLES = sum(EXAMPLES.values())

_TOKENS = [
    b"NaN", b"1e400", b"-1", b"9" * 40, b"[", b"]", b"{", b"}", b'"', b",", b":", b"\\",
    b"\xef\xbb\xbf", b"\xff", b"null", b"true", b"\n", b'"count": 1, "count"', b"0",
]  # fmt: skip


@st.composite
def mutated(draw, base: bytes):
    """The base file with a few splices: bytes deleted, tokens or random bytes inserted."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["delete", "token", "bytes", "replace-digit"]))
        if kind == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        elif kind == "token":
            data[pos:pos] = draw(st.sampled_from(_TOKENS))
        elif kind == "bytes":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        else:
            digits = [i for i, b in enumerate(data) if 48 <= b <= 57]
            if digits:
                i = draw(st.sampled_from(digits))
                data[i : i + 1] = draw(st.sampled_from([b"9" * 30, b"-", b"e999", b"."]))
    return bytes(data)


@settings(FAST, max_examples=EXAMPLES["plan"])
@given(mutated(PLAN))
def test_plan_reader_gives_a_plan_or_one_data_error(data: bytes) -> None:
    try:
        plan = document.loads(data, "fuzz.fplan")
    except DataError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("fuzz.fplan: ")
        return
    # What loads must write back and load again (the plan round-trips).
    assert document.loads(document.dumps(plan), "again") == plan


@settings(FAST, max_examples=EXAMPLES["json"])
@given(st.binary(max_size=256) | st.text(max_size=256).map(str.encode))
def test_json_reader_on_random_bytes(data: bytes) -> None:
    try:
        value = jsonio.loads(data, "f.json")
    except DataError as exc:
        assert "\n" not in str(exc)
        return
    assert jsonio.depth(value) <= jsonio.MAX_DEPTH
    assert json.loads(json.dumps(value, allow_nan=False)) == value  # plain, finite JSON


@settings(FAST, max_examples=EXAMPLES["evidence"])
@given(mutated(RECORD))
def test_evidence_verify_never_raises(data: bytes) -> None:
    result = verify_bytes(data, source="e.json")
    if data == RECORD:
        assert result.ok
    assert result.ok or result.problems


@settings(FAST, max_examples=EXAMPLES["policy"])
@given(mutated(POLICY))
def test_policy_parser_gives_a_policy_or_one_policy_error(data: bytes) -> None:
    try:
        policy = parse_policy(data, "p.toml")
    except PolicyError as exc:
        assert "\n" not in str(exc).strip() or "not valid TOML" in str(exc)
        return
    for rule in (policy.budget, policy.power):
        if rule is not None:
            limits = [getattr(rule, f) for f in rule.__slots__]
            assert all(v is None or math.isfinite(v) for v in limits)


CSV = (
    b"title,price,currency,date,condition,source\n"
    b'Mac mini M4 Pro 20-core GPU 64GB,"1,899.00",USD,2026-01-10,used,ebay\n'
    b'"Mac Studio M2 Ultra 76-core GPU\n192GB",4999,USD,2026-02-01,refurbished,apple\n'
)


@settings(FAST, max_examples=EXAMPLES["csv"])
@given(mutated(CSV))
def test_price_csv_reader_gives_rows_or_one_error(tmp_path_factory, data: bytes) -> None:
    from forgeplanner.prices_import import read_listings

    path = tmp_path_factory.mktemp("csv") / "p.csv"
    path.write_bytes(data)
    try:
        imp = read_listings(path, today=dt.date(2026, 6, 1), catalog=CATALOG)
    except ForgePlannerError as exc:
        assert str(exc).startswith(str(path))
        return
    assert all(r.price_usd > 0 and math.isfinite(r.price_usd) for r in imp.rows)


@settings(FAST, max_examples=EXAMPLES["amount"])
@given(st.text(alphabet="0123456789.,$€£ -eE'\u00a0abc", max_size=16))
def test_amounts_are_finite_or_refused(text: str) -> None:
    try:
        value, _ = parse_amount(text)
    except ValueError:
        return
    assert math.isfinite(value) and value >= 0
    # A thousands separator groups exactly three digits: "1.2.3,4" is never a number.
    assert not ("." in text and "," in text and text.count(".") > 1 and text.count(",") > 0)


_ARGTYPES = [
    argtypes.tokens,
    argtypes.machine_count,
    argtypes.money,
    argtypes.unit_price,
    argtypes.watts,
    argtypes.tariff,
    argtypes.hours_per_day,
    argtypes.seconds,
    argtypes.iso_date,
    argtypes.fx_pair,
    argtypes.token_list,
]


@settings(FAST, max_examples=EXAMPLES["argtypes"])
@given(
    st.sampled_from(_ARGTYPES),
    st.text(max_size=24)
    | st.sampled_from(["nan", "inf", "-inf", "1e999", "1" * 40, "EUR=inf", "0", "-0", "1_0"]),
)
def test_argument_types_accept_only_finite_values_in_range(parse, text: str) -> None:
    import argparse

    try:
        value = parse(text)
    except argparse.ArgumentTypeError as exc:
        assert "\n" not in str(exc)
        return
    numbers = [value] if isinstance(value, (int, float)) else []
    if isinstance(value, tuple):
        numbers = [v for v in value if isinstance(v, (int, float))]
    assert all(math.isfinite(v) and v >= 0 for v in numbers)


def test_fuzz_budget() -> None:
    """The report quotes this number of generated examples per run."""
    assert FUZZ_EXAMPLES >= 2500
