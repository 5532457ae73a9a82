"""Inference clusters: one model spread over several Macs (pipeline or tensor parallel).

Pure functions over small inputs, so the layout logic is testable without the catalog:

- `LayerCosts`: what one model x quantization x run options costs per layer (weights, KV cache,
  bytes read per token) plus the parts that live on one node only (token embedding, output head)
  and per-process overheads (compute buffer, runtime). `cluster_costs.layer_costs` builds it from
  the memory engine, so a 1-node cluster equals `forgeplanner estimate` for that machine.
- `NodeSpec`: a node's name, its GPU budget (the memory engine's `gpu_budget`), and how long the
  whole model would take per token on it alone (the speed engine's estimate). A node's stage
  time is that time scaled by the share of the per-token work its layers do, so the speed model
  is the engine's, not a second one.
- `LinkModel`: bandwidth and round-trip latency of the link between nodes.

Placement follows llama.cpp's RPC backend (read in llama.cpp `src/llama.cpp`,
`llama_model_load_from_file_impl`: "add RPC servers at the front of the list"; and
`src/llama-model.cpp`, `load_tensors`: the input layer stays on the CPU of the process, the
output layer goes with the last device). So in node order the last node is the machine that
runs `llama-server`; it holds the last layers, the output head, and (in its CPU memory, which on
unified memory is the same RAM) the token embedding table.

Errors are ValueErrors that state the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from forgeplanner.domain.estimates import (
    VERDICT_FITS,
    VERDICT_NO,
    VERDICT_RAISED,
    GpuBudget,
)
from forgeplanner.domain.network import LinkSpec
from forgeplanner.domain.units import fmt_gib
from forgeplanner.engine.cluster_split import (
    StageCosts,
    bounds,
    fastest_contiguous_split,
    largest_remainder,
)
from forgeplanner.engine.fit import verdict_for

MODES: tuple[str, ...] = ("pipeline", "tensor")
SPLITS: tuple[str, ...] = ("proportional", "fastest")

# Bytes per activation element crossing a link.
# llama.cpp keeps the residual stream in F32 between backends (ggml graph tensors `inpL`/`cur`
# are GGML_TYPE_F32; the scheduler copies them as they are), so a pipeline hop moves hidden x 4.
LLAMACPP_ACTIVATION_BYTES = 4
# MLX distributed (mlx-lm sharded / pipeline generate) communicates activations in the model's
# compute dtype, bf16/fp16: hidden x 2 bytes.
MLX_ACTIVATION_BYTES = 2


@dataclass(frozen=True, slots=True)
class LayerCosts:
    """One model x quantization x options, per repeating layer and per fixed part."""

    model_id: str
    quant: str
    context: int
    hidden_size: int
    n_heads: int
    n_kv_heads: int
    layer_weights_bytes: tuple[int, ...]
    layer_kv_bytes: tuple[int, ...]  # KV cache (and recurrent state) per layer at `context`
    input_bytes: int  # token embedding table (kept on the CPU of the llama-server host)
    output_bytes: int  # output norm + output head (with the last device)
    compute_bytes: int  # compute buffer of one device (llama.cpp allocates one per backend)
    runtime_bytes: int  # per-process runtime overhead
    # Per-token work shares: bytes read per decoded token per layer (active weights + KV at
    # depth) and for the output head; prefill work per layer (weights x 2 FLOP/param + attention).
    layer_read_bytes: tuple[float, ...] = ()
    output_read_bytes: float = 0.0
    layer_prefill_work: tuple[float, ...] = ()
    output_prefill_work: float = 0.0

    def __post_init__(self) -> None:
        n = len(self.layer_weights_bytes)
        if n == 0:
            raise ValueError("a model needs at least one layer")
        if len(self.layer_kv_bytes) != n:
            raise ValueError(f"layer_kv_bytes has {len(self.layer_kv_bytes)} entries, expected {n}")
        for name in ("layer_read_bytes", "layer_prefill_work"):
            v = getattr(self, name)
            if v and len(v) != n:
                raise ValueError(f"{name} has {len(v)} entries, expected {n}")

    @property
    def n_layers(self) -> int:
        return len(self.layer_weights_bytes)

    @property
    def read_shares(self) -> tuple[tuple[float, ...], float]:
        """Per-layer and output-head shares of the bytes read per decoded token (sum 1)."""
        layers = self.layer_read_bytes or tuple(
            float(w + k) for w, k in zip(self.layer_weights_bytes, self.layer_kv_bytes, strict=True)
        )
        out = self.output_read_bytes if self.layer_read_bytes else float(self.output_bytes)
        total = sum(layers) + out
        return tuple(x / total for x in layers), out / total

    @property
    def prefill_shares(self) -> tuple[tuple[float, ...], float]:
        layers = self.layer_prefill_work or tuple(float(w) for w in self.layer_weights_bytes)
        out = self.output_prefill_work if self.layer_prefill_work else float(self.output_bytes)
        total = sum(layers) + out
        return tuple(x / total for x in layers), out / total


@dataclass(frozen=True, slots=True)
class NodeSpec:
    name: str
    config_id: str | None
    budget: GpuBudget
    # The whole model on this node alone, from the speed engine (None = speed unknown).
    decode_s_per_token: float | None = None
    prefill_s_per_token: float | None = None
    is_apple_silicon: bool = True
    thunderbolt: str = ""  # "TB5", "TB4", ...
    thunderbolt_ports: int = 0
    ethernet_gbps: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkModel:
    id: str
    name: str
    bandwidth_bytes_per_s: float
    bandwidth_basis: str
    round_trip_s: float  # one request/response at the application level
    latency_basis: str
    transport: str = "tcp"  # "tcp" | "rdma"
    medium: str = "ethernet"  # "ethernet" | "thunderbolt"
    topology: str = "switched"
    os_requirement: str = ""
    notes: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "bandwidth_bytes_per_s": self.bandwidth_bytes_per_s,
            "bandwidth_basis": self.bandwidth_basis,
            "round_trip_s": self.round_trip_s,
            "latency_basis": self.latency_basis,
            "transport": self.transport,
        }


# Application-level exchange (request + reply) latency, measured, from
# ../shared/reference/network.csv row "RDMA over TB vs TCP/IP (application-level)": TCP/IP
# ~300 us per exchange, RDMA < 50 us (Jeff Geerling, exo 1.0 tensor parallel, 4x Mac Studio
# M3 Ultra, macOS 26.2). The link's own latency (e.g. ib_send_lat 4.15 us one-way) is a floor
# under this: what llama.cpp and MLX see includes their software stack.
TCP_EXCHANGE_S = 300e-6
RDMA_EXCHANGE_S = 50e-6
EXCHANGE_SOURCE = (
    "network.csv 'RDMA over TB vs TCP/IP (application-level)': TCP ~300 us, RDMA <50 us per "
    "exchange (jeffgeerling.com, exo 1.0, 4x Mac Studio M3 Ultra, macOS 26.2)"
)


def link_model_from_spec(spec: LinkSpec) -> LinkModel:
    """The catalog's link -> what the cluster model needs (bandwidth, round trip, basis)."""
    bw = spec.effective_bandwidth_bytes_per_s
    if not bw:
        raise ValueError(
            f"link {spec.id}: bandwidth unknown ({spec.nominal_bandwidth_bytes_per_s.reason})"
        )
    measured = spec.measured_bandwidth_bytes_per_s
    if measured.value is not None:
        bw_basis = f"measured {float(measured.value) * 8 / 1e9:.1f} Gb/s ({measured.source})"
    else:
        nom = spec.nominal_bandwidth_bytes_per_s
        gbit = float(nom.value) * 8 / 1e9
        bw_basis = f"nominal {gbit:.1f} Gb/s line rate ({nom.source}); no measured figure"
    rdma = spec.transport == "rdma"
    app = RDMA_EXCHANGE_S if rdma else TCP_EXCHANGE_S
    rt = app
    lat_basis = f"application-level exchange {app * 1e6:.0f} us ({EXCHANGE_SOURCE})"
    if spec.latency_s.value is not None:
        # The catalog's latency is an exchange for some links (TB5 TCP: 300 us in exo) and a
        # one-way verbs figure for others (RDMA ib_send_lat 4.15 us); taking the larger of it
        # and the application-level exchange never under-counts.
        own = float(spec.latency_s.value)
        if own > app:
            rt = own
            lat_basis = f"{own * 1e6:.0f} us per exchange ({spec.latency_s.source})"
        else:
            lat_basis += f"; link's own figure {own * 1e6:.2f} us ({spec.latency_s.source})"
    return LinkModel(
        id=spec.id,
        name=spec.name,
        bandwidth_bytes_per_s=float(bw),
        bandwidth_basis=bw_basis,
        round_trip_s=rt,
        latency_basis=lat_basis,
        transport=spec.transport,
        medium=spec.medium,
        topology=spec.topology,
        os_requirement=spec.os_requirement,
        notes=spec.notes,
    )


