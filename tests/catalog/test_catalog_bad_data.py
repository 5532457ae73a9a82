"""Malformed catalog files: one clear DataError naming file, field and value, never a traceback
from deep inside the loader. Each case corrupts a temporary copy of the shipped data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catalog import DATA_DIR, load_catalog
from forgeplanner.errors import DataError


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "data"
    shutil.copytree(DATA_DIR, dst)
    return dst


def _corrupt(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture text not found: {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


CASES = [
    # (file, old text, new text, field fragment, value fragment)
    (
        "chips.toml",
        "mem_bandwidth_gbps = { value = 68,",
        'mem_bandwidth_gbps = { value = "68",',
        "chip[m1-7c].mem_bandwidth_gbps.value",
        "'68'",
    ),
    (
        "chips.toml",
        "mem_bandwidth_gbps = { value = 68,",
        "mem_bandwidth_gbps = { value = 68000,",
        "chip[m1-7c].mem_bandwidth_gbps.value",
        "68000",
    ),
    (
        "chips.toml",
        'neural_engine_tops = { value = 11, src = ["fandom-ne"] }',
        "neural_engine_tops = { value = 11 }",
        "chip[m1-7c].neural_engine_tops.src",
        "None",
    ),
    (
        "chips.toml",
        'src = ["l4167", "fandom-ne", "kw-history", "hfjs-hw"]',
        'src = ["l4168", "fandom-ne", "kw-history", "hfjs-hw"]',
        "chip[m1-7c].src",
        "l4168",
    ),
    (
        "chips.toml",
        'cpu_p_cores = { value = 4, src = ["kw-history"] }',
        'cpu_p_cores = { value = 5, src = ["kw-history"] }',
        "chip[m1-7c].cpu_cores",
        "8",
    ),
    ("chips.toml", 'id = "m1-8c"', 'id = "m1-9c"', "chip[m1-9c].id", "m1-9c"),
    (
        "chips.toml",
        'gpu_fp32_tflops = { unknown = "7-core-GPU FP32 TFLOPS unsourced" }',
        'gpu_fp32_tflops = { unknown = "" }',
        "chip[m1-7c].gpu_fp32_tflops.unknown",
        "''",
    ),
    (
        "chips.toml",
        'ships_in = "MacBook Air (M1) only; not Mac mini"',
        'ships_in = "MacBook Air (M1) only; not Mac mini"\nmem_bandwith = 1',
        "chip[m1-7c].mem_bandwith",
        "1",
    ),
    (
        "machines.toml",
        '{ chip = "m4-10c", memory_gb = 16,',
        '{ chip = "m4-11c", memory_gb = 16,',
        "machine[mac-mini-m4].configs[0].chip",
        "m4-11c",
    ),
    (
        "machines.toml",
        '{ chip = "m4-10c", memory_gb = 16,',
        '{ chip = "m4-10c", memory_gb = 48,',
        "machine[mac-mini-m4].configs[0].memory_gb",
        "48",
    ),
    (
        "machines.toml",
        "max_btu_h = { value = 222,",
        "max_btu_h = { value = 2220,",
        "machine[mac-mini-m4].max_btu_h",
        "2220",
    ),
    (
        "machines.toml",
        'price = ["base", "mem-16-24"]',
        'price = ["base", "mem-16-23"]',
        "machine[mac-mini-m4].configs[1].price",
        "mem-16-23",
    ),
    (
        "machines.toml",
        'release_date = "2024-10-29"',
        'release_date = "29/10/2024"',
        "machine[mac-mini-m4].release_date",
        "29/10/2024",
    ),
    (
        "machines.toml",
        'id = "mac-mini-m2-pro"',
        'id = "mac-mini-m2"',
        "machine[mac-mini-m2].id",
        "mac-mini-m2",
    ),
    (
        "network.toml",
        'measured_bandwidth = { value = 4745, unit = "MiB/s"',
        'measured_bandwidth = { value = 4745, unit = "MB/s"',
        "link[tb5-rdma].measured_bandwidth.unit",
        "MB/s",
    ),
    ("network.toml", 'id = "tb5-rdma"', 'id = "tb5rdma"', "link", "tb5-rdma"),
    ("price_observations.toml", 'id = "u-002"', 'id = "u-001"', "observation.id", "u-001"),
    (
        "price_observations.toml",
        'date = "2022-06-30"',
        'date = "June 2022"',
        "observation[u-001].date",
        "June 2022",
    ),
    (
        "price_observations.toml",
        'config = "mac-studio-m1-max-24c-32gb"',
        'config = "mac-studio-m1-ultra-48c-64gb"',
        "observation[u-001].config",
        "mac-studio-m1-ultra-48c-64gb",
    ),
    (
        "price_observations.toml",
        'condition = "refurbished"',
        'condition = "mint"',
        "observation[u-001]",
        "condition 'mint' unknown",
    ),
    (
        "power_measurements.toml",
        "load_w = 227",
        "load_w = -227",
        "measurement[pm-001].load_w",
        "-227",
    ),
    ("sources.toml", 'date = "2026-09-30"', 'date = "2026-13-30"', "l4167.date", "2026-13-30"),
    # dated price lists and storage options
    (
        "machines.toml",
        'date = "2026-05-02"\nlabel = "May 2026: 256GB tier withdrawn"',
        'date = "2024-10-01"\nlabel = "May 2026: 256GB tier withdrawn"',
        "machine[mac-mini-m4].price_list[0].date",
        "2024-10-01",
    ),
    (
        "machines.toml",
        "rescale = { value = 1.5, ",
        "rescale = { value = 15, ",
        "machine[mac-mini-m4].price_list[1].rescale.value",
        "15",
    ),
    (
        "machines.toml",
        'steps = { base = { value = 899, src = ["m4mini-2026-price"], grade = "L"',
        'steps = { basis = { value = 899, src = ["m4mini-2026-price"], grade = "L"',
        "machine[mac-mini-m4].price_list[2026-06-25].steps",
        "basis",
    ),
    (
        "machines.toml",
        'ssd-1tb = { value = 400, src = ["refurb-was-prices"], grade = "A"',
        'ssd-1tb = { value = 400, src = ["refurb-was-prices"], grade = "A+"',
        "machine[mac-mini-m4].price.ssd-1tb.grade",
        "A+",
    ),
    (
        "machines.toml",
        '{ gb = 2000, step = "ssd-2tb" }]\nten_gbe',
        '{ gb = 2000, step = "ssd-3tb" }]\nten_gbe',
        "machine[mac-mini-m4].configs[0].storage",
        "ssd-3tb",
    ),
    (
        "machines.toml",
        "withdraw = [{ storage_gb = 256 }]",
        'withdraw = [{ config = "mac-mini-m4-10c-48gb" }]',
        "machine[mac-mini-m4].price_list[2026-05-02]",
        "mac-mini-m4-10c-48gb",
    ),
    (
        "price_observations.toml",
        'config = "mac-studio-m1-max-24c-32gb"\nstorage_gb = 512',
        'config = "mac-studio-m1-max-24c-32gb"\nstorage_gb = 640',
        "observation[u-001].storage_gb",
        "640",
    ),
]


@pytest.mark.parametrize(
    ("file", "old", "new", "field", "value"), CASES, ids=[f"{c[0]}:{c[3]}" for c in CASES]
)
def test_corruption_gives_one_clear_error(data_copy, file, old, new, field, value):
    _corrupt(data_copy / file, old, new)
    with pytest.raises(DataError) as err:
        load_catalog(data_copy)
    msg = str(err.value)
    assert err.value.file.endswith(file), msg
    assert field in err.value.field or field in msg, msg
    assert value in msg, msg
    assert "\n" not in msg


def test_syntax_error_names_the_file(data_copy):
    path = data_copy / "machines.toml"
    path.write_text(path.read_text(encoding="utf-8")[:5000], encoding="utf-8")  # truncated
    with pytest.raises(DataError) as err:
        load_catalog(data_copy)
    assert err.value.file.endswith("machines.toml") and err.value.field == "(syntax)"
    assert "end of document" in str(err.value)


def test_syntax_error_mid_file_gives_the_line(data_copy):
    _corrupt(data_copy / "chips.toml", 'id = "m2-8c"', 'id = m2-8c"')
    with pytest.raises(DataError) as err:
        load_catalog(data_copy)
    assert err.value.file.endswith("chips.toml") and "line" in str(err.value)


def test_binary_garbage_is_a_data_error(data_copy):
    (data_copy / "network.toml").write_bytes(b"\xff\xfe\x00garbage\x00")
    with pytest.raises(DataError) as err:
        load_catalog(data_copy)
    assert err.value.file.endswith("network.toml")


def test_missing_file(data_copy):
    (data_copy / "chips.toml").unlink()
    with pytest.raises(DataError, match=r"chips.toml.*missing"):
        load_catalog(data_copy)


def test_the_untouched_copy_loads(data_copy):
    assert len(load_catalog(data_copy).configs) == len(load_catalog().configs)
