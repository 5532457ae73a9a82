"""One model spread over several Macs (llama.cpp RPC, exo, MLX distributed): the glue between
the catalog, the model database, the memory and speed engines and the pure layout in
`forgeplanner.engine.cluster`.

`forgeplanner cluster`, the Cluster view, plans and the recommendation search all call
`build_cluster` (or, for many sizes of the same machine, the pieces it is made of), so a
cluster has the same numbers everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from forgeplanner.domain.runtime import Runtime
from forgeplanner.errors import ForgePlannerError, NotFoundError

if TYPE_CHECKING:
    from forgeplanner.domain.estimates import HostSpec, RunOptions
    from forgeplanner.domain.hardware import MachineConfig
    from forgeplanner.domain.model import ModelSpec
    from forgeplanner.engine.cluster import ClusterPlan, LayerCosts, LinkModel, NodeSpec

LINK_IDS: tuple[str, ...] = ("1gbe", "2.5gbe", "10gbe", "tb3", "tb4", "tb5", "tb5-rdma")
# Runtimes that split one model over several machines: llama.cpp (RPC) and MLX (distributed).
CLUSTER_RUNTIMES: tuple[Runtime, ...] = (Runtime.LLAMA_CPP, Runtime.MLX)
MODES: tuple[str, ...] = ("pipeline", "tensor")
SPLITS: tuple[str, ...] = ("auto", "proportional", "fastest")
SHORT_KIND = {"mac-mini": "mini", "mac-studio": "studio"}
# One entry per node is built; a count of 10^20 ran out of memory. Real clusters are a few Macs.
MAX_NODES = 64


class ClusterError(ForgePlannerError):
    """A cluster that cannot be planned as asked (the message states the numbers)."""


@dataclass(frozen=True, slots=True)
class NodeGroup:
    """`count` identical machines of one catalog configuration."""

    config_id: str
    count: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ClusterError(f"node {self.config_id}: count must be at least 1, got {self.count}")


@dataclass(frozen=True, slots=True)
class ClusterRequest:
    """A cluster to plan: the model and quantization, the nodes in llama.cpp device order (the
    last runs llama-server), the link (None: the fastest every node has), pipeline or tensor
    parallel, the pipeline split, the context, the nodes' addresses for the commands, and the
    runtime whose memory, layer costs and speed figures the plan uses (a runtime name is
    accepted and parsed)."""

    model_id: str
    quant: str
    nodes: tuple[NodeGroup, ...]
    link_id: str | None = None
    mode: str = "pipeline"
    split: str = "auto"
    context: int = 8192
    addresses: Mapping[str, str] = field(default_factory=dict)
    runtime: Runtime = Runtime.LLAMA_CPP

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "runtime", Runtime.parse(self.runtime))
        except ValueError as exc:
            raise ClusterError(str(exc)) from None
        if self.context <= 0:
            raise ClusterError(f"--context must be a positive number of tokens, got {self.context}")
        if self.mode not in MODES:
            raise ClusterError(f"mode '{self.mode}' unknown; valid: {', '.join(MODES)}")
        if self.split not in SPLITS:
            raise ClusterError(f"split '{self.split}' unknown; valid: {', '.join(SPLITS)}")
        if self.runtime not in CLUSTER_RUNTIMES:
            raise ClusterError(
                f"runtime '{self.runtime}' does not split a model over machines; valid: "
                f"{', '.join(CLUSTER_RUNTIMES)}"
            )


@dataclass(frozen=True, slots=True)
class ClusterResult:
    plan: ClusterPlan
    commands: tuple[Any, ...]  # engine.cluster_commands.LaunchCommand
    link_default_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.plan.to_dict()
        d["commands"] = [c.to_dict() for c in self.commands]
        if self.link_default_reason:
            d["link_default"] = self.link_default_reason
        return d


def expand_nodes(groups: Sequence[NodeGroup], catalog: Any) -> list[tuple[str, MachineConfig]]:
    """[(name, MachineConfig)] in the order given; names like mini-1, mini-2, studio-1."""
    out: list[tuple[str, MachineConfig]] = []
    per_kind: dict[str, int] = {}
    for group in groups:
        if len(out) + group.count > MAX_NODES:
            raise ClusterError(f"more than {MAX_NODES} nodes in one cluster")
        if group.config_id not in catalog.configs:
            raise NotFoundError("machine configuration", group.config_id, sorted(catalog.configs))
        cfg = catalog.configs[group.config_id]
        short = SHORT_KIND.get(cfg.kind, cfg.kind)
        for _ in range(group.count):
            per_kind[short] = per_kind.get(short, 0) + 1
            out.append((f"{short}-{per_kind[short]}", cfg))
    if not out:
        raise ClusterError("give at least one --node")
    return out


_TB_LEVEL = {"TB5": 3, "TB4": 2, "USB4": 2, "TB3": 1}
_LINK_TB_LEVEL = {"tb3": 1, "tb4": 2, "tb5": 3, "tb5-rdma": 3}
_TB_LINK = {3: "tb5", 2: "tb4", 1: "tb3"}


def default_link(configs: Sequence[MachineConfig]) -> tuple[str, str]:
    """The fastest IP link every node has: Thunderbolt Bridge at the lowest common version."""
    levels = [_TB_LEVEL.get((c.thunderbolt or "").upper(), 0) for c in configs]
    link = _TB_LINK.get(min(levels), "1gbe")
    return link, (
        f"--link not given: {link}, the fastest link every node has "
        f"({', '.join(sorted({c.thunderbolt or 'no Thunderbolt' for c in configs}))})"
    )


def link_the_nodes_can_run(
    link_id: str, nodes: Sequence[tuple[str, MachineConfig]]
) -> tuple[str, str | None]:
    """(link id used for the numbers, why it differs from the one asked for, or None).

    A Thunderbolt cable runs at the older end's version, so IP over Thunderbolt 5 between a
    TB5 and a TB4 machine is Thunderbolt 4; RDMA needs Thunderbolt 5 on every node (network.csv)
    and cannot fall back, so it is refused with the links these nodes do have.
    """
    want = _LINK_TB_LEVEL.get(link_id)
    if want is None:  # Ethernet: topology_notes names the nodes without 10GbE
        return link_id, None
    levels = [(name, cfg, _TB_LEVEL.get((cfg.thunderbolt or "").upper(), 0)) for name, cfg in nodes]
    lowest = min(level for _, _, level in levels)
    if lowest >= want:
        return link_id, None
    slow = ", ".join(
        f"{name} ({cfg.thunderbolt or 'no Thunderbolt'})" for name, cfg, lvl in levels if lvl < want
    )
    if link_id == "tb5-rdma" or lowest == 0:
        valid = [tb for tb, lvl in _LINK_TB_LEVEL.items() if lvl <= lowest and tb != "tb5-rdma"]
        # Apple's 10GbE ports are multi-gigabit (they also run 2.5GbE); 1GbE every Mac has.
        fast = [max(cfg.ethernet_gbps or (1,)) for _, cfg in nodes]
        valid += ["1gbe"] + [e for e, g in (("2.5gbe", 2.5), ("10gbe", 10)) if min(fast) >= g]
        raise ClusterError(
            f"--link {link_id} needs {'Thunderbolt 5' if want == 3 else link_id.upper()} on "
            f"every node; {slow} ha{'s' if slow.count('(') == 1 else 've'} less; "
            f"valid for these nodes: {', '.join(valid)}"
        )
    used = _TB_LINK[lowest]
    return used, (
        f"--link {link_id}: {slow} ha{'s' if slow.count('(') == 1 else 've'} an older "
        f"Thunderbolt, so the link runs as {used} (the slower end's speed); numbers use {used}"
    )


def resolve_link(
    link_id: str | None, nodes: Sequence[tuple[str, MachineConfig]], catalog: Any
) -> tuple[LinkModel | None, str | None]:
    """The link model the numbers use, and why it is not the one asked for (or None)."""
    from forgeplanner.engine.cluster import link_model_from_spec

    reason = None
    if link_id is None and len(nodes) > 1:
        link_id, reason = default_link([cfg for _, cfg in nodes])
    if link_id is None:
        return None, None
    if link_id not in catalog.links:
        raise NotFoundError("link", link_id, sorted(catalog.links))
    if reason is None and len(nodes) > 1:
        link_id, reason = link_the_nodes_can_run(link_id, nodes)
    return link_model_from_spec(catalog.links[link_id]), reason


def single_node_seconds(
    model: ModelSpec, quant: str, host: HostSpec, options: RunOptions
) -> tuple[float | None, float | None]:
    """Seconds per token (decode, prefill) of the whole model on this host alone, from the
    speed engine, or None when the host's bandwidth/compute is unknown."""
    from forgeplanner.engine.estimate import speed_estimate

    speed = speed_estimate(model, quant, host, options)
    if speed is None or not speed.decode_tps or not speed.prefill_tps:
        return None, None
    return 1.0 / speed.decode_tps, 1.0 / speed.prefill_tps


