"""The shipped hardware catalog: completeness, provenance on every figure, stable ids, lookups."""

from __future__ import annotations

import dataclasses
import re

import pytest

from catalog import load_catalog
from forgeplanner.domain.provenance import Figure
from forgeplanner.errors import NotFoundError

APPLE_CONFIG_ID = re.compile(r"^mac-(mini|studio)-m\d(-(pro|max|ultra))?-\d+c-\d+gb$")
INTEL_CONFIG_ID = re.compile(r"^mac-mini-(2012|2014|2018)-i[357](-\d+mhz)?-\d+gb$")

REQUIRED_MACHINES = {
    "mac-mini-2012",
    "mac-mini-2014",
    "mac-mini-2018",
    "mac-mini-m1",
    "mac-mini-m2",
    "mac-mini-m2-pro",
    "mac-mini-m4",
    "mac-mini-m4-pro",
    "mac-studio-m1-max",
    "mac-studio-m1-ultra",
    "mac-studio-m2-max",
    "mac-studio-m2-ultra",
    "mac-studio-m4-max",
    "mac-studio-m3-ultra",
    "mac-mini-m6",
    "mac-mini-m5-pro",
    "mac-studio-m5-max",
    "mac-studio-m5-ultra",
}


@pytest.fixture(scope="module")
def cat():
    return load_catalog()


def _figures(obj) -> list[tuple[str, Figure]]:
    out = []
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, Figure):
            out.append((f.name, v))
    return out


def test_catalog_is_cached_per_process(cat):
    assert load_catalog() is cat


def test_at_least_30_apple_bins_m1_to_m6_with_laptop_bins(cat):
    apple = [c for c in cat.chips.values() if c.vendor == "apple"]
    assert len(apple) >= 30
    assert {c.generation for c in apple} == {"M1", "M2", "M3", "M4", "M5", "M6"}
    assert {"m1-7c", "m3-max-30c", "m3-pro-14c", "m5-max-40c"} <= {c.id for c in apple}
    assert all(c.laptop_only for c in apple if c.id in {"m1-7c", "m3-max-30c", "m4-8c"})
    assert not cat.chip("m5-max-40c").laptop_only  # in the 2026 Mac Studio
    intel = [c for c in cat.chips.values() if c.vendor == "intel"]
    assert {c.year for c in intel} == {2012, 2014, 2018}
    assert all(c.gpu_cores == 0 for c in intel)


def test_required_machines_and_stable_ids(cat):
    assert REQUIRED_MACHINES <= set(cat.machines)
    for cid in (
        "mac-studio-m2-ultra-76c-192gb",
        "mac-mini-m4-pro-20c-64gb",
        "mac-mini-2018-i7-32gb",
        "mac-mini-m1-8c-16gb",
        "mac-studio-m3-ultra-80c-512gb",
        "mac-studio-m4-max-32c-36gb",
        "mac-studio-m1-max-24c-32gb",
    ):
        assert cid in cat.configs, cid
    for cid, cfg in cat.configs.items():
        chip = cat.chips[cfg.chip_id]
        pattern = APPLE_CONFIG_ID if chip.vendor == "apple" else INTEL_CONFIG_ID
        assert pattern.match(cid), cid
        assert cfg.memory_gb in chip.memory_options_gb
        assert cid in cat.machines[cat.machine_of[cid]].config_ids


def test_every_figure_has_source_and_date_or_a_reason(cat):
    holders = [*cat.chips.values(), *cat.configs.values(), *cat.links.values()]
    checked = 0
    for holder in holders:
        for name, fig in _figures(holder):
            checked += 1
            where = f"{holder.id}.{name}"
            if fig.value is None:
                assert fig.reason and len(fig.reason) > 8, where
                continue
            assert fig.source, where
            # An undated source is said to be undated, never given an invented date.
            assert fig.as_of or "undated" in (fig.reason or ""), where
            if fig.as_of:
                assert re.match(r"^\d{4}(-\d\d){0,2}$", fig.as_of), where
    assert checked > 700


