"""The cluster service (forgeplanner.services.cluster): typed requests, node naming, link
choice, and the same plan `forgeplanner cluster` prints."""

from __future__ import annotations

import json

import pytest

from catalog import load_catalog
from forgeplanner.cli.main import main
from forgeplanner.domain.runtime import Runtime
from forgeplanner.errors import NotFoundError
from forgeplanner.services.cluster import (
    ClusterError,
    ClusterRequest,
    NodeGroup,
    build_cluster,
    default_link,
    expand_nodes,
    link_the_nodes_can_run,
)

MINI = "mac-mini-m4-pro-20c-64gb"
STUDIO_TB5 = "mac-studio-m3-ultra-80c-256gb"
STUDIO_TB4 = "mac-studio-m2-ultra-76c-192gb"


def test_a_node_group_has_at_least_one_machine():
    assert NodeGroup(MINI).count == 1
    with pytest.raises(ClusterError, match="count must be at least 1, got 0"):
        NodeGroup(MINI, 0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"context": 0}, "--context must be a positive number of tokens, got 0"),
        ({"mode": "ring"}, "mode 'ring' unknown; valid: pipeline, tensor"),
        ({"split": "even"}, "split 'even' unknown; valid: auto, proportional, fastest"),
    ],
)
def test_an_impossible_request_says_why(changes, message):
    with pytest.raises(ClusterError, match=message):
        ClusterRequest("llama-3.1-70b", "Q4_K_M", (NodeGroup(MINI, 2),), **changes)


def test_nodes_are_named_per_kind_in_the_order_given():
    cat = load_catalog()
    nodes = expand_nodes([NodeGroup(MINI, 2), NodeGroup(STUDIO_TB4), NodeGroup(MINI)], cat)
    assert [name for name, _ in nodes] == ["mini-1", "mini-2", "studio-1", "mini-3"]
    assert [cfg.id for _, cfg in nodes] == [MINI, MINI, STUDIO_TB4, MINI]
    with pytest.raises(NotFoundError, match="unknown machine configuration 'nope'"):
        expand_nodes([NodeGroup("nope")], cat)
    with pytest.raises(ClusterError, match="give at least one --node"):
        expand_nodes([], cat)


def test_the_link_is_the_one_every_node_can_run():
    cat = load_catalog()
    tb5, tb4 = cat.config(STUDIO_TB5), cat.config(STUDIO_TB4)
    assert (tb5.thunderbolt, tb4.thunderbolt) == ("TB5", "TB4")
    assert default_link([tb5, tb5])[0] == "tb5"
    assert default_link([tb5, tb4])[0] == "tb4"
    used, why = link_the_nodes_can_run("tb5", [("studio-1", tb5), ("studio-2", tb4)])
    assert used == "tb4" and "studio-2 (TB4)" in why
    assert link_the_nodes_can_run("10gbe", [("studio-1", tb5), ("studio-2", tb4)]) == (
        "10gbe",
        None,
    )
    with pytest.raises(ClusterError, match="--link tb5-rdma needs Thunderbolt 5 on every node"):
        link_the_nodes_can_run("tb5-rdma", [("studio-1", tb5), ("studio-2", tb4)])


def test_the_service_plans_what_the_command_prints(capsys):
    request = ClusterRequest(
        "llama-3.1-70b",
        "Q4_K_M",
        (NodeGroup(MINI, 2),),
        link_id="tb5",
        addresses={"mini-1": "10.0.0.2"},
    )
    result = build_cluster(request)
    argv = ["cluster", "--model", "llama-3.1-70b", "--quant", "Q4_K_M", "--node", f"{MINI}x2",
            "--link", "tb5", "--address", "mini-1=10.0.0.2", "--json"]  # fmt: skip
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(json.dumps(result.to_dict()))
    assert [n.name for n in result.plan.nodes] == ["mini-1", "mini-2"]
    assert sum(n.n_layers for n in result.plan.nodes) == 80
    assert any("10.0.0.2" in c.command for c in result.commands)


