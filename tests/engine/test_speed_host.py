"""Hosts for speed estimates (forgeplanner.host): catalog figures, derived compute, labels."""

from __future__ import annotations

import pytest

from catalog import load_catalog
from forgeplanner.domain.units import GiB
from forgeplanner.errors import ForgePlannerError, NotFoundError
from forgeplanner.host import (
    chip_fp32,
    host_from_chip,
    host_from_chip_name,
    host_from_config,
    per_core_fp32_table,
)

PER_CORE_FP32_FLOPS = per_core_fp32_table()

CAT = load_catalog()


def test_published_tflops_used_as_is():
    h = host_from_chip_name("M2 Ultra", 76)
    assert h.fp32_flops == pytest.approx(27.2e12)
    assert h.fp32_flops_basis.startswith("catalog:")
    assert h.bandwidth_bytes_per_s == pytest.approx(800e9)
    assert h.chip_tier == "ultra"
    assert h.memory_bytes == 192 * GiB  # default: the largest memory option


def test_unpublished_bin_derives_from_per_core_throughput():
    chip = CAT.find_chip("M1 Max", 24)
    flops, basis = chip_fp32(chip)
    assert flops == pytest.approx(24 * PER_CORE_FP32_FLOPS["M1"])
    assert basis.startswith("derived: 24 GPU cores")


def test_m5_assumes_the_latest_generation_and_says_so():
    chip = CAT.find_chip("M5", None)
    flops, basis = chip_fp32(chip)
    assert flops == pytest.approx(chip.gpu_cores * PER_CORE_FP32_FLOPS["M4"])
    assert "assumes the M4 per-core throughput" in basis


def test_chip_bin_by_cores_picks_the_bandwidth():
    assert host_from_chip_name("M3 Max", 30).bandwidth_bytes_per_s == pytest.approx(300e9)
    assert host_from_chip_name("M3 Max", 40).bandwidth_bytes_per_s == pytest.approx(400e9)


def test_intel_cpu_compute_from_cores_clock_and_isa():
    cfg = CAT.config("mac-mini-2018-i7-32gb")
    h = host_from_config(cfg.id)
    assert not h.is_apple_silicon
    assert h.fp32_flops == pytest.approx(6 * 3.2e9 * 32)  # 6 cores x 3.2 GHz x AVX2 FMA
    assert "FLOPs/cycle" in h.fp32_flops_basis


def test_impossible_memory_is_refused_with_the_valid_sizes():
    with pytest.raises(ForgePlannerError, match=r"sold with 8, 16 GB, not 2048 GB"):
        host_from_chip(CAT.find_chip("M1", 8), 2048)


def test_unknown_chip_lists_valid_names():
    with pytest.raises(NotFoundError, match=r"valid: .*M1"):
        host_from_chip_name("M9 Hyper")


def test_this_machine_bandwidth_unknown_until_benchmarked_then_measured():
    """Real probe of this machine (psutil/platform) and the real user store (isolated home)."""
    import platform

    from forgeplanner.host import host_this_machine
    from forgeplanner.store.db import open_store
    from forgeplanner.store.repos import BenchRunRepo

    before = host_this_machine()
    assert before.memory_bytes > 0
    assert before.bandwidth_bytes_per_s is None
    assert before.bandwidth_basis.startswith("unknown: no stored bandwidth benchmark")
    with open_store() as store, store.session() as s:
        repo = BenchRunRepo(s)
        run_id = repo.start(
            runner="builtin", fingerprint={"hostname": platform.node()}, tool_versions={},
            params={}, hostname=platform.node(),
        )  # fmt: skip
        repo.finish(run_id, status="ok",
                    measured={"memory_bandwidth_gbps": 12.5, "matmul_gflops": 80.0})  # fmt: skip
    after = host_this_machine()
    assert after.bandwidth_bytes_per_s == pytest.approx(12.5e9)
    assert after.bandwidth_basis.startswith(f"measured: builtin run {run_id}")
    if not after.is_apple_silicon:
        assert after.fp32_flops == pytest.approx(80e9)