@dataclass(frozen=True, slots=True)
class NodePlan:
    name: str
    config_id: str | None
    layers: tuple[int, int]  # [start, end)
    weights_bytes: int
    kv_cache_bytes: int
    compute_bytes: int
    runtime_bytes: int
    gpu_limit_bytes: int
    max_raisable_limit_bytes: int
    verdict: str
    holds: tuple[str, ...]  # "token_embd", "output", ...
    decode_stage_s: float | None
    prefill_stage_s: float | None
    is_apple_silicon: bool = True

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes + self.runtime_bytes

    @property
    def headroom_bytes(self) -> int:
        return self.gpu_limit_bytes - self.total_bytes

    @property
    def n_layers(self) -> int:
        return self.layers[1] - self.layers[0]

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "config_id": self.config_id,
            "layers": list(self.layers),
            "weights_bytes": self.weights_bytes,
            "kv_cache_bytes": self.kv_cache_bytes,
            "compute_bytes": self.compute_bytes,
            "runtime_bytes": self.runtime_bytes,
            "total_bytes": self.total_bytes,
            "gpu_limit_bytes": self.gpu_limit_bytes,
            "headroom_bytes": self.headroom_bytes,
            "verdict": self.verdict,
            "holds": list(self.holds),
            "decode_stage_s": self.decode_stage_s,
            "prefill_stage_s": self.prefill_stage_s,
        }


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    model_id: str
    quant: str
    context: int
    mode: str
    split: str
    nodes: tuple[NodePlan, ...]
    link: LinkModel | None
    decode_tps: float | None
    prefill_tps: float | None
    network_s_per_token: float
    verdict: str  # worst node verdict
    adds_speed: bool | None  # None when speeds are unknown
    summary: str  # the plain sentence about capacity vs speed
    notes: tuple[str, ...] = field(default_factory=tuple)
    tensor_split: tuple[int, ...] = ()  # llama.cpp --tensor-split values (pipeline mode)

    def to_dict(self) -> dict[str, object]:
        return {
            "model_id": self.model_id,
            "quant": self.quant,
            "context": self.context,
            "mode": self.mode,
            "split": self.split,
            "nodes": [n.to_dict() for n in self.nodes],
            "link": None if self.link is None else self.link.to_dict(),
            "decode_tps": self.decode_tps,
            "prefill_tps": self.prefill_tps,
            "network_s_per_token": self.network_s_per_token,
            "verdict": self.verdict,
            "adds_speed": self.adds_speed,
            "summary": self.summary,
            "notes": list(self.notes),
            "tensor_split": list(self.tensor_split),
        }


