"""RecommendState without Qt: rows with machine names, the option detail at the stated
context, what "Add to plan" carries, and plain words instead of command-line flags."""

from __future__ import annotations

import pytest

import catalog
import models_db
from forgeplanner.domain.estimates import RunOptions
from forgeplanner.engine.estimate import estimate
from forgeplanner.host import host_from_config
from forgeplanner.services.recommend import build_recommendation
from forgeplanner.viewstate.recommend import (
    RecommendInputs,
    option_detail,
    option_rows,
    plain_reason,
    plan_addition,
    quant_min_choices,
    rejected_rows,
)
from forgeplanner.viewstate.vocabulary import machine_name_of


@pytest.fixture(scope="module")
def searched():
    inputs = RecommendInputs(models=("llama-3.3-70b",), context=16384, min_decode_tps=5.0)
    rec = build_recommendation(inputs.request(include_user_observations=False))
    return inputs, rec


def test_rows_name_machines_not_ids(searched):
    _inputs, rec = searched
    cat = catalog.load_catalog()
    rows = option_rows(rec, cat)
    assert len(rows) == len(rec.options) > 0
    for row, o in zip(rows, rec.options, strict=True):
        cid, _n = o.machines[0]
        assert row["config_id"] == cid and row["machines"].endswith(machine_name_of(cat, cid))
        assert cid not in row["machines"]
    rejected = rejected_rows(rec, cat)
    assert all(r["config_id"] not in r["machine"] for r in rejected)
    assert not any("--" in r["reason"] for r in rejected)


def test_detail_is_sized_at_the_stated_context(searched):
    inputs, rec = searched
    cat = catalog.load_catalog()
    single = next(o for o in rec.options if o.machines[0][1] == 1)
    d = option_detail(single, inputs, cat, models_db.load_models())
    (m,) = d.models
    host = host_from_config(single.machines[0][0])
    spec = models_db.load_models().get("llama-3.3-70b")
    want = estimate(spec, m.quant, host,
                    RunOptions(context=16384, depth=16384, prompt_tokens=16384,
                               runtime=single.runtime))  # fmt: skip
    assert m.decode_at_context == pytest.approx(want.speed.decode_tps)
    assert m.decode_empty > m.decode_at_context
    assert m.sysctl == want.fit.sysctl_command
    if m.sysctl:
        assert m.macos_left_gib == pytest.approx(want.fit.memory_left_for_macos_bytes / 2**30)
        assert "leaves macOS" in d.html()
    assert m.below_target == (m.decode_at_context < 5.0)
    assert "with the context filled" in d.html()


def test_add_to_plan_carries_model_quant_runtime_and_context(searched):
    inputs, rec = searched
    o = rec.options[0]
    add = plan_addition(o, inputs)
    assert add.machines == o.machines
    assert add.models == (("llama-3.3-70b", o.quant, o.runtime, 16384),)
    assert add.condition in ("new", "used")
    assert "16K" in add.describe(catalog.load_catalog())


def test_no_flags_in_the_words():
    text = "clusters not searched (pass --allow-clusters); below --min-decode-tps 8"
    assert plain_reason(text) == "clusters not searched (tick Clusters); below the decode target 8"


def test_quant_floor_choices_come_from_the_engine():
    choices = quant_min_choices()
    assert choices[0] == ("any", None)
    assert ("Q4_K_M (4.5 bpw)", "Q4_K_M") in choices
