"""`forgeplanner catalog ...` through the real CLI entry point."""

from __future__ import annotations

import json

from catalog import load_catalog
from forgeplanner.cli.main import main

FIGURE_KEYS = {"value", "source", "as_of", "reason", "derived"}


def _json(capsys, *argv: str):
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_list_json_has_machines_with_id_sources_and_figures(capsys):
    data = _json(capsys, "catalog", "list", "--json")
    rows = data["machines"]
    assert len(rows) == len(load_catalog().configs)
    for row in rows:
        assert row["id"] and row["sources"]
        for key in ("launch_price_usd", "idle_w", "max_w", "idle_btu_h", "max_btu_h"):
            fig = row[key]
            assert set(fig) == FIGURE_KEYS
            assert (fig["value"] is not None and fig["source"]) or fig["reason"]
    ids = {r["id"] for r in rows}
    assert {
        "mac-studio-m2-ultra-76c-192gb",
        "mac-mini-m4-pro-20c-64gb",
        "mac-mini-2018-i7-32gb",
    } <= ids


def test_list_kind_filter(capsys):
    rows = _json(capsys, "catalog", "list", "--kind", "mac-studio", "--json")["machines"]
    assert rows and all(r["kind"] == "mac-studio" for r in rows)


def test_chips_json(capsys):
    chips = _json(capsys, "catalog", "chips", "--json")["chips"]
    assert sum(c["vendor"] == "apple" for c in chips) >= 30
    m3 = next(c for c in chips if c["id"] == "m3-max-30c")
    assert m3["mem_bandwidth_gbps"]["value"] == 300
    assert m3["gpu_fp32_tflops"]["value"] is None and m3["gpu_fp32_tflops"]["reason"]


def test_show_config_json_includes_observations(capsys):
    cfg = _json(capsys, "catalog", "show", "mac-mini-m4-10c-16gb", "--json")["configuration"]
    assert cfg["chip_id"] == "m4-10c" and cfg["memory_bytes"] == 16 * 2**30
    assert cfg["launch_price_usd"]["value"] == 599
    assert any(o["price_usd"] == 509 for o in cfg["price_observations"])


def test_show_chip_and_link_json(capsys):
    chip = _json(capsys, "catalog", "show", "m2-ultra-76c", "--json")["chip"]
    assert "mac-studio-m2-ultra-76c-192gb" in chip["configurations"]
    link = _json(capsys, "catalog", "show", "tb5-rdma", "--json")["link"]
    assert link["latency_s"]["value"] == 4.15e-6


def test_tables_show_unknown(capsys):
    assert main(["catalog", "list"]) == 0
    out = capsys.readouterr().out
    assert "mac-mini-m4-10c-32gb" in out and "unknown" in out
    assert main(["catalog", "chips"]) == 0
    out = capsys.readouterr().out
    assert "m3-max-30c" in out and "unknown" in out
    assert main(["catalog", "show", "mac-studio-m2-max-38c-64gb"]) == 0
    out = capsys.readouterr().out
    assert "launch_price_usd     unknown" in out and "bin-38c" in out
    assert "mac-studio-m2-max-38c-64gb-2tb" in out  # each storage option's dated prices
    assert main(["catalog", "show", "mac-studio-m4-max-40c-64gb"]) == 0
    assert "3.412" in capsys.readouterr().out
    assert main(["catalog", "links"]) == 0
    assert "tb5-rdma" in capsys.readouterr().out


def test_unknown_id_is_one_line_error(capsys):
    assert main(["catalog", "show", "mac-mini-m9-1c-1gb"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("forgeplanner: error: unknown catalog id 'mac-mini-m9-1c-1gb'")
    assert err.count("\n") == 1


def test_list_storage_configurations(capsys):
    rows = _json(capsys, "catalog", "list", "--storage", "--json")["storage_configurations"]
    cat = load_catalog()
    assert len(rows) == sum(len(c.storage_options) for c in cat.configs.values())
    row = next(r for r in rows if r["id"] == "mac-studio-m4-max-40c-64gb-1tb")
    assert row["launch_price_usd"]["value"] == 2699 and row["discontinued"] == "2026-08-25"
    assert [h["status"] for h in row["history"]] == ["sold", "sold", "not-offered"]
    assert main(["catalog", "list", "--storage", "--kind", "mac-studio"]) == 0
    out = capsys.readouterr().out
    assert "mac-studio-m2-ultra-76c-192gb-8tb" in out and "with a launch price" in out


def test_show_storage_configuration_and_intel_memory(capsys):
    opt = _json(capsys, "catalog", "show", "mac-mini-m4-10c-16gb-256gb", "--json")
    body = opt["storage_configuration"]
    assert body["storage_gb"] == 256 and body["configuration"]["id"] == "mac-mini-m4-10c-16gb"
    assert [h["date"] for h in body["history"]] == [
        "2024-10-29",
        "2026-05-02",
        "2026-06-25",
        "2026-08-25",
    ]
    chip = _json(capsys, "catalog", "show", "intel-2018-i3", "--json")["chip"]
    assert chip["memory"]["type"] == "DDR4" and chip["memory"]["mts"] == 2666
    assert chip["mem_bandwidth_gbps"]["derived"].startswith("peak = channels x 8 B x MT/s")
    assert main(["catalog", "show", "intel-2014-i5-1400mhz"]) == 0
    assert "LPDDR3-1600 x2 channels" in capsys.readouterr().out