# -- verdicts ---------------------------------------------------------------------------------


def node_verdict(total_bytes: int, budget: GpuBudget, apple: bool = True) -> str:
    """The single-machine rule (engine.fit.verdict_for): within the GPU limit fits; on Apple
    Silicon within the highest limit worth raising to fits with a raised limit; else no."""
    return verdict_for(total_bytes, budget, apple)


_VERDICT_RANK = {VERDICT_FITS: 0, VERDICT_RAISED: 1, VERDICT_NO: 2}


def worst_verdict(verdicts: Sequence[str]) -> str:
    return max(verdicts, key=lambda v: _VERDICT_RANK[v])


# -- pipeline ---------------------------------------------------------------------------------


def _check_nodes(nodes: Sequence[NodeSpec]) -> None:
    if not nodes:
        raise ValueError("a cluster needs at least one node")
    names = [n.name for n in nodes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"node names must be unique; repeated: {', '.join(dupes)}")


def pipeline_fixed_bytes(
    costs: LayerCosts, index: int, n_nodes: int
) -> tuple[int, tuple[str, ...]]:
    """Memory a node needs whatever layers it holds, and the fixed parts it holds.

    The last node runs llama-server: token embedding (CPU buffer, same unified memory) and the
    output head. Every node has its own compute buffer and runtime (one process each).
    """
    fixed = costs.compute_bytes + costs.runtime_bytes
    holds: list[str] = []
    if index == n_nodes - 1:
        fixed += costs.input_bytes + costs.output_bytes
        holds += ["token_embd", "output"]
    return fixed, tuple(holds)


