"""The .fplan document: round trip, migration from schema 1, and clear errors on bad files."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forgeplanner.domain.plan import Plan
from forgeplanner.errors import DataError
from forgeplanner.plan import document
from forgeplanner.plan.files import read_plan, write_plan
from tests.plan.samples import sample_plan

FIXTURES = Path(__file__).parent / "fixtures"


def test_round_trip_is_lossless() -> None:
    plan = sample_plan()
    text = document.dumps(plan)
    assert document.loads(text) == plan
    doc = json.loads(text)
    assert doc["format"] == "forgeplanner.plan"
    assert doc["schema_version"] == document.SCHEMA_VERSION


@settings(max_examples=40, deadline=None)
@given(name=st.text(min_size=1).filter(str.strip), notes=st.text())
def test_any_text_survives_the_round_trip(name: str, notes: str) -> None:
    plan = sample_plan(name=name)
    plan = Plan(**{**{f: getattr(plan, f) for f in plan.__slots__}, "notes": notes})
    assert document.loads(document.dumps(plan)) == plan


def test_v1_fixture_migrates_to_current() -> None:
    plan = read_plan(FIXTURES / "v1_plan.fplan")
    assert plan.name == "Studio for 70B (schema 1)"
    assert plan.created_at == "2026-11-02T09:30:00Z"
    assert plan.updated_at == "2026-11-03T18:00:00Z"
    studio, minis = plan.build.machines
    assert (studio.config_id, studio.count, studio.memory_gb) == (
        "mac-studio-m2-ultra-76c-192gb",
        1,
        192,
    )
    assert (studio.price.usd, studio.price.basis, studio.price.as_of) == (
        4199.0,
        "observed",
        "2026-10-15",
    )
    assert minis.count == 3
    assert minis.price.usd is None and minis.price.basis == "unknown" and minis.price.reason
    llama, qwen = plan.build.models
    assert (llama.model_id, llama.quant, llama.runtime, llama.context) == (
        "llama-3.3-70b",
        "Q4_K_M",
        "llama.cpp",
        16384,
    )
    assert (qwen.runtime, qwen.context) == ("mlx", 8192)
    assert plan.runs == () and plan.alternatives == ()


def test_migration_is_pure_and_rewrites_at_current_version(tmp_path: Path) -> None:
    raw = json.loads((FIXTURES / "v1_plan.fplan").read_text())
    before = copy.deepcopy(raw)
    migrated = document.migrate(raw, "v1")
    assert raw == before
    assert migrated["schema_version"] == document.SCHEMA_VERSION
    out = tmp_path / "migrated.fplan"
    write_plan(out, read_plan(FIXTURES / "v1_plan.fplan"))
    assert json.loads(out.read_text())["schema_version"] == document.SCHEMA_VERSION
    assert read_plan(out) == read_plan(FIXTURES / "v1_plan.fplan")


def _doc() -> dict:
    return document.plan_to_document(sample_plan())


def test_newer_schema_is_refused() -> None:
    doc = _doc()
    doc["schema_version"] = document.SCHEMA_VERSION + 1
    with pytest.raises(DataError, match="newer ForgePlanner"):
        document.plan_from_document(doc, "future.fplan")


@pytest.mark.parametrize(
    ("mutate", "field", "problem"),
    [
        (
            lambda d: d["plan"]["build"]["machines"][0].update(count="three"),
            "plan.build.machines[0].count",
            "expected an integer",
        ),
        (
            lambda d: d["plan"]["build"]["machines"][0].update(count=0),
            "plan.build.machines[0]",
            "count must be 1..1000",
        ),
        (
            lambda d: d["plan"]["build"]["models"][0].update(quantisation="Q4"),
            "plan.build.models[0].quantisation",
            "unknown field",
        ),
        (lambda d: d["plan"].pop("name"), "plan.name", "required field is missing"),
        (
            lambda d: d["plan"]["build"]["machines"][0]["price"].update(basis="guess"),
            "plan.build.machines[0].price",
            "price basis 'guess' unknown",
        ),
        (lambda d: d.update(schema_version="2"), "schema_version", "must be an integer"),
        (lambda d: d.update(format="something"), "format", "expected 'forgeplanner.plan'"),
    ],
)
def test_bad_documents_name_file_field_and_value(mutate, field: str, problem: str) -> None:
    doc = _doc()
    mutate(doc)
    with pytest.raises(DataError) as info:
        document.plan_from_document(doc, "bad.fplan")
    assert info.value.file == "bad.fplan"
    assert info.value.field == field
    assert problem in str(info.value)


def test_invalid_json_names_the_position(tmp_path: Path) -> None:
    path = tmp_path / "broken.fplan"
    path.write_text('{"schema_version": 2, "plan": {')
    with pytest.raises(DataError, match="not valid JSON") as info:
        read_plan(path)
    assert str(path) in str(info.value) and "line 1" in str(info.value)


def test_non_finite_numbers_are_not_written(tmp_path: Path) -> None:
    from dataclasses import replace

    plan = sample_plan()
    build = replace(
        plan.build, estimates=(replace(plan.build.estimates[0], decode_tps=float("nan")),)
    )
    with pytest.raises(DataError, match="non-finite"):
        write_plan(tmp_path / "nan.fplan", replace(plan, build=build))
    assert not list(tmp_path.iterdir())


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, (*prefix, i))


_DOC = document.plan_to_document(sample_plan())
_PATHS = [p for p in _paths(_DOC) if p]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=6,
)


@settings(max_examples=300, deadline=None)
@given(path=st.sampled_from(_PATHS), value=_JSON)
def test_any_corrupted_field_is_a_clear_error_or_a_valid_plan(path, value) -> None:
    """Replace any one field of a valid document with any JSON value: the loader either
    builds a valid plan or raises DataError naming the file; never another exception."""
    doc = copy.deepcopy(_DOC)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    try:
        plan = document.plan_from_document(doc, "fuzz.fplan")
    except DataError as exc:
        assert str(exc).startswith("fuzz.fplan: field ")
    else:
        assert document.loads(document.dumps(plan)) == plan


def test_nan_and_infinity_are_refused(tmp_path: Path) -> None:
    text = document.dumps(sample_plan()).replace('"decode_tps": 12.5', '"decode_tps": Infinity', 1)
    assert "Infinity" in text
    with pytest.raises(DataError, match=r"line \d+ column \d+.*Infinity is not a JSON number"):
        document.loads(text, "inf.fplan")
