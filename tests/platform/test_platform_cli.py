"""`forgeplanner platform layout` on the real catalog."""

from __future__ import annotations

import json

from forgeplanner.cli.main import main

SHELF = [
    "--node", "cp=mac-mini-2018-i3-8gb",
    "--node", "w1=mac-mini-2018-i7-32gb",
    "--node", "w2=mac-mini-2018-i5-16gb",
    "--node", "w3=mac-mini-2018-i7-16gb",
    "--node", "studio=mac-studio-m2-ultra-76c-192gb",
]  # fmt: skip
ROLES = {"control-plane", "worker", "telemetry", "registry", "gitops", "inference"}


def test_json_keys_and_manifests(capsys, tmp_path):
    out = tmp_path / "k8s"
    code = main(["platform", "layout", *SHELF, "--model", "llama-3.1-70b", "--quant", "Q4_K_M",
                 "--manifests", str(out), "--json"])  # fmt: skip
    assert code == 0
    d = json.loads(capsys.readouterr().out)
    assert {"nodes", "assignments", "unplaced"} <= set(d)
    for n in d["nodes"]:
        assert {"name", "config_id", "roles", "requests", "power_w"} <= set(n)
        assert set(n["roles"]) <= ROLES
    assert d["unplaced"] == []
    assert d["assignments"]["ollama-studio"] == "studio"
    assert d["power"]["idle_w"] is not None
    assert sorted(p.name for p in out.iterdir()) == d["manifests"]
    assert len(d["written"]) == len(d["manifests"])


def test_readable_output_and_unplaced(capsys):
    assert main(["platform", "layout", "--node", "solo=mac-mini-2018-i7-32gb", "--model",
                 "llama-3.1-70b", "--quant", "Q4_K_M"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "UNPLACED inference (ollama)" in out
    assert "there is no Apple Silicon node" in out
    assert "UNPLACED telemetry" in out
    assert "curl -sfL https://get.k3s.io | INSTALL_K3S_CHANNEL=stable sh -s - server" in out
    assert "shelf:" in out


def test_bad_input_is_one_line(capsys):
    assert main(["platform", "layout", "--node", "nocolon"]) == 2
    assert "expected NAME=CONFIG_ID" in capsys.readouterr().err
    assert main(["platform", "layout", "--node", "a=mac-nope"]) == 2
    assert "unknown machine configuration 'mac-nope'" in capsys.readouterr().err
    assert main(["platform", "layout", "--node", "a=mac-mini-2018-i7-32gb", "--model",
                 "llama-3.1-8b"]) == 2  # fmt: skip
    assert "--model and --quant go together" in capsys.readouterr().err
    assert main(["platform", "layout", "--node", "A_1=mac-mini-2018-i7-32gb"]) == 2
    assert "not a valid Kubernetes node name" in capsys.readouterr().err