def proportional_counts(costs: LayerCosts, nodes: Sequence[NodeSpec]) -> tuple[int, ...]:
    """Layers proportional to each node's GPU budget (largest remainder)."""
    return largest_remainder(costs.n_layers, [n.budget.gpu_limit_bytes for n in nodes])


def rpc_stage_overhead_s(costs: LayerCosts, link: LinkModel, tokens: int = 1) -> float:
    """Per remote llama.cpp RPC stage and step of `tokens` tokens: one round trip plus the
    activations in and out (see plan_pipeline)."""
    act = costs.hidden_size * LLAMACPP_ACTIVATION_BYTES * tokens
    return link.round_trip_s + 2 * act / link.bandwidth_bytes_per_s


def fastest_counts(
    costs: LayerCosts,
    nodes: Sequence[NodeSpec],
    link: LinkModel | None = None,
    use_all_nodes: bool = False,
) -> tuple[int, ...]:
    """The split with the least per-token time that fits every node's GPU limit."""
    if any(n.decode_s_per_token is None for n in nodes):
        unknown = [n.name for n in nodes if n.decode_s_per_token is None]
        raise ValueError(
            f"the fastest split needs each node's speed; unknown for {', '.join(unknown)}"
        )
    shares, _ = costs.read_shares
    layer_bytes = [
        w + k for w, k in zip(costs.layer_weights_bytes, costs.layer_kv_bytes, strict=True)
    ]
    hop = rpc_stage_overhead_s(costs, link) if link is not None else 0.0
    stages = []
    for i, node in enumerate(nodes):
        fixed, _ = pipeline_fixed_bytes(costs, i, len(nodes))
        t = float(node.decode_s_per_token)  # type: ignore[arg-type]
        stages.append(
            StageCosts(
                layer_seconds=tuple(s * t for s in shares),
                fixed_bytes=fixed,
                budget_bytes=node.budget.gpu_limit_bytes,
                # the llama-server host (last) is never a remote hop
                overhead_s=hop if i < len(nodes) - 1 else 0.0,
            )
        )
    # Without use_all_nodes a node whose hop costs more than its layers save is left idle
    # (said so in the notes).
    counts = fastest_contiguous_split(layer_bytes, stages, min_layers=1 if use_all_nodes else 0)
    if counts is None:
        need = sum(layer_bytes) + sum(
            pipeline_fixed_bytes(costs, i, len(nodes))[0] for i in range(len(nodes))
        )
        have = sum(n.budget.gpu_limit_bytes for n in nodes)
        raise ValueError(
            f"no split of {costs.n_layers} layers fits: the cluster needs {fmt_gib(need)} "
            f"in all (weights, KV cache, a compute buffer and runtime per node), the GPU limits "
            f"add up to {fmt_gib(have)}"
            + ("" if need > have else "; the layers are too large for the smaller nodes")
        )
    return counts


def _llamacpp_tensor_split(counts: Sequence[int]) -> tuple[int, ...]:
    """--tensor-split values that make llama.cpp place exactly these layer ranges.

    llama.cpp assigns layer il to the first device whose cumulative split fraction exceeds
    il / (n_layer + 1) (the +1 is the output layer, offloaded with -ngl >= n_layer + 1;
    `load_tensors` in src/llama-model.cpp). Giving the last device one extra unit for the output
    layer makes the cumulative fractions land exactly on the planned boundaries.
    """
    out = list(counts)
    out[-1] += 1
    return tuple(out)