def test_unknown_figures_stay_unknown(cat):
    # Unsourced in the reference: they must not have been filled in.
    assert cat.chip("m1-7c").gpu_fp32_tflops.value is None
    assert cat.chip("m3-ultra-80c").gpu_fp32_tflops.value is None  # exo's 54.26 is unreliable
    assert cat.chip("m3-pro-14c").cpu_cores.value is None
    m2max = cat.config("mac-studio-m2-max-38c-64gb").launch_price_usd
    assert m2max.value is None and "bin-38c" in m2max.reason
    # a storage step nobody quoted keeps the whole configuration's price unknown
    m1 = cat.storage_option("mac-mini-m1-8c-8gb-1tb")[1].launch.price
    assert m1.value is None and "ssd-1tb" in m1.reason


def test_derived_figures_name_formula_and_inputs(cat):
    bw = cat.chip("intel-2012-i5").mem_bandwidth_gbps
    assert bw.value == pytest.approx(25.6)
    assert "8 B x 1600 MT/s" in bw.derived and "wernerstrydom" in bw.source
    studio = cat.config("mac-studio-m4-max-32c-36gb")
    assert studio.max_btu_h.value == pytest.approx(145 * 3.412, abs=0.05)
    assert "3.412" in studio.max_btu_h.derived and studio.max_btu_h.source == studio.max_w.source
    # Apple-published BTU/h is not marked derived.
    assert cat.config("mac-mini-m4-10c-16gb").max_btu_h.derived is None


def test_launch_price_is_base_plus_sourced_steps(cat):
    top = cat.config("mac-studio-m3-ultra-80c-512gb").launch_price_usd
    # $3,999 base + $1,500 80-core bin + $4,000 512GB; the reference cross-checks $9,499.
    assert top.value == 9499
    assert top.derived == "base 3999 + bin-80c 1500 + mem-96-512 4000 = 9499 USD"
    assert "worldmag" in top.source and "thedailyscout" in top.source
    base = cat.config("mac-mini-m4-pro-16c-24gb").launch_price_usd
    assert base.value == 1399 and base.derived is None and base.as_of == "2024-10-29"
    # storage adds its step: 8TB over the 1TB base of the M3 Ultra
    _, top8 = cat.storage_option("mac-studio-m3-ultra-80c-512gb-8tb")
    assert top8.launch.price.value == 9499 + 2200 and top8.launch.grade == "B"
    assert cat.config("mac-studio-m2-ultra-76c-192gb").launch_price_usd.value == 6599


def test_withdrawn_options_are_dated(cat):
    assert cat.config("mac-studio-m3-ultra-80c-512gb").withdrawn == "2026-03"
    assert cat.config("mac-studio-m4-max-40c-128gb").withdrawn == "2026-05-06"
    assert cat.config("mac-studio-m3-ultra-60c-96gb").withdrawn is None


def test_find_chip_by_name_and_bin(cat):
    assert cat.find_chip("M3 Max", 30).mem_bandwidth_gbps.value == 300
    assert cat.find_chip("M3 Max", 40).mem_bandwidth_gbps.value == 400
    assert cat.find_chip("m4-max").id == "m4-max-40c"  # None -> top bin
    assert cat.find_chip("M2 Ultra", None).gpu_cores == 76
    # without a GPU-core count, the memory picks the bin that was sold with it
    assert cat.find_chip("M4 Max", None, 36).id == "m4-max-32c"
    assert cat.find_chip("M4 Max", None, 128).id == "m4-max-40c"
    with pytest.raises(NotFoundError, match="valid: 30, 40"):
        cat.find_chip("M3 Max", 35)
    with pytest.raises(NotFoundError, match="M3 Max"):
        cat.find_chip("M9 Turbo")


def test_lookups_raise_not_found_listing_valid_ids(cat):
    with pytest.raises(NotFoundError) as err:
        cat.config("mac-mini-m4-17c-16gb")
    assert len(err.value.valid) == len(cat.configs)
    assert "did you mean mac-mini-m4-10c-16gb" in str(err.value)  # a typo: the nearest ids
    with pytest.raises(NotFoundError) as err:
        cat.config("zzz")
    assert "valid: mac-mini-2012-i5-16gb, mac-mini-2012-i5-4gb" in str(err.value)  # no near id
    with pytest.raises(NotFoundError, match="m1-7c"):
        cat.chip("m9-1c")