def test_a_cluster_far_too_small_is_laid_out_proportionally_and_does_not_fit():
    """The fastest split keeps every node within its GPU limit; when the model is larger than
    the limits together there is none, and the plan is the proportional split's verdicts."""
    result = build_cluster(ClusterRequest("llama-3.1-405b", "Q4_K_M", (NodeGroup(MINI, 2),)))
    plan = result.plan
    assert plan.split == "proportional" and plan.verdict == "does-not-fit"
    assert sum(n.total_bytes for n in plan.nodes) > sum(n.gpu_limit_bytes for n in plan.nodes)
    assert [n.n_layers for n in plan.nodes] == [63, 63]


INTEL = "mac-mini-2018-i7-64gb"


def test_the_runtime_is_typed_and_must_split_a_model():
    req = ClusterRequest("llama-3.1-70b", "MLX-4bit", (NodeGroup(MINI, 2),), runtime="MLX")
    assert req.runtime is Runtime.MLX
    assert ClusterRequest("llama-3.1-70b", "Q4_K_M", (NodeGroup(MINI),)).runtime is (
        Runtime.LLAMA_CPP
    )
    with pytest.raises(ClusterError, match="runtime 'ollama' does not split a model"):
        ClusterRequest("llama-3.1-70b", "Q4_K_M", (NodeGroup(MINI),), runtime=Runtime.OLLAMA)
    with pytest.raises(ClusterError, match=r"runtime 'vllm' unknown; valid: llama\.cpp"):
        ClusterRequest("llama-3.1-70b", "Q4_K_M", (NodeGroup(MINI),), runtime="vllm")
    # MLX needs Apple Silicon on every node; llama.cpp RPC runs on the Intel minis too.
    mixed = (NodeGroup(MINI), NodeGroup(INTEL))
    with pytest.raises(ClusterError, match=f"Apple Silicon only; not: {INTEL}"):
        build_cluster(ClusterRequest("llama-3.1-8b", "MLX-4bit", mixed, runtime=Runtime.MLX))
    assert build_cluster(ClusterRequest("llama-3.1-8b", "Q4_K_M", mixed)).plan.nodes


def test_the_runtime_decides_memory_and_layer_costs():
    """The same machines under llama.cpp (GGUF) and MLX (MLX weights): each plan's per-node
    memory is its runtime's (weights format, KV cache, compute buffer, runtime overhead)."""
    from forgeplanner.engine.cluster_costs import layer_costs
    from forgeplanner.services.cluster import run_options
    from forgeplanner.services.models import find_model

    model = find_model("llama-3.1-70b")
    plans = {}
    for runtime, quant in ((Runtime.LLAMA_CPP, "Q4_K_M"), (Runtime.MLX, "MLX-4bit")):
        plan = build_cluster(
            ClusterRequest(model.id, quant, (NodeGroup(MINI, 2),), runtime=runtime)
        ).plan
        costs = layer_costs(model, quant, run_options(8192, runtime))
        assert all(n.runtime_bytes == costs.runtime_bytes for n in plan.nodes)
        assert all(n.compute_bytes == costs.compute_bytes for n in plan.nodes)
        assert sum(n.weights_bytes for n in plan.nodes) == (
            sum(costs.layer_weights_bytes) + costs.input_bytes + costs.output_bytes
        )
        plans[runtime] = plan
    gguf, mlx = plans[Runtime.LLAMA_CPP], plans[Runtime.MLX]
    assert gguf.nodes[0].runtime_bytes != mlx.nodes[0].runtime_bytes
    assert gguf.decode_tps != pytest.approx(mlx.decode_tps)


def test_a_one_node_cluster_on_an_intel_mini_is_the_estimate(capsys):
    """No Metal backend: the layer costs are the CPU backend's, as `forgeplanner estimate`'s."""
    node = build_cluster(ClusterRequest("llama-3.1-8b", "Q4_K_M", (NodeGroup(INTEL),))).plan
    argv = ["estimate", "--model", "llama-3.1-8b", "--machine", INTEL, "--quant", "Q4_K_M"]
    assert main([*argv, "--json"]) == 0
    memory = json.loads(capsys.readouterr().out)["memory"]
    assert node.nodes[0].total_bytes == memory["total_bytes"]
    assert node.nodes[0].compute_bytes == memory["compute_bytes"]
