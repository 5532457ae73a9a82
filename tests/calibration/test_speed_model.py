"""The fitted speed model: the constants in the repository are a fresh fit of the published
runs, the fit and the estimator are one formula, cross-validation never predicts a run with a
fit that saw it, and every estimate carries its likely range and the published runs behind it."""

from __future__ import annotations

import dataclasses

import pytest

from catalog import load_catalog
from forgeplanner.calibration import fit as fit_mod
from forgeplanner.calibration import validate
from forgeplanner.calibration.observations import build, read_rows, source_key
from forgeplanner.calibration.published import Target, for_estimate, nearest
from forgeplanner.calibration.speed_report import run as speed_report
from forgeplanner.domain.estimates import RunOptions
from forgeplanner.engine import speed_constants
from forgeplanner.engine.estimate import estimate, estimate_to_dict, speed_estimate
from forgeplanner.host import host_from_chip
from models_db import load_models

CAT = load_catalog()
MODELS = load_models()


@pytest.fixture(scope="module")
def mapping():
    return build(read_rows())


def test_committed_constants_are_a_fresh_fit_of_the_dataset():
    assert speed_report(check=True) == 0


def test_every_row_is_used_or_left_out_with_a_reason(mapping):
    rows = read_rows()
    used = {o.row_id for o in mapping.observations}
    unused = dict(mapping.unused)
    assert len(used) + len(unused) == len(rows)
    assert all(reason.strip() for reason in unused.values())
    assert len(mapping.observations) > 1000
    kinds = {(o.runtime, o.kind) for o in mapping.observations}
    for rt in ("llama.cpp", "mlx", "ollama"):
        assert (rt, "decode") in kinds and (rt, "prefill") in kinds


def test_source_groups_are_pages_or_repositories():
    assert source_key("https://github.com/ggml-org/llama.cpp/pull/16634#issuecomment-1") == (
        "ggml-org/llama.cpp#16634"
    )
    assert source_key("https://github.com/a/b/blob/0123/README.md") == "a/b"
    assert source_key("https://example.com/post/x/") == "example.com/post/x"


def _obs_estimate(o) -> float:
    """The same run through the public estimator (what `forgeplanner estimate` computes)."""
    r = next(x for x in read_rows() if x["row_id"] == o.row_id)
    cores = int(r["gpu_cores"]) if r.get("gpu_cores") else None
    chip = CAT.find_chip(r["chip"], cores)
    host = host_from_chip(chip, None if chip.memory_options_gb else 64)
    gen = int(float(r["gen_tokens"])) if r.get("gen_tokens") else 128
    fa = r.get("flash_attention") or ""
    opts = RunOptions(
        runtime=o.runtime,
        context=max(512, o.depth + max(o.prompt_tokens, gen) + 256),
        prompt_tokens=max(1, o.prompt_tokens or 512),
        flash_attention=None if fa == "" else bool(int(float(fa))),
    )
    k = speed_constants.CONSTANTS
    if o.kind == "decode":
        # the fit uses the mean depth while generating
        opts = dataclasses.replace(opts, depth=int(o.depth + gen / 2))
        s = speed_estimate(MODELS.get(o.model_id), o.quant, host, opts, k)
        return s.decode_tps
    opts = dataclasses.replace(opts, depth=o.depth, prompt_tokens=o.prompt_tokens)
    return speed_estimate(MODELS.get(o.model_id), o.quant, host, opts, k).prefill_tps


def test_the_fit_and_the_estimator_are_one_formula(mapping):
    runtimes = speed_constants.RUNTIMES
    picked = {}
    for o in mapping.observations:
        key = (o.runtime, o.kind)
        if key in picked or o.fanless or o.era != _newest(o.runtime):
            continue
        if o.extra.get("bin", "").startswith("bin stated"):
            picked[key] = o
    assert len(picked) >= 5
    for o in picked.values():
        assert _obs_estimate(o) == pytest.approx(fit_mod.predict_tps(runtimes, o), rel=1e-9)


def _newest(runtime: str) -> str | None:
    from forgeplanner.engine.runtimes import profile

    eras = profile(runtime).eras
    return eras[-1].key if eras else None


def test_cross_validation_never_predicts_a_run_with_a_fit_that_saw_it(mapping, monkeypatch):
    seen: list[set[str]] = []
    real = validate.fit_all

    def spy(train, **kw):
        seen.append({o.row_id for o in train})
        return real(train, **kw)

    monkeypatch.setattr(validate, "fit_all", spy)
    obs = [o for o in mapping.observations if o.runtime == "lmstudio-mlx"][:40] + [
        o for o in mapping.observations if o.runtime == "mlx"
    ][:200]
    held = validate.cross_validate(obs, lambda o: o.source)
    assert held
    groups = sorted({o.source for o in obs})
    assert len(seen) == len(groups)
    for h in held:
        train = seen[groups.index(h.obs.source)]
        assert h.obs.row_id not in train
        assert not any(x.source == h.obs.source for x in obs if x.row_id in train)


def test_estimates_carry_a_likely_range_and_its_basis():
    host = host_from_chip(CAT.find_chip("M4 Max", 40))
    e = estimate(MODELS.get("llama-3.1-8b"), "Q4_K_M", host, RunOptions(context=8192))
    d = estimate_to_dict(e)
    assert d["decode_tps_low"] < d["decode_tps"] < d["decode_tps_high"]
    assert d["prefill_tps_low"] < d["prefill_tps"] < d["prefill_tps_high"]
    assert "held-out published runs" in d["speed_range_basis"]


def test_runtime_version_selects_the_era_constants():
    host = host_from_chip(CAT.find_chip("M2 Ultra", 76))
    m = MODELS.get("llama-2-7b")
    old = estimate(m, "Q4_0", host, RunOptions(runtime_version="b1550"))
    new = estimate(m, "Q4_0", host, RunOptions())
    assert "llama.cpp@2023" in old.speed.basis and "era 2023" in old.speed.basis
    assert "era 2026" in new.speed.basis
    assert old.speed.decode_tps != new.speed.decode_tps


def test_fanless_macs_are_slower_under_sustained_load():
    chip = CAT.find_chip("M5", 10)
    fan = host_from_chip(chip, 32)
    air = dataclasses.replace(fan, passive_cooling=True)
    m = MODELS.get("qwen3-8b")
    a = speed_estimate(m, "MLX-4bit", air, RunOptions(runtime="mlx"))
    f = speed_estimate(m, "MLX-4bit", fan, RunOptions(runtime="mlx"))
    assert a.decode_tps < f.decode_tps and a.prefill_tps < f.prefill_tps
    assert "fanless" in a.basis


def test_nearest_published_runs_name_their_source():
    runs = for_estimate("M4 Max", 40, "llama.cpp", "llama-2-7b", 6.7, False, quant="Q4_0")
    assert len(runs["decode"]) == 5 and len(runs["prefill"]) == 5
    top = runs["decode"][0]
    assert top["chip"].startswith("M4 Max") and top["model"] == "llama-2-7b"
    assert top["quant"] == "Q4_0" and top["tokens_per_s"] > 0
    assert top["source"].startswith("http")
    # a far-away target still gets the closest runs of the right kind
    far = nearest(Target("M1", 8, "mlx", "prefill", "unknown-model", 400.0, True), 3)
    assert len(far) == 3
    assert for_estimate(None, None, "llama.cpp", "x", 1.0, False) == {"decode": [], "prefill": []}
