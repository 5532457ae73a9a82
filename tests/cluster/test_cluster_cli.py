"""`forgeplanner cluster` end to end on the real catalog and model database."""

from __future__ import annotations

import json

import pytest

from forgeplanner.cli.main import main

MINI = "mac-mini-m4-pro-20c-64gb"
GiB = 1 << 30


def run_json(capsys, *args: str) -> dict:
    assert main(["cluster", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def q_bytes(n_elements: int, block_bytes: int) -> int:
    """Bytes of n elements in a 256-element k-quant super-block type."""
    return n_elements // 256 * block_bytes


Q4_K, Q5_K, Q6_K = 144, 176, 210  # bytes per 256-element super-block (ggml block layouts)


def test_llama70b_q4km_over_two_m4_pro_minis_hand_checked(capsys):
    d = run_json(capsys, "--model", "llama-3.1-70b", "--quant", "Q4_K_M", "--node", f"{MINI}x2",
                 "--split", "proportional", "--link", "tb5")  # fmt: skip
    a, b = d["nodes"]
    # Equal budgets: 80 layers -> [0, 40) and [40, 80); the last node runs llama-server.
    assert (a["name"], a["layers"]) == ("mini-1", [0, 40])
    assert (b["name"], b["layers"]) == ("mini-2", [40, 80])
    # GPU limit: 64 GiB x 3/4 (default wired limit above 32 GiB).
    assert a["gpu_limit_bytes"] == b["gpu_limit_bytes"] == 48 * GiB
    # Llama 3.1 70B layer: H 8192, FFN 28672, 64 heads, 8 KV heads of 128.
    H, F, KV = 8192, 28672, 8 * 128
    norms = 2 * H * 4
    # Q4_K_M (llama.cpp use_more_bits): attn_v and ffn_down in Q6_K on the first and last
    # eighth and every third layer between; otherwise attn_v Q5_K, ffn_down Q4_K.
    small = q_bytes(2 * H * H + H * KV + 3 * H * F, Q4_K) + q_bytes(H * KV, Q5_K) + norms
    large = q_bytes(2 * H * H + H * KV + 2 * H * F, Q4_K) + q_bytes(H * KV + H * F, Q6_K) + norms
    # layers 0-9, 12, 15, ..., 69 and 70-79 are "more bits": 20 of them in each half
    assert a["weights_bytes"] == 20 * small + 20 * large == 20_529_807_360
    token_embd = q_bytes(128256 * H, Q4_K)
    output = q_bytes(128256 * H, Q6_K) + H * 4
    assert b["weights_bytes"] == 20 * small + 20 * large + token_embd + output
    # KV cache f16 for 40 layers: 2 x 40 x 1024 x 2 B x 8192 cells = 1.25 GiB
    assert a["kv_cache_bytes"] == b["kv_cache_bytes"] == 2 * 40 * KV * 2 * 8192 == 1.25 * GiB
    for n in (a, b):
        assert n["total_bytes"] < n["gpu_limit_bytes"]
        assert n["verdict"] == "fits"
    # llama.cpp's default -fa auto turns flash attention on (the RPC backend reports support
    # for every op): no 1 GiB score matrix, the logits (n_vocab + 2 H) x 4 B x 512 are the
    # largest compute peak
    assert a["compute_bytes"] == b["compute_bytes"] == (128256 + 2 * H) * 4 * 512
    assert a["total_bytes"] / GiB == pytest.approx(20.90, abs=0.01)
    assert b["total_bytes"] / GiB == pytest.approx(22.25, abs=0.01)
    # One mini holds the model alone: two add capacity but no speed.
    assert d["adds_speed"] is False
    assert "adds capacity but no speed" in d["summary"]
    assert d["decode_tps"] < 1 / (a["decode_stage_s"] + b["decode_stage_s"]) + 1e-9
    cmds = [c["command"] for c in d["commands"]]
    assert any(c.startswith("ggml-rpc-server -H 10.10.0.1 -p 50052") for c in cmds)
    assert any("--tensor-split 40,41" in c for c in cmds)  # +1: the output layer on the host


def test_one_node_cluster_equals_the_single_machine_estimate(capsys):
    for model, quant, config in [
        ("llama-3.1-70b", "Q4_K_M", MINI),
        ("qwen3-30b-a3b", "Q8_0", "mac-studio-m2-ultra-76c-192gb"),
        ("gemma-3-27b", "Q4_K_M", "mac-mini-m4-pro-20c-64gb"),
    ]:
        d = run_json(capsys, "--model", model, "--quant", quant, "--node", config,
                     "--context", "16384")  # fmt: skip
        assert main(["estimate", "--model", model, "--quant", quant, "--machine", config,
                     "--context", "16384", "--json"]) == 0  # fmt: skip
        e = json.loads(capsys.readouterr().out)
        (n,) = d["nodes"]
        assert n["layers"] == [0, d["nodes"][0]["layers"][1]]
        assert n["weights_bytes"] == e["memory"]["weights_bytes"]
        assert n["kv_cache_bytes"] == e["memory"]["kv_cache_bytes"]
        assert n["compute_bytes"] == e["memory"]["compute_bytes"]
        assert n["runtime_bytes"] == e["memory"]["runtime_bytes"]
        assert n["total_bytes"] == e["memory"]["total_bytes"]
        assert n["gpu_limit_bytes"] == e["budget"]["gpu_limit_bytes"]
        assert n["verdict"] == e["verdict"]
        assert d["decode_tps"] == pytest.approx(e["decode_tps"], abs=1e-3)
        assert d["prefill_tps"] == pytest.approx(e["prefill_tps"], abs=1e-3)


def test_json_keys(capsys):
    d = run_json(capsys, "--model", "llama-3.1-8b", "--quant", "Q4_K_M",
                 "--node", "mac-mini-m4-10c-16gb", "--node", "mac-mini-m2-10c-8gbx2",
                 "--link", "10gbe")  # fmt: skip
    assert {"nodes", "decode_tps", "prefill_tps", "commands"} <= set(d)
    assert [n["name"] for n in d["nodes"]] == ["mini-1", "mini-2", "mini-3"]
    for n in d["nodes"]:
        assert {"name", "config_id", "layers", "weights_bytes", "kv_cache_bytes", "total_bytes",
                "gpu_limit_bytes", "verdict"} <= set(n)  # fmt: skip
        assert len(n["layers"]) == 2
    assert d["nodes"][0]["layers"][0] == 0 and d["nodes"][-1]["layers"][1] == 32
    assert {"engine", "node", "purpose", "command"} <= set(d["commands"][0])


def test_tensor_mode_divisibility_is_a_one_line_error(capsys):
    code = main(["cluster", "--model", "llama-3.1-70b", "--quant", "Q4_K_M", "--node",
                 f"{MINI}x3", "--mode", "tensor", "--link", "tb5-rdma"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert "divide by 3; llama-3.1-70b has 64 attention heads and 8 KV heads" in err


def test_tensor_mode_over_rdma(capsys):
    d = run_json(capsys, "--model", "llama-3.1-70b", "--quant", "Q4_K_M", "--node", f"{MINI}x2",
                 "--mode", "tensor", "--link", "tb5-rdma")  # fmt: skip
    assert d["mode"] == "tensor"
    assert all(n["layers"] == [0, 80] for n in d["nodes"])
    assert any("jaccl" in c["command"] for c in d["commands"])
    assert d["network_s_per_token"] == pytest.approx(2 * 80 * 2 * (25e-6 + 8192 / 4975493120.0))


def test_unknown_config_and_bad_node_arg(capsys):
    assert main(["cluster", "--model", "llama-3.1-8b", "--quant", "Q4_K_M", "--node",
                 "mac-mini-nope"]) == 2  # fmt: skip
    assert "unknown machine configuration 'mac-mini-nope'" in capsys.readouterr().err
    assert main(["cluster", "--model", "llama-3.1-8b", "--quant", "Q4_K_M", "--node",
                 MINI, "--address", "mini-1=not-an-ip"]) == 2  # fmt: skip
    assert "expected NAME=IPv4" in capsys.readouterr().err


def test_does_not_fit_shows_per_node_verdicts(capsys):
    d = run_json(capsys, "--model", "llama-3.1-405b", "--quant", "Q4_K_M", "--node",
                 "mac-mini-m4-10c-16gbx2", "--link", "1gbe")  # fmt: skip
    assert d["split"] == "proportional"  # no split fits, so auto falls back to the budgets
    assert all(n["verdict"] == "does-not-fit" for n in d["nodes"])
    assert d["verdict"] == "does-not-fit"


def test_readable_output(capsys):
    assert main(["cluster", "--model", "llama-3.1-70b", "--quant", "Q4_K_M", "--node",
                 f"{MINI}x2"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "--link not given: tb5" in out
    assert "mini-2" in out and "ggml-rpc-server" in out


def test_auto_uses_every_node_and_says_when_leaving_one_out_is_faster(capsys):
    d = run_json(capsys, "--model", "llama-3.1-8b", "--quant", "Q4_K_M", "--node", f"{MINI}x2",
                 "--link", "1gbe")  # fmt: skip
    assert all(n["layers"][1] > n["layers"][0] for n in d["nodes"])
    assert any(n.startswith("leaving out mini-1 would be faster") for n in d["notes"])
    fast = run_json(capsys, "--model", "llama-3.1-8b", "--quant", "Q4_K_M", "--node",
                    f"{MINI}x2", "--link", "1gbe", "--split", "fastest")  # fmt: skip
    assert fast["nodes"][0]["layers"] == [0, 0]
    assert fast["decode_tps"] > d["decode_tps"]
    assert any("get(s) no layers" in n for n in fast["notes"])
    rpc = [c["command"] for c in fast["commands"] if c["engine"] == "llama.cpp"]
    assert not any(c.startswith("ggml-rpc-server") for c in rpc)  # the idle node is left out


ULTRA_TB4 = "mac-studio-m2-ultra-76c-192gb"  # Thunderbolt 4
ULTRA_TB5 = "mac-studio-m3-ultra-80c-256gb"  # Thunderbolt 5


def test_a_tb5_link_to_a_tb4_machine_is_computed_at_tb4(capsys):
    # A regression: the note once said "the link runs at the slower end's speed"
    # while the numbers used Thunderbolt 5's bandwidth.
    args = ("--model", "llama-3.1-405b", "--quant", "Q4_K_M", "--node", ULTRA_TB4,
            "--node", ULTRA_TB5)  # fmt: skip
    asked = run_json(capsys, *args, "--link", "tb5")
    tb4 = run_json(capsys, *args, "--link", "tb4")
    assert asked["link"]["id"] == "tb4"
    assert asked["network_s_per_token"] == tb4["network_s_per_token"]
    assert asked["decode_tps"] == tb4["decode_tps"]
    assert "--link tb5: studio-1 (TB4) has an older Thunderbolt" in asked["link_default"]
    # Both ends on Thunderbolt 5: the link is used as asked.
    both = run_json(capsys, "--model", "llama-3.1-70b", "--quant", "Q4_K_M", "--node", f"{MINI}x2",
                    "--link", "tb5")  # fmt: skip
    assert both["link"]["id"] == "tb5" and "link_default" not in both


@pytest.mark.parametrize(
    ("nodes", "link", "expect"),
    [
        (
            [ULTRA_TB4, ULTRA_TB5],
            "tb5-rdma",
            "--link tb5-rdma needs Thunderbolt 5 on every node; studio-1 (TB4) has less; "
            "valid for these nodes: tb3, tb4, 1gbe, 2.5gbe, 10gbe",
        ),
        (
            ["mac-mini-2012-i7-2300mhz-16gbx2"],
            "tb3",
            "mini-1 (TB1), mini-2 (TB1) have less; valid for these nodes: 1gbe",
        ),
    ],
)
def test_a_thunderbolt_link_the_nodes_lack_is_a_one_line_error(capsys, nodes, link, expect):
    argv = ["cluster", "--model", "llama-3.1-8b", "--quant", "Q4_K_M", "--link", link]
    for n in nodes:
        argv += ["--node", n]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and expect in err