def test_links_in_bytes_per_second_and_seconds(cat):
    assert set(cat.links) == {"1gbe", "2.5gbe", "10gbe", "tb3", "tb4", "tb5", "tb5-rdma"}
    assert cat.link("10gbe").nominal_bandwidth_bytes_per_s.value == pytest.approx(1.25e9)
    rdma = cat.link("tb5-rdma")
    assert rdma.measured_bandwidth_bytes_per_s.value == 4745 * 2**20
    assert rdma.latency_s.value == pytest.approx(4.15e-6)
    assert rdma.effective_bandwidth_bytes_per_s == 4745 * 2**20
    assert cat.link("10gbe").effective_bandwidth_bytes_per_s == pytest.approx(1.25e9)
    assert cat.link("2.5gbe").measured_bandwidth_bytes_per_s.value is None


def test_price_observations_and_power_measurements_reference_the_catalog(cat):
    assert len(cat.price_observations) >= 150
    for o in cat.price_observations:
        assert o.date and o.source and o.price_usd > 0
        if o.config_id:
            assert cat.machine_of[o.config_id] == o.machine_id
    m4 = [o for o in cat.observations_for("mac-mini-m4-10c-16gb") if o.condition != "new"]
    assert {o.price_usd for o in m4} >= {509, 485, 525}
    rng = next(o for o in m4 if o.price_max_usd)
    assert rng.point_price_usd == 570
    geerling = [p for p in cat.power_measurements if p.config_id == "mac-studio-m3-ultra-80c-512gb"]
    assert any(p.load_w == (290.4, 290.4) and "Q4_K_M" in p.quant for p in geerling)
    assert any(p.load_w == (None, 200) for p in geerling)  # "< 200 W" is an upper bound
    assert cat.market_notes and all(n.source for n in cat.market_notes)


# ------------------------------------------------------------------ storage and dated prices


def test_every_chip_memory_storage_configuration_is_listed(cat):
    options = [o for c in cat.configs.values() for o in c.storage_options]
    assert len(options) >= 320
    assert len({o.id for o in options}) == len(options)
    priced = [o for o in options if o.launch.price.value is not None]
    assert len(priced) >= 190
    studios = [o for c in cat.configs.values() if c.kind == "mac-studio" for o in c.storage_options]
    assert {o.storage_gb for o in studios} >= {512, 1000, 2000, 4000, 8000, 16000}
    # every storage option of an Apple Silicon configuration states its size except the 2026
    # Mac minis', whose sources give the price but not the storage
    unstated = {
        c.machine for c in cat.configs.values() for o in c.storage_options if o.storage_gb is None
    }
    assert unstated == {"Mac mini (2026) - M6", "Mac mini (2026) - M5 Pro"}
    cfg, opt = cat.storage_option("mac-mini-2014-i5-2800mhz-8gb-1tb-fusion")
    assert cfg.id == "mac-mini-2014-i5-2800mhz-8gb" and opt.storage_kind == "Fusion"
    with pytest.raises(NotFoundError):
        cat.storage_option("mac-mini-m4-10c-16gb-3tb")


