"""The pure cluster layout: memory per node, llama.cpp's placement, tensor parallel, speed."""

from __future__ import annotations

import numpy as np
import pytest

from forgeplanner.domain.estimates import VERDICT_FITS, VERDICT_NO, GpuBudget
from forgeplanner.domain.units import GiB
from forgeplanner.engine.cluster import (
    LayerCosts,
    LinkModel,
    NodeSpec,
    check_tensor_parallel,
    plan_cluster,
    plan_pipeline,
    plan_tensor,
    ring_all_reduce_s,
    topology_notes,
)
from forgeplanner.engine.cluster_commands import all_commands
from forgeplanner.engine.cluster_costs import layer_costs
from forgeplanner.engine.memory import estimate_memory
from forgeplanner.engine.quant import get_quant
from forgeplanner.engine.weights import weights_breakdown

LINK = LinkModel(
    id="tb4",
    name="IP over Thunderbolt 4",
    bandwidth_bytes_per_s=16.4e9 / 8,
    bandwidth_basis="test",
    round_trip_s=300e-6,
    latency_basis="test",
    medium="thunderbolt",
)


def budget(gib: float, raisable: float | None = None) -> GpuBudget:
    limit = int(gib * GiB)
    return GpuBudget(
        physical_bytes=limit * 4 // 3,
        gpu_limit_bytes=limit,
        basis="test",
        os_reserve_bytes=limit // 3,
        max_raisable_limit_bytes=int((raisable or gib) * GiB),
    )