def plan_pipeline(
    costs: LayerCosts,
    nodes: Sequence[NodeSpec],
    link: LinkModel | None,
    split: str = "proportional",
    prompt_tokens: int = 512,
    n_ubatch: int = 512,
    use_all_nodes: bool = False,
) -> ClusterPlan:
    """Layer split over the nodes in order. split "fastest" minimises time per token under
    memory; with use_all_nodes every node keeps at least one layer, otherwise nodes whose hop
    costs more than they save are left idle."""
    _check_nodes(nodes)
    if split not in SPLITS:
        raise ValueError(f"split '{split}' unknown; valid: {', '.join(SPLITS)}")
    if len(nodes) > costs.n_layers:
        raise ValueError(
            f"{len(nodes)} nodes but {costs.model_id} has only {costs.n_layers} layers; "
            "each pipeline node needs at least one"
        )
    if len(nodes) > 1 and link is None:
        raise ValueError("a cluster of more than one node needs a link type")
    counts = (
        proportional_counts(costs, nodes)
        if split == "proportional"
        else fastest_counts(costs, nodes, link, use_all_nodes)
    )
    ranges = bounds(counts)
    read_shares, out_read = costs.read_shares
    pre_shares, out_pre = costs.prefill_shares
    plans: list[NodePlan] = []
    n = len(nodes)
    for i, (node, (start, end)) in enumerate(zip(nodes, ranges, strict=True)):
        fixed_holds = pipeline_fixed_bytes(costs, i, n)[1]
        weights = sum(costs.layer_weights_bytes[start:end])
        if i == n - 1:
            weights += costs.input_bytes + costs.output_bytes
        kv = sum(costs.layer_kv_bytes[start:end])
        dshare = sum(read_shares[start:end]) + (out_read if i == n - 1 else 0.0)
        pshare = sum(pre_shares[start:end]) + (out_pre if i == n - 1 else 0.0)
        total = weights + kv + costs.compute_bytes + costs.runtime_bytes
        plans.append(
            NodePlan(
                name=node.name,
                config_id=node.config_id,
                layers=(start, end),
                weights_bytes=weights,
                kv_cache_bytes=kv,
                compute_bytes=costs.compute_bytes,
                runtime_bytes=costs.runtime_bytes,
                gpu_limit_bytes=node.budget.gpu_limit_bytes,
                max_raisable_limit_bytes=node.budget.max_raisable_limit_bytes,
                verdict=node_verdict(total, node.budget, node.is_apple_silicon),
                holds=fixed_holds,
                decode_stage_s=None
                if node.decode_s_per_token is None
                else node.decode_s_per_token * dshare,
                prefill_stage_s=None
                if node.prefill_s_per_token is None
                else node.prefill_s_per_token * pshare,
                is_apple_silicon=node.is_apple_silicon,
            )
        )

    # Network: llama.cpp RPC. Per token and per remote node the host sends the activations in
    # (SET_TENSOR, asynchronous), starts the graph (GRAPH_COMPUTE, asynchronous) and reads the
    # result back (GET_TENSOR, waits for the reply): one round trip and the activations twice
    # (ggml-rpc.cpp, rpc_dispatcher; a copy between two RPC servers goes through the host).
    # A node given no layers (a tiny budget in the proportional split) does no stage.
    remote = sum(1 for p in plans[:-1] if p.n_layers > 0)
    act = costs.hidden_size * LLAMACPP_ACTIVATION_BYTES
    net_decode = 0.0
    net_prefill_per_ubatch = 0.0
    if remote and link is not None:
        net_decode = remote * rpc_stage_overhead_s(costs, link)
        ub = min(n_ubatch, prompt_tokens)
        net_prefill_per_ubatch = remote * rpc_stage_overhead_s(costs, link, ub)
    decode_tps = prefill_tps = None
    if all(p.decode_stage_s is not None for p in plans):
        decode_tps = 1.0 / (sum(p.decode_stage_s for p in plans) + net_decode)  # type: ignore[misc]
    if all(p.prefill_stage_s is not None for p in plans):
        # Stages run one after another for each micro-batch (RPC backends have no events, so
        # llama.cpp does not overlap pipeline stages across micro-batches).
        n_ub = math.ceil(prompt_tokens / n_ubatch)
        t = prompt_tokens * sum(p.prefill_stage_s for p in plans) + n_ub * net_prefill_per_ubatch  # type: ignore[misc]
        prefill_tps = prompt_tokens / t

    verdict = worst_verdict([p.verdict for p in plans])
    adds_speed, summary = _speed_summary(costs, nodes, plans, decode_tps, "pipeline")
    notes = list(topology_notes(nodes, link))
    non_apple = [p.name for p in plans if not p.is_apple_silicon]
    if non_apple:
        notes.append(
            "MLX and exo need Apple Silicon, so only llama.cpp RPC commands are given "
            f"(not Apple Silicon: {', '.join(non_apple)})"
        )
    idle = [p.name for p in plans if p.n_layers == 0]
    if idle:
        why = (
            "reaching them costs more time than their layers would save"
            if split == "fastest"
            else "their share of the GPU budgets rounds to zero layers"
        )
        notes.append(f"{', '.join(idle)} get(s) no layers: {why}; leave them out")
    if n > 1:
        notes.append(
            f"pipeline network cost per token: {remote} remote stage(s) x (one round trip "
            f"{_us(link.round_trip_s if link else 0)} + 2 x {act} B activations) = "
            f"{net_decode * 1e3:.3f} ms"
        )
    return ClusterPlan(
        model_id=costs.model_id,
        quant=costs.quant,
        context=costs.context,
        mode="pipeline",
        split=split,
        nodes=tuple(plans),
        link=link,
        decode_tps=decode_tps,
        prefill_tps=prefill_tps,
        network_s_per_token=net_decode,
        verdict=verdict,
        adds_speed=adds_speed,
        summary=summary,
        notes=tuple(notes),
        tensor_split=_llamacpp_tensor_split(counts),
    )


