"""The llama.cpp CPU-backend constants: one set per CPU kind, fitted from the shipped runs
(forgeplanner/calibration/data/cpu_runs.csv, real llama-bench on an AVX-512 and an AVX2 host),
and the rule that picks a set for a host. Nothing here measures: the measuring is
`python -m forgeplanner.calibration.cpu_backend measure`, checked end to end by
tests/bench/test_llamacpp_real.py on whatever CPU runs the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from forgeplanner.calibration.cpu_backend import (
    cpu_kind,
    cross_kind_errors,
    render_cpu_doc,
    run_fits,
)
from forgeplanner.domain.estimates import RunOptions
from forgeplanner.engine.estimate import estimate
from forgeplanner.engine.speed import cpu_backend_for
from forgeplanner.engine.speed_constants_cpu import CPU_BACKENDS
from forgeplanner.host import cpu_isa_from_flags, host_from_config
from models_db import load_models

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def fits():
    return run_fits()


def test_shipped_constants_are_the_fit_of_the_shipped_runs(fits) -> None:
    """speed_constants_cpu.py is generated: each kind's constants and errors are what the fit
    of the CSV gives today, so nobody can hand-tune them."""
    assert set(fits) == set(CPU_BACKENDS) == {"avx512", "avx2"}
    for kind, f in fits.items():
        c = CPU_BACKENDS[kind]
        assert c.kind == kind
        assert c.a_bw == pytest.approx(f.coefs["a_bw"], rel=1e-9)
        for q, name in (("float", "d_float"), ("q8", "d_q8"), ("legacy4", "d_legacy4")):
            assert c.dequant[q] == pytest.approx(f.coefs[name], rel=1e-9, abs=1e-12)
        assert c.tau_layer_s == pytest.approx(f.coefs["tau_layer"], rel=1e-9, abs=1e-15)
        assert c.tau_sync_s == pytest.approx(f.coefs["tau_sync"], rel=1e-9, abs=1e-15)
        assert c.errors["leave one shape out: decode MAPE %"] == pytest.approx(
            f.mape(f.held_out.values()), abs=0.01
        )
        # every configuration of the kind is in its fit or its acceptance check
        assert len(f.train) >= 25 and len(f.acceptance) >= 3


def test_each_kind_is_fitted_on_its_own_host_only(fits) -> None:
    for kind, f in fits.items():
        assert {cpu_kind(r["machine"]) for r in f.rows} == {kind}
        assert len({r["fingerprint_key"] for r in f.rows}) == 1


def test_the_cpu_backend_page_is_regenerated_from_the_same_fit(fits) -> None:
    doc = (ROOT / "docs" / "cpu-backend.md").read_text(encoding="utf-8")
    assert doc == render_cpu_doc(fits)


def test_cross_kind_errors_are_reported_and_larger_than_a_kinds_own(fits) -> None:
    """The honest number for a never-measured CPU kind: the other kind's constants on its
    runs. It is the reason the constants are chosen per kind."""
    cross = cross_kind_errors(fits)
    assert set(cross) == {("avx512", "avx2"), ("avx2", "avx512")}
    for (a, b), errs in cross.items():
        own = fits[b].mape(fits[b].held_out.values())
        assert fits[a].mape(errs) > own
        assert CPU_BACKENDS[a].errors[
            f"on the {b} host's runs (another CPU kind): decode MAPE %"
        ] == pytest.approx(fits[a].mape(errs), abs=0.01)


@pytest.mark.parametrize(
    ("machine", "kind"),
    [
        ("Intel(R) Xeon(R) Processor (family 6 model 167, avx2/avx512f/avx512_vnni/amx_int8), "
         "2 cores / 2 threads, 24 GiB, Linux x86_64", "avx512"),
        ("AMD EPYC (family 25 model 1, avx2), 2 cores / 2 threads, 24 GiB, Linux x86_64",
         "avx2"),
        ("Some CPU (family 6 model 58, ), 4 cores / 8 threads, 16 GiB, Linux x86_64", "other"),
    ],
)  # fmt: skip
def test_cpu_kind_of_a_machine_summary(machine: str, kind: str) -> None:
    assert cpu_kind(machine) == kind


def test_cpu_isa_from_linux_and_macos_flags() -> None:
    assert cpu_isa_from_flags({"sse4_2", "avx", "avx2", "avx512f", "amx_int8"}) == "avx512"
    assert cpu_isa_from_flags({"sse4_2", "avx", "avx2", "fma"}) == "avx2"
    # macOS machdep.cpu.features of an Ivy Bridge Mac mini, lowered
    assert cpu_isa_from_flags({"sse4.2", "avx1.0", "popcnt"}) == "avx"
    assert cpu_isa_from_flags({"fp", "asimd"}) is None  # arm64: no x86 vector extensions


def test_a_host_takes_its_own_kind_else_the_avx2_constants_with_the_reason() -> None:
    c, why = cpu_backend_for(CPU_BACKENDS, "avx512")
    assert c.kind == "avx512" and why == "this CPU's kind (avx512)"
    c, why = cpu_backend_for(CPU_BACKENDS, "avx2")
    assert c.kind == "avx2" and why == "this CPU's kind (avx2)"
    c, why = cpu_backend_for(CPU_BACKENDS, "avx")
    assert c.kind == "avx2" and "no runs of this CPU's kind (avx)" in why
    c, why = cpu_backend_for(CPU_BACKENDS, None)
    assert c.kind == "avx2" and "not known here" in why


def test_intel_mac_minis_are_estimated_with_the_constants_of_their_kind_and_say_whose() -> None:
    model = load_models().get("llama-3.2-3b")
    h2018 = host_from_config("mac-mini-2018-i7-32gb")
    h2012 = host_from_config("mac-mini-2012-i7-2300mhz-16gb")
    assert (h2018.cpu_isa, h2012.cpu_isa) == ("avx2", "avx")
    e18 = estimate(model, "Q4_K_M", h2018, RunOptions(context=4096))
    e12 = estimate(model, "Q4_K_M", h2012, RunOptions(context=4096))
    assert e18.speed is not None and e12.speed is not None
    measured_on = CPU_BACKENDS["avx2"].measured_on
    assert f"measured on {measured_on}" in e18.speed.basis
    assert "(this CPU's kind (avx2))" in e18.speed.basis
    assert "no runs of this CPU's kind (avx); the avx2 constants" in e12.speed.basis