def toy_costs(n_layers: int = 8, **kw) -> LayerCosts:
    base = dict(
        model_id="toy",
        quant="Q8_0",
        context=4096,
        hidden_size=1024,
        n_heads=16,
        n_kv_heads=4,
        layer_weights_bytes=(GiB,) * n_layers,
        layer_kv_bytes=(GiB // 8,) * n_layers,
        input_bytes=GiB // 2,
        output_bytes=GiB // 2,
        compute_bytes=GiB // 4,
        runtime_bytes=GiB // 4,
    )
    base.update(kw)
    return LayerCosts(**base)


def test_per_layer_weights_add_up_to_the_engine_without_reconciling(models):
    # The per-layer table must reproduce the engine's own total by itself (no correction).
    for mid, quant in [
        ("llama-3.1-70b", "Q4_K_M"),
        ("llama-3.1-8b", "Q3_K_M"),
        ("qwen3-30b-a3b", "Q4_K_M"),
        ("gemma-3-27b", "Q5_K_M"),
        ("deepseek-v3", "IQ2_XXS"),
        ("gpt-oss-20b", "MXFP4"),
        ("llama-3.1-70b", "MLX-4bit"),
    ]:
        m = models.get(mid)
        wb = weights_breakdown(m, get_quant(quant))
        per, inp, out = wb.layer_bytes, wb.input_bytes, wb.output_bytes
        assert sum(per) + inp + out == wb.total_bytes == sum(wb.bytes_by_group.values()), (
            mid,
            quant,
        )


def test_layer_costs_match_the_memory_engine(llama70b, opts8k):
    c = layer_costs(llama70b, "Q4_K_M", opts8k)
    mem = estimate_memory(llama70b, "Q4_K_M", opts8k)
    assert sum(c.layer_weights_bytes) + c.input_bytes + c.output_bytes == mem.weights_bytes
    assert sum(c.layer_kv_bytes) == mem.kv_cache_bytes
    assert c.compute_bytes == mem.compute_bytes
    assert c.runtime_bytes == mem.runtime_bytes
    # Q4_K_M gives attn_v and ffn_down Q6_K on the first/last eighth and every third layer
    # (llama.cpp use_more_bits): exactly two layer sizes, 40 of each over 80 layers.
    sizes = sorted(set(c.layer_weights_bytes))
    assert len(sizes) == 2
    assert c.layer_weights_bytes.count(sizes[1]) == 40


def test_sliding_window_kv_is_per_layer(models):
    g = models.get("gemma-3-27b")
    from forgeplanner.domain.estimates import RunOptions

    c = layer_costs(g, "Q4_K_M", RunOptions(context=32768))
    sliding = set(g.attention.sliding_layers)
    full = [c.layer_kv_bytes[i] for i in range(g.n_layers) if i not in sliding]
    win = [c.layer_kv_bytes[i] for i in range(g.n_layers) if i in sliding]
    assert min(full) > 4 * max(win)  # a 32k context vs a 1k window


def _llamacpp_assignment(tensor_split, n_layer):
    """llama.cpp load_tensors: layer il -> first device whose cumulative float split exceeds
    il / act_gpu_layers, with act_gpu_layers = n_layer + 1 (the output layer) at -ngl 999."""
    ts = np.asarray(tensor_split, dtype=np.float32)
    splits = np.cumsum(ts, dtype=np.float32)
    splits = (splits / splits[-1]).astype(np.float32)
    act = n_layer + 1
    dev = []
    for il in range(n_layer + 1):
        x = np.float32(il) / np.float32(act)
        dev.append(int(np.searchsorted(splits, x, side="right")))
    return dev[:-1], dev[-1]


@pytest.mark.parametrize("budgets", [(48, 48), (20, 48, 96), (7, 9, 11, 13), (100, 1, 1)])
def test_tensor_split_makes_llamacpp_place_exactly_the_planned_layers(budgets):
    costs = toy_costs(n_layers=80, layer_weights_bytes=(1,) * 80, layer_kv_bytes=(0,) * 80)
    nodes = [NodeSpec(f"n{i}", None, budget(b)) for i, b in enumerate(budgets)]
    plan = plan_pipeline(costs, nodes, LINK, "proportional")
    layers, output_dev = _llamacpp_assignment(plan.tensor_split, 80)
    for d, node in enumerate(plan.nodes):
        got = [il for il, dev in enumerate(layers) if dev == d]
        assert got == list(range(*node.layers)), (d, plan.tensor_split)
    assert output_dev == len(budgets) - 1  # the output head lands on the llama-server host


def test_pipeline_memory_per_node_and_fixed_parts_on_the_host():
    costs = toy_costs()
    nodes = [NodeSpec("a", None, budget(20)), NodeSpec("b", None, budget(20))]
    plan = plan_pipeline(costs, nodes, LINK, "proportional")
    a, b = plan.nodes
    assert a.layers == (0, 4) and b.layers == (4, 8)
    assert a.weights_bytes == 4 * GiB
    assert b.weights_bytes == 4 * GiB + GiB  # + token embedding and output head
    assert a.kv_cache_bytes == b.kv_cache_bytes == GiB // 2
    assert a.total_bytes == 4 * GiB + GiB // 2 + GiB // 2
    assert b.holds == ("token_embd", "output") and a.holds == ()
    assert a.verdict == b.verdict == VERDICT_FITS


def test_verdicts_are_per_node_against_each_budget():
    costs = toy_costs()
    nodes = [NodeSpec("small", None, budget(3)), NodeSpec("big", None, budget(60))]
    plan = plan_pipeline(costs, nodes, LINK, "proportional")
    small = plan.nodes[0]
    assert small.layers == (0, 0 + small.n_layers)
    # 8 * 3 / 63 = 0.38 layers -> 0 by largest remainder; the node still pays its buffers
    assert small.n_layers == 0 and small.verdict == VERDICT_FITS
    nodes = [NodeSpec("tiny", None, budget(0.4)), NodeSpec("big", None, budget(60))]
    plan = plan_pipeline(costs, nodes, LINK, "proportional")
    assert plan.nodes[0].verdict == VERDICT_NO
    assert plan.verdict == VERDICT_NO


def test_fastest_split_moves_layers_to_the_faster_node_within_memory():
    costs = toy_costs()
    fast = NodeSpec("fast", None, budget(7), decode_s_per_token=0.01, prefill_s_per_token=1e-3)
    slow = NodeSpec("slow", None, budget(60), decode_s_per_token=0.04, prefill_s_per_token=4e-3)
    plan = plan_pipeline(costs, [fast, slow], LINK, "fastest")
    # fast holds as many layers as its 7 GiB allow: n * 1.125 GiB + 0.5 GiB <= 7 GiB -> 5
    assert plan.nodes[0].n_layers == 5
    prop = plan_pipeline(costs, [fast, slow], LINK, "proportional")
    assert plan.decode_tps > prop.decode_tps


def test_fastest_split_error_states_the_numbers():
    costs = toy_costs()
    nodes = [
        NodeSpec("a", None, budget(2), decode_s_per_token=0.01),
        NodeSpec("b", None, budget(2), decode_s_per_token=0.01),
    ]
    with pytest.raises(ValueError, match=r"needs 11\.\d GiB .* add up to 4\.0 GiB"):
        plan_pipeline(costs, nodes, LINK, "fastest")


def test_pipeline_decode_time_is_stages_plus_hops():
    costs = toy_costs()
    a = NodeSpec("a", None, budget(20), decode_s_per_token=0.02, prefill_s_per_token=2e-3)
    b = NodeSpec("b", None, budget(20), decode_s_per_token=0.02, prefill_s_per_token=2e-3)
    plan = plan_pipeline(costs, [a, b], LINK, "proportional")
    stages = sum(n.decode_stage_s for n in plan.nodes)
    assert stages == pytest.approx(0.02)  # identical nodes: the shares add up to one model
    hop = LINK.round_trip_s + 2 * 1024 * 4 / LINK.bandwidth_bytes_per_s
    assert plan.network_s_per_token == pytest.approx(hop)
    assert plan.decode_tps == pytest.approx(1 / (0.02 + hop))
    assert plan.adds_speed is False
    assert "adds capacity but no speed" in plan.summary


def test_single_node_cluster_has_no_network_and_the_node_speed():
    costs = toy_costs()
    n = NodeSpec("solo", None, budget(60), decode_s_per_token=0.05, prefill_s_per_token=5e-3)
    plan = plan_cluster(costs, [n], None)
    assert plan.network_s_per_token == 0
    assert plan.decode_tps == pytest.approx(20.0)
    assert plan.prefill_tps == pytest.approx(200.0)
    assert plan.nodes[0].layers == (0, 8)


def test_tensor_parallel_divisibility_errors_name_heads():
    costs = toy_costs(n_heads=64, n_kv_heads=8)
    check_tensor_parallel(costs, 2)
    check_tensor_parallel(costs, 8)
    with pytest.raises(ValueError, match="divide by 3; toy has 64 attention heads and 8 KV heads"):
        check_tensor_parallel(costs, 3)
    with pytest.raises(ValueError, match="16 KV heads"):
        check_tensor_parallel(toy_costs(n_heads=48, n_kv_heads=16), 3)


def test_tensor_parallel_memory_and_communication():
    costs = toy_costs()
    nodes = [
        NodeSpec(f"n{i}", None, budget(20), decode_s_per_token=0.04, prefill_s_per_token=4e-3)
        for i in range(4)
    ]
    plan = plan_tensor(costs, nodes, LINK)
    for n in plan.nodes:
        assert n.weights_bytes == 2 * GiB + GiB  # a quarter of the layers + replicated ends
        assert n.kv_cache_bytes == GiB // 4
    ar = ring_all_reduce_s(1024 * 2, 4, LINK)
    assert ar == pytest.approx(6 * (150e-6 + 512 / LINK.bandwidth_bytes_per_s))
    assert plan.network_s_per_token == pytest.approx(2 * 8 * ar)
    # latency-bound: 16 all-reduces x 6 steps x 150 us = 14.4 ms per token
    assert plan.network_s_per_token > 0.0144
    with pytest.raises(ValueError, match="divide by 3"):
        plan_tensor(costs, nodes[:3], LINK)


def test_topology_notes_count_ports_and_warn_about_bridge_loops():
    nodes = [
        NodeSpec(f"m{i}", None, budget(20), thunderbolt="TB4", thunderbolt_ports=2)
        for i in range(4)
    ]
    notes = " ".join(topology_notes(nodes, LINK))
    assert "3 Thunderbolt port(s) per machine and 6 cable(s)" in notes
    assert "not enough Thunderbolt ports for a full mesh" in notes
    assert "Thunderbolt Bridge" in notes
    rdma = LinkModel("tb5-rdma", "RDMA over TB5", 5e9, "t", 50e-6, "t", "rdma", "thunderbolt")
    notes = " ".join(topology_notes(nodes, rdma))
    assert "macOS 26.2" in notes and "needs Thunderbolt 5 on every node" in notes


def test_commands_use_the_split_and_every_remote_node():
    costs = toy_costs()
    nodes = [NodeSpec(n, None, budget(20)) for n in ("mini-1", "mini-2", "studio-1")]
    plan = plan_pipeline(costs, nodes, LINK, "proportional")
    cmds = all_commands(plan, {"mini-1": "192.168.50.2"}, model_path="m.gguf")
    text = "\n".join(c.command for c in cmds)
    assert "ggml-rpc-server -H 192.168.50.2 -p 50052" in text
    assert "ggml-rpc-server -H 10.10.0.2 -p 50052" in text
    split = ",".join(map(str, plan.tensor_split))
    assert f"--rpc 192.168.50.2:50052,10.10.0.2:50052 --tensor-split {split}" in text
    assert "-ts " + "/".join(map(str, plan.tensor_split)) in text
    assert "mlx.launch --hostfile hosts.json --backend ring" in text
    assert "--pipeline" in text
    with pytest.raises(ValueError, match="unknown node"):
        all_commands(plan, {"nope": "1.2.3.4"})


def test_intel_nodes_get_llamacpp_only_and_no_tensor_parallel():
    costs = toy_costs()
    nodes = [
        NodeSpec("mini-1", None, budget(20), is_apple_silicon=False),
        NodeSpec("mini-2", None, budget(20)),
    ]
    plan = plan_pipeline(costs, nodes, LINK, "proportional")
    engines = {c.engine for c in all_commands(plan)}
    assert engines == {"llama.cpp"}
    assert any("MLX and exo need Apple Silicon" in n for n in plan.notes)
    with pytest.raises(ValueError, match="need Apple Silicon; not Apple Silicon: mini-1"):
        plan_tensor(costs, nodes, LINK)