# -- tensor parallel --------------------------------------------------------------------------


def check_tensor_parallel(costs: LayerCosts, n_nodes: int) -> None:
    """Heads and KV heads are split over the nodes, so both must divide by the node count."""
    bad = []
    if costs.n_heads % n_nodes:
        bad.append(f"{costs.n_heads} attention heads")
    if costs.n_kv_heads % n_nodes:
        bad.append(f"{costs.n_kv_heads} KV heads")
    if bad:
        raise ValueError(
            f"tensor parallel over {n_nodes} nodes needs the heads and KV heads to divide by "
            f"{n_nodes}; {costs.model_id} has {' and '.join(bad)} "
            f"({costs.n_heads} heads, {costs.n_kv_heads} KV heads)"
        )


def ring_all_reduce_s(size_bytes: float, n: int, link: LinkModel) -> float:
    """Ring all-reduce of `size_bytes` over n nodes: 2(n-1) steps, each a one-way message
    (half a round trip) carrying size/n bytes (reduce-scatter then all-gather; MLX's ring
    backend does this, mlx/distributed/ring)."""
    if n <= 1:
        return 0.0
    steps = 2 * (n - 1)
    return steps * (link.round_trip_s / 2 + size_bytes / n / link.bandwidth_bytes_per_s)


def plan_tensor(
    costs: LayerCosts,
    nodes: Sequence[NodeSpec],
    link: LinkModel | None,
    prompt_tokens: int = 512,
    n_ubatch: int = 512,
) -> ClusterPlan:
    """Every node holds 1/N of each layer (its heads, its slice of the FFN) and 1/N of the KV
    cache; the embedding and output head are replicated (mlx-lm shards only the attention and
    MLP projections). Two all-reduces per layer of hidden x 2 bytes per token."""
    _check_nodes(nodes)
    n = len(nodes)
    check_tensor_parallel(costs, n)
    intel = [node.name for node in nodes if not node.is_apple_silicon]
    if intel:
        raise ValueError(
            "tensor parallel runs on MLX distributed or exo, which need Apple Silicon; "
            f"not Apple Silicon: {', '.join(intel)} (use --mode pipeline: llama.cpp RPC)"
        )
    if n > 1 and link is None:
        raise ValueError("a cluster of more than one node needs a link type")
    weights_share = sum(costs.layer_weights_bytes) // n + costs.input_bytes + costs.output_bytes
    kv_share = sum(costs.layer_kv_bytes) // n
    read_shares, out_read = costs.read_shares
    pre_shares, out_pre = costs.prefill_shares
    dshare = sum(read_shares) / n + out_read
    pshare = sum(pre_shares) / n + out_pre
    plans = []
    for node in nodes:
        total = weights_share + kv_share + costs.compute_bytes + costs.runtime_bytes
        plans.append(
            NodePlan(
                name=node.name,
                config_id=node.config_id,
                layers=(0, costs.n_layers),
                weights_bytes=weights_share,
                kv_cache_bytes=kv_share,
                compute_bytes=costs.compute_bytes,
                runtime_bytes=costs.runtime_bytes,
                gpu_limit_bytes=node.budget.gpu_limit_bytes,
                max_raisable_limit_bytes=node.budget.max_raisable_limit_bytes,
                verdict=node_verdict(total, node.budget, node.is_apple_silicon),
                holds=("token_embd", "output", f"1/{n} of every layer"),
                decode_stage_s=None
                if node.decode_s_per_token is None
                else node.decode_s_per_token * dshare,
                prefill_stage_s=None
                if node.prefill_s_per_token is None
                else node.prefill_s_per_token * pshare,
                is_apple_silicon=node.is_apple_silicon,
            )
        )
    act = costs.hidden_size * MLX_ACTIVATION_BYTES
    net_decode = net_prefill = 0.0
    if n > 1 and link is not None:
        net_decode = 2 * costs.n_layers * ring_all_reduce_s(act, n, link)
        ub = min(n_ubatch, prompt_tokens)
        net_prefill = (
            math.ceil(prompt_tokens / ub)
            * 2
            * costs.n_layers
            * ring_all_reduce_s(act * ub, n, link)
        )
    decode_tps = prefill_tps = None
    if all(p.decode_stage_s is not None for p in plans):
        # Nodes work in parallel; every all-reduce waits for the slowest.
        decode_tps = 1.0 / (max(p.decode_stage_s for p in plans) + net_decode)  # type: ignore[type-var]
    if all(p.prefill_stage_s is not None for p in plans):
        t = prompt_tokens * max(p.prefill_stage_s for p in plans) + net_prefill  # type: ignore[type-var]
        prefill_tps = prompt_tokens / t
    verdict = worst_verdict([p.verdict for p in plans])
    adds_speed, summary = _speed_summary(costs, nodes, plans, decode_tps, "tensor")
    notes = list(topology_notes(nodes, link))
    if n > 1 and link is not None:
        notes.append(
            f"tensor-parallel communication per token: 2 all-reduces x {costs.n_layers} layers, "
            f"each {2 * (n - 1)} ring steps of {_us(link.round_trip_s / 2)} latency = "
            f"{net_decode * 1e3:.2f} ms (latency-bound at decode)"
        )
        if link.transport != "rdma":
            notes.append(
                "tensor parallelism over TCP/IP is latency-bound; MLX documents its RDMA "
                "backend (JACCL, Thunderbolt 5, macOS 26.2+) as the one for tensor parallelism"
            )
    return ClusterPlan(
        model_id=costs.model_id,
        quant=costs.quant,
        context=costs.context,
        mode="tensor",
        split="equal",
        nodes=tuple(plans),
        link=link,
        decode_tps=decode_tps,
        prefill_tps=prefill_tps,
        network_s_per_token=net_decode,
        verdict=verdict,
        adds_speed=adds_speed,
        summary=summary,
        notes=tuple(notes),
    )