def node_spec(
    name: str,
    cfg: MachineConfig,
    host: HostSpec,
    seconds: tuple[float | None, float | None],
) -> NodeSpec:
    """The layout engine's view of one node: its GPU budget, its whole-model speed
    (`single_node_seconds`) and its ports."""
    from forgeplanner.engine.budget import gpu_budget
    from forgeplanner.engine.cluster import NodeSpec

    decode_s, prefill_s = seconds
    return NodeSpec(
        name=name,
        config_id=cfg.id,
        budget=gpu_budget(host),
        decode_s_per_token=decode_s,
        prefill_s_per_token=prefill_s,
        is_apple_silicon=host.is_apple_silicon,
        thunderbolt=cfg.thunderbolt,
        thunderbolt_ports=cfg.thunderbolt_ports,
        ethernet_gbps=tuple(cfg.ethernet_gbps),
    )


def run_options(context: int, runtime: Runtime = Runtime.LLAMA_CPP) -> RunOptions:
    """The run options of a cluster plan (the runtime's defaults)."""
    from forgeplanner.domain.estimates import RunOptions

    try:
        return RunOptions(context=context, runtime=runtime)
    except ValueError as exc:
        raise ClusterError(str(exc)) from None


def cluster_costs(
    model: ModelSpec, quant: str, options: RunOptions, *, apple_gpu: bool = True
) -> LayerCosts:
    """Per-layer weights, KV cache and work of the model under `options.runtime`
    (engine.cluster_costs); `apple_gpu`: every node runs the Metal backend (llama.cpp's
    flash-attention default, hence its compute buffer, depends on it)."""
    from forgeplanner.engine.cluster_costs import layer_costs

    try:
        return layer_costs(model, quant, options, apple_gpu=apple_gpu)
    except ValueError as exc:
        raise ClusterError(str(exc)) from None


