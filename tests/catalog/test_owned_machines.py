"""Machines people already own: MacBook Air/Pro and iMac chips with every memory size they were
sold with are accepted for fit and speed (`estimate --chip ... --memory-gb ...`), even though
the purchase planner only buys Mac minis and Mac Studios."""

from __future__ import annotations

import json

import pytest

from forgeplanner.cli.main import main


def _estimate(capsys, *chip: str) -> dict:
    argv = ["estimate", "--model", "llama-3.1-8b", "--quant", "Q4_K_M", "--chip", *chip]
    assert main([*argv, "--json"]) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    "chip",
    [
        ("M5 Max", "--gpu-cores", "40", "--memory-gb", "48"),  # MacBook Pro 2026
        ("M5 Pro", "--gpu-cores", "16", "--memory-gb", "48"),
        ("M5 Pro", "--gpu-cores", "20", "--memory-gb", "48"),
        ("M5", "--gpu-cores", "10", "--memory-gb", "24"),  # MacBook Pro 14 (2025)
        ("M3 Max", "--gpu-cores", "40", "--memory-gb", "64"),
        ("M3 Pro", "--gpu-cores", "14", "--memory-gb", "36"),
        ("M3", "--gpu-cores", "8", "--memory-gb", "16"),  # MacBook Air / iMac base bin
        ("M4", "--gpu-cores", "8", "--memory-gb", "24"),  # iMac base bin
        ("M1", "--gpu-cores", "7", "--memory-gb", "16"),  # MacBook Air (M1)
        ("M4 Max", "--memory-gb", "36"),  # no GPU count: the bin sold with 36 GB
    ],
)
def test_laptop_and_imac_chips_are_accepted(capsys, chip):
    d = _estimate(capsys, *chip)
    assert d["verdict"] == "fits" and d["decode_tps"] > 0


def test_a_size_never_sold_is_refused_in_one_line(capsys):
    argv = ["estimate", "--model", "llama-3.1-8b", "--chip", "M5 Max", "--gpu-cores", "32"]
    assert main([*argv, "--memory-gb", "48"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sold with 36 GB, not 48 GB" in err


def test_the_m6_bandwidth_follows_its_memory(capsys):
    small = _estimate(capsys, "M6", "--memory-gb", "16")
    large = _estimate(capsys, "M6", "--memory-gb", "32")
    # 153 GB/s with 16 GB, 170 GB/s with 24/32 GB (Apple's specifications as quoted)
    assert large["decode_tps"] > small["decode_tps"]