def plan_cluster(
    costs: LayerCosts,
    nodes: Sequence[NodeSpec],
    link: LinkModel | None,
    mode: str = "pipeline",
    split: str = "proportional",
    prompt_tokens: int = 512,
    n_ubatch: int = 512,
    use_all_nodes: bool = False,
) -> ClusterPlan:
    if mode == "pipeline":
        return plan_pipeline(costs, nodes, link, split, prompt_tokens, n_ubatch, use_all_nodes)
    if mode == "tensor":
        return plan_tensor(costs, nodes, link, prompt_tokens, n_ubatch)
    raise ValueError(f"mode '{mode}' unknown; valid: {', '.join(MODES)}")


# -- capacity vs speed ------------------------------------------------------------------------


def whole_model_bytes(costs: LayerCosts) -> int:
    """What one node needs to hold the whole model alone (the single-machine estimate)."""
    return (
        sum(costs.layer_weights_bytes)
        + costs.input_bytes
        + costs.output_bytes
        + sum(costs.layer_kv_bytes)
        + costs.compute_bytes
        + costs.runtime_bytes
    )


def _speed_summary(
    costs: LayerCosts,
    nodes: Sequence[NodeSpec],
    plans: Sequence[NodePlan],
    decode_tps: float | None,
    mode: str,
) -> tuple[bool | None, str]:
    whole = whole_model_bytes(costs)
    holders = [n for n in nodes if node_verdict(whole, n.budget, n.is_apple_silicon) != VERDICT_NO]
    known = [n for n in nodes if n.decode_s_per_token]
    if len(nodes) == 1:
        return None, "single node: no cluster overhead"
    if decode_tps is None or not known:
        if holders:
            return None, (
                f"{holders[0].name} alone can hold the model ({fmt_gib(whole)}); "
                "speeds are unknown, so whether the cluster is faster cannot be said"
            )
        return None, f"no single node holds the model ({fmt_gib(whole)}); speeds are unknown"
    fastest = min(known, key=lambda n: n.decode_s_per_token)  # type: ignore[arg-type,return-value]
    fastest_tps = 1.0 / fastest.decode_s_per_token  # type: ignore[operator]
    if holders:
        best = min(
            (n for n in holders if n.decode_s_per_token),
            key=lambda n: n.decode_s_per_token,  # type: ignore[arg-type,return-value]
            default=None,
        )
        if best is not None:
            best_tps = 1.0 / best.decode_s_per_token  # type: ignore[operator]
            if decode_tps <= best_tps:
                return False, (
                    f"the cluster adds capacity but no speed: {best.name} alone holds the model "
                    f"({fmt_gib(whole)}) and decodes at {_tps(best_tps)} tok/s; the cluster "
                    f"decodes at {_tps(decode_tps)} tok/s"
                )
            return True, (
                f"the cluster decodes at {_tps(decode_tps)} tok/s, faster than {best.name} alone "
                f"({_tps(best_tps)} tok/s)"
            )
    if mode == "pipeline":
        return False, (
            f"the cluster adds capacity but no speed: no single node holds the model "
            f"({fmt_gib(whole)}); the pipeline runs its stages one after another, so its "
            f"{_tps(decode_tps)} tok/s is below what the fastest node ({fastest.name}, "
            f"{_tps(fastest_tps)} tok/s) would do if it had the memory"
        )
    faster = decode_tps > fastest_tps
    return faster, (
        f"no single node holds the model ({fmt_gib(whole)}); tensor parallel decodes at "
        f"{_tps(decode_tps)} tok/s vs {_tps(fastest_tps)} tok/s for the fastest node if it had the "
        f"memory ({'faster' if faster else 'slower: communication eats the gain'})"
    )