def build_cluster(request: ClusterRequest, *, catalog: Any = None) -> ClusterResult:
    from forgeplanner.engine import memory
    from forgeplanner.engine.cluster_commands import all_commands
    from forgeplanner.host import host_from_config
    from forgeplanner.services.models import find_model

    if catalog is None:
        from catalog import load_catalog

        catalog = load_catalog()
    model = find_model(request.model_id)
    nodes = expand_nodes(request.nodes, catalog)
    options = run_options(request.context, request.runtime)
    # Identical machines share one host and one speed estimate.
    hosts = {cfg.id: host_from_config(cfg.id) for _, cfg in nodes}
    if request.runtime is Runtime.MLX:
        others = sorted(cid for cid, h in hosts.items() if not h.is_apple_silicon)
        if others:
            raise ClusterError(f"runtime mlx runs on Apple Silicon only; not: {', '.join(others)}")
    apple = all(memory.apple_gpu(h) for h in hosts.values())
    costs = cluster_costs(model, request.quant, options, apple_gpu=apple)
    link, link_reason = resolve_link(request.link_id, nodes, catalog)
    seconds = {
        cid: single_node_seconds(model, request.quant, h, options) for cid, h in hosts.items()
    }
    specs = [node_spec(name, cfg, hosts[cfg.id], seconds[cfg.id]) for name, cfg in nodes]
    try:
        plan = plan_layout(costs, specs, link, request.mode, request.split, options)
        commands = all_commands(
            plan, dict(request.addresses), model_path=f"{model.id}-{request.quant}.gguf"
        )
    except ValueError as exc:
        raise ClusterError(str(exc)) from None
    return ClusterResult(plan=plan, commands=tuple(commands), link_default_reason=link_reason)


def cluster_need_bytes(costs: LayerCosts, n_nodes: int) -> int:
    """What a pipeline of `n_nodes` needs in all, whatever the split: every layer (weights and
    KV cache) and every node's fixed part (engine.cluster.pipeline_fixed_bytes)."""
    from forgeplanner.engine.cluster import pipeline_fixed_bytes

    need = sum(costs.layer_weights_bytes) + sum(costs.layer_kv_bytes)
    return need + sum(pipeline_fixed_bytes(costs, i, n_nodes)[0] for i in range(n_nodes))


def plan_layout(
    costs: LayerCosts,
    specs: Sequence[NodeSpec],
    link: LinkModel | None,
    mode: str,
    split: str,
    options: RunOptions,
    *,
    note_idle: bool = True,
) -> ClusterPlan:
    """auto: the fastest split that gives every listed node layers; if none fits, the
    proportional split (its per-node verdicts show what is missing). When leaving nodes out
    would be faster, the plan says so (`note_idle`; a second layout search). ValueError when
    the layout engine refuses.

    The fastest split keeps every node within its GPU limit, so when the cluster's total need
    is more than the limits add up to, there is none and the search is skipped: the same
    proportional plan, without the layout search's cost (O(nodes x layers^2))."""
    from forgeplanner.engine.cluster import plan_cluster

    kw = {"prompt_tokens": options.prompt_tokens, "n_ubatch": options.n_ubatch}
    if mode != "pipeline" or split != "auto":
        return plan_cluster(costs, specs, link, mode, split if split != "auto" else "fastest", **kw)
    limits = sum(s.budget.gpu_limit_bytes for s in specs)
    if cluster_need_bytes(costs, len(specs)) > limits:
        return plan_cluster(costs, specs, link, "pipeline", "proportional", **kw)
    try:
        plan = plan_cluster(costs, specs, link, "pipeline", "fastest", use_all_nodes=True, **kw)
    except ValueError:
        return plan_cluster(costs, specs, link, "pipeline", "proportional", **kw)
    if not note_idle:
        return plan
    try:
        best = plan_cluster(costs, specs, link, "pipeline", "fastest", **kw)
    except ValueError:
        return plan
    if plan.decode_tps and best.decode_tps and best.decode_tps > plan.decode_tps * 1.005:
        idle = [n.name for n in best.nodes if n.n_layers == 0]
        if idle:
            note = (
                f"leaving out {', '.join(idle)} would be faster: {best.decode_tps:.2f} vs "
                f"{plan.decode_tps:.2f} tok/s (--split fastest); the network hop costs more "
                "than those nodes save, so keep them only for the memory (longer context)"
            )
            plan = replace(plan, notes=(*plan.notes, note))
    return plan