def test_later_price_lists_withdrawals_and_discontinuations_are_dated(cat):
    _, opt = cat.storage_option("mac-mini-m4-10c-16gb-256gb")
    got = [(h.date, h.status, h.price.value, h.basis) for h in opt.history]
    assert got == [
        ("2024-10-29", "sold", 599, "list"),
        ("2026-05-02", "not-offered", None, "unknown"),
        ("2026-06-25", "sold", 899, "list"),
        ("2026-08-25", "not-offered", None, "unknown"),
    ]
    _, opt = cat.storage_option("mac-mini-m4-10c-24gb-256gb")
    june = opt.history[2]
    assert (june.basis, june.price.value) == ("scaled", pytest.approx(799 * 1.5))
    assert "estimate" in june.price.reason and "x 1.5" in june.price.derived
    # the 2020 storage refresh of the Intel mini: 128GB gone, 256GB standard at $799
    _, i3 = cat.storage_option("mac-mini-2018-i3-8gb-128gb")
    assert [(h.date, h.status) for h in i3.history] == [
        ("2018-10-30", "sold"),
        ("2020-03-18", "not-offered"),
    ]
    _, i3_256 = cat.storage_option("mac-mini-2018-i3-8gb-256gb")
    assert [(h.date, h.price.value) for h in i3_256.history[:2]] == [
        ("2018-10-30", None),
        ("2020-03-18", 799),
    ]
    assert cat.config("mac-studio-m2-ultra-76c-192gb").discontinued == "2025-03-05"
    m3u = cat.config("mac-studio-m3-ultra-60c-256gb").storage_options[0]
    assert [(h.date, h.price.value) for h in m3u.history[:2]] == [
        ("2025-03-05", 5599),
        ("2026-03-08", 5999),  # 96GB -> 256GB went from $1,600 to $2,000
    ]


def test_the_2026_lineup_replaced_the_2024_25_desktops(cat):
    for mid in ("mac-mini-m4", "mac-mini-m4-pro", "mac-studio-m4-max", "mac-studio-m3-ultra"):
        for cid in cat.machine(mid).config_ids:
            assert cat.config(cid).discontinued == "2026-08-25"
    new = cat.config("mac-studio-m5-max-40c-64gb")
    assert new.release_date == "2026-08-25" and new.launch_price_usd.value == 3499
    assert new.max_w.value is None and "not published" in new.max_w.reason
    assert cat.config("mac-studio-m5-ultra-64c-96gb").launch_price_usd.value == 5499


def test_every_memory_size_a_chip_was_sold_with_is_accepted(cat):
    assert cat.find_chip("M5 Max", 40).memory_options_gb == (48, 64, 128)
    assert cat.find_chip("M5 Pro", 16).memory_options_gb == (24, 48, 64)
    assert cat.find_chip("M5 Pro", 20).memory_options_gb == (24, 48, 64)
    assert 64 in cat.find_chip("M3 Max", 40).memory_options_gb
    assert cat.find_chip("M3", 8).memory_options_gb == (8, 16, 24)
    assert 512 in cat.find_chip("M5 Ultra", 80).memory_options_gb
    for cfg in cat.configs.values():
        assert cfg.memory_gb in cat.chips[cfg.chip_id].memory_options_gb, cfg.id


def test_m6_bandwidth_depends_on_the_memory_fitted(cat):
    m6 = cat.chip("m6-12c")
    assert m6.bandwidth_figure(16).value == 153
    assert m6.bandwidth_figure(24).value == 170 and m6.bandwidth_figure(32).value == 170
    assert m6.bandwidth_figure().value == 153


def test_intel_minis_memory_from_the_specs_and_derived_bandwidth(cat):
    i7 = cat.chip("intel-2018-i7")
    assert (i7.memory.type, i7.memory.mts, i7.memory.channels) == ("DDR4", 2666, 2)
    assert "SO-DIMM" in i7.memory.form
    bw = i7.mem_bandwidth_gbps
    assert bw.value == pytest.approx(2 * 8 * 2666 / 1000)
    assert bw.derived.startswith("peak = channels x 8 B x MT/s = 2 x 8 B x 2666 MT/s")
    mini14 = cat.chip("intel-2014-i5-2600mhz")
    assert (mini14.memory.type, mini14.memory.mts) == ("LPDDR3", 1600)
    assert mini14.memory.form.startswith("soldered")
    assert mini14.mem_bandwidth_gbps.value == pytest.approx(25.6)
    assert "Haswell-U" in mini14.mem_bandwidth_gbps.reason  # the channel count's caveat
    assert all(
        c.mem_bandwidth_gbps.value is not None and c.memory is not None
        for c in cat.chips.values()
        if c.vendor == "intel"
    )