# -- topology ---------------------------------------------------------------------------------


def topology_notes(nodes: Sequence[NodeSpec], link: LinkModel | None) -> tuple[str, ...]:
    """What the cabling has to look like for this link and node count."""
    n = len(nodes)
    if n <= 1 or link is None:
        return ()
    notes: list[str] = []
    if link.medium == "thunderbolt":
        notes.append(
            f"Thunderbolt links are point-to-point: a full mesh of {n} nodes needs "
            f"{n - 1} Thunderbolt port(s) per machine and {n * (n - 1) // 2} cable(s); "
            f"a chain or ring needs 2 ports per machine"
        )
        short = [
            f"{node.name} ({node.thunderbolt_ports} x {node.thunderbolt or 'TB'})"
            for node in nodes
            if node.thunderbolt_ports and node.thunderbolt_ports < n - 1
        ]
        if short:
            notes.append(
                "not enough Thunderbolt ports for a full mesh on: "
                + ", ".join(short)
                + "; use a chain (pipeline traffic only flows between neighbours) or a switch"
            )
        needs_tb5 = link.id.startswith("tb5")
        old = [
            f"{node.name} ({node.thunderbolt or 'unknown'})"
            for node in nodes
            if needs_tb5 and node.thunderbolt and node.thunderbolt.upper() != "TB5"
        ]
        if old:
            notes.append(
                f"{link.name} needs Thunderbolt 5 on every node; these have less: "
                + ", ".join(old)
                + " (the link runs at the slower end's speed)"
            )
        if link.transport == "rdma":
            notes.append(
                "RDMA over Thunderbolt 5 needs macOS 26.2 or later on every node, enabled with "
                "`rdma_ctl enable` from macOS Recovery (check with `ibv_devices`); a full mesh "
                "needs the Thunderbolt Bridge disabled (Apple TN3205; exo issue #525)"
            )
        else:
            notes.append(
                "IP over Thunderbolt uses the Thunderbolt Bridge (bridge0); in a ring or mesh "
                "the bridge makes a loop and macOS disables one of the cyclic links (exo issue "
                "#525): use point-to-point interfaces with their own subnets, or a chain"
            )
    else:
        notes.append(f"Ethernet through a switch: any number of nodes ({link.name})")
        if link.id == "10gbe":
            slow = [
                node.name for node in nodes if node.ethernet_gbps and 10 not in node.ethernet_gbps
            ]
            if slow:
                notes.append("10GbE is not available on: " + ", ".join(slow) + " (1 GbE only)")
            bto = [
                node.name
                for node in nodes
                if node.ethernet_gbps and 10 in node.ethernet_gbps and 1 in node.ethernet_gbps
            ]
            if bto:
                notes.append("10GbE is a build-to-order option on: " + ", ".join(bto))
    return tuple(notes)


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def _tps(x: float) -> str:
    """Tokens/s with enough digits to tell two close speeds apart."""
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"
