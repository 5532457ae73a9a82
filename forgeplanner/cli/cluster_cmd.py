"""`forgeplanner cluster`: one model spread over several Macs (llama.cpp RPC, exo, MLX).

    forgeplanner cluster --model ID --quant Q [--context N] --node CONFIG_ID[xCOUNT] ...
        [--link 1gbe|2.5gbe|10gbe|tb3|tb4|tb5|tb5-rdma] [--mode pipeline|tensor]
        [--split auto|proportional|fastest] [--address NAME=IP ...] [--json]

`build_cluster` is the glue between the catalog, the model database, the memory and speed
engines and the pure layout in `forgeplanner.engine.cluster`; the desktop view calls it too.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from typing import Any

from forgeplanner.cli import argtypes
from forgeplanner.cli.output import add_json_flag, print_json, print_table
from forgeplanner.errors import ForgePlannerError, NotFoundError

LINK_IDS: tuple[str, ...] = ("1gbe", "2.5gbe", "10gbe", "tb3", "tb4", "tb5", "tb5-rdma")
_NODE = re.compile(r"^(?P<id>[a-z0-9][a-z0-9.-]*?)(?:x(?P<count>\d+))?$")
SHORT_KIND = {"mac-mini": "mini", "mac-studio": "studio"}
# One entry per node is built; a count of 10^20 ran out of memory. Real clusters are a few Macs.
MAX_NODES = 64


class ClusterError(ForgePlannerError):
    """A cluster that cannot be planned as asked (the message states the numbers)."""


@dataclass(frozen=True, slots=True)
class ClusterResult:
    plan: Any  # forgeplanner.engine.cluster.ClusterPlan
    commands: tuple[Any, ...]  # LaunchCommand
    link_default_reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = self.plan.to_dict()
        d["commands"] = [c.to_dict() for c in self.commands]
        if self.link_default_reason:
            d["link_default"] = self.link_default_reason
        return d


def parse_node_arg(text: str, limit: int = 0) -> tuple[str, int]:
    """ "mac-mini-m4-pro-20c-64gbx2" -> ("mac-mini-m4-pro-20c-64gb", 2)."""
    m = _NODE.match(text.strip().lower())
    if not m:
        raise ClusterError(f"--node '{text}': expected CONFIG_ID or CONFIG_IDxCOUNT")
    limit = limit or MAX_NODES
    count_text = m.group("count") or "1"
    count = int(count_text) if len(count_text) <= 6 else limit + 1
    if not 1 <= count <= limit:
        raise ClusterError(f"--node '{text}': count must be 1..{limit}")
    return m.group("id"), count


def expand_nodes(node_args: list[str], catalog: Any) -> list[tuple[str, Any]]:
    """[(name, MachineConfig)] in the order given; names like mini-1, mini-2, studio-1."""
    out: list[tuple[str, Any]] = []
    per_kind: dict[str, int] = {}
    for arg in node_args:
        config_id, count = parse_node_arg(arg)
        if len(out) + count > MAX_NODES:
            raise ClusterError(f"more than {MAX_NODES} nodes in one cluster")
        if config_id not in catalog.configs:
            # "...x2" where the id itself ends in x<digits> would be ambiguous; ids end in "gb".
            raise NotFoundError("machine configuration", config_id, sorted(catalog.configs))
        cfg = catalog.configs[config_id]
        short = SHORT_KIND.get(cfg.kind, cfg.kind)
        for _ in range(count):
            per_kind[short] = per_kind.get(short, 0) + 1
            out.append((f"{short}-{per_kind[short]}", cfg))
    if not out:
        raise ClusterError("give at least one --node")
    return out


def default_link(configs: list[Any]) -> tuple[str, str]:
    """The fastest IP link every node has: Thunderbolt Bridge at the lowest common version."""
    order = {"TB5": 3, "TB4": 2, "USB4": 2, "TB3": 1}
    levels = [order.get((c.thunderbolt or "").upper(), 0) for c in configs]
    lowest = min(levels)
    link = {3: "tb5", 2: "tb4", 1: "tb3"}.get(lowest, "1gbe")
    return link, (
        f"--link not given: {link}, the fastest link every node has "
        f"({', '.join(sorted({c.thunderbolt or 'no Thunderbolt' for c in configs}))})"
    )


_TB_LEVEL = {"TB5": 3, "TB4": 2, "USB4": 2, "TB3": 1}
_LINK_TB_LEVEL = {"tb3": 1, "tb4": 2, "tb5": 3, "tb5-rdma": 3}
_TB_LINK = {3: "tb5", 2: "tb4", 1: "tb3"}


def link_the_nodes_can_run(link_id: str, nodes: list[tuple[str, Any]]) -> tuple[str, str | None]:
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


def build_cluster(
    model_id: str,
    quant: str,
    node_args: list[str],
    link_id: str | None = None,
    mode: str = "pipeline",
    split: str = "auto",
    context: int = 8192,
    addresses: dict[str, str] | None = None,
) -> ClusterResult:
    from catalog import load_catalog
    from forgeplanner.cli.model_lookup import find_model
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine.budget import gpu_budget
    from forgeplanner.engine.cluster import NodeSpec, link_model_from_spec
    from forgeplanner.engine.cluster_commands import all_commands
    from forgeplanner.engine.cluster_costs import layer_costs
    from forgeplanner.host import host_from_config

    catalog = load_catalog()
    model = find_model(model_id)
    nodes = expand_nodes(node_args, catalog)
    try:
        options = RunOptions(context=context)
        costs = layer_costs(model, quant, options)
    except ValueError as exc:
        raise ClusterError(str(exc)) from None
    link_reason = None
    if link_id is None and len(nodes) > 1:
        link_id, link_reason = default_link([cfg for _, cfg in nodes])
    link = None
    if link_id is not None:
        if link_id not in catalog.links:
            raise NotFoundError("link", link_id, sorted(catalog.links))
        if link_reason is None and len(nodes) > 1:
            link_id, link_reason = link_the_nodes_can_run(link_id, nodes)
        link = link_model_from_spec(catalog.links[link_id])
    specs = []
    for name, cfg in nodes:
        host = host_from_config(cfg.id)
        decode_s, prefill_s = single_node_seconds(model, quant, host, options)
        specs.append(
            NodeSpec(
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
        )
    try:
        plan = _plan(costs, specs, link, mode, split, options)
        commands = all_commands(plan, addresses, model_path=f"{model.id}-{quant}.gguf")
    except ValueError as exc:
        raise ClusterError(str(exc)) from None
    return ClusterResult(plan=plan, commands=tuple(commands), link_default_reason=link_reason)


def _plan(costs, specs, link, mode, split, options):
    """auto: the fastest split that gives every listed node layers; if none fits, the
    proportional split (its per-node verdicts show what is missing). When leaving nodes out
    would be faster, the plan says so."""
    from dataclasses import replace

    from forgeplanner.engine.cluster import plan_cluster

    kw = {"prompt_tokens": options.prompt_tokens, "n_ubatch": options.n_ubatch}
    if mode != "pipeline" or split != "auto":
        return plan_cluster(costs, specs, link, mode, split if split != "auto" else "fastest", **kw)
    try:
        plan = plan_cluster(costs, specs, link, "pipeline", "fastest", use_all_nodes=True, **kw)
    except ValueError:
        return plan_cluster(costs, specs, link, "pipeline", "proportional", **kw)
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


def single_node_seconds(model, quant, host, options) -> tuple[float | None, float | None]:
    """Seconds per token (decode, prefill) of the whole model on this host alone, from the
    speed engine, or None when the host's bandwidth/compute is unknown."""
    from forgeplanner.engine.estimate import speed_estimate

    speed = speed_estimate(model, quant, host, options)
    if speed is None or not speed.decode_tps or not speed.prefill_tps:
        return None, None
    return 1.0 / speed.decode_tps, 1.0 / speed.prefill_tps


def _is_ipv4(text: str) -> bool:
    import ipaddress

    try:
        ipaddress.IPv4Address(text)
    except ValueError:  # 999.1.1.1, 1.2.3, letters
        return False
    return True


def _parse_addresses(items: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, ip = item.partition("=")
        if not sep or not name or not _is_ipv4(ip):
            raise ClusterError(f"--address '{item}': expected NAME=IPv4 (e.g. mini-1=10.0.0.2)")
        out[name] = ip
    return out


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "cluster",
        help="spread one model over several Macs (llama.cpp RPC, exo, MLX distributed)",
        description=(
            "Plan a model across several Macs: layer split or tensor parallel, memory per "
            "node against its GPU budget, cluster speed over the chosen link, and the commands "
            "to launch it."
        ),
    )
    p.add_argument("--model", required=True, help="model id (forgeplanner models list)")
    p.add_argument("--quant", required=True, help="quantization, e.g. Q4_K_M")
    p.add_argument(
        "--context", type=argtypes.tokens, default=8192, help="context tokens (default 8192)"
    )
    p.add_argument(
        "--node",
        action="append",
        required=True,
        metavar="CONFIG_ID[xCOUNT]",
        help="a catalog configuration, optionally xCOUNT; repeat; in llama.cpp device order "
        "(the last node runs llama-server)",
    )
    p.add_argument("--link", choices=LINK_IDS, help="link between the nodes")
    p.add_argument("--mode", choices=("pipeline", "tensor"), default="pipeline")
    p.add_argument(
        "--split",
        choices=("auto", "proportional", "fastest"),
        default="auto",
        help="pipeline split: proportional to GPU budgets, or the fastest that fits (auto: "
        "fastest when one fits, else proportional)",
    )
    p.add_argument(
        "--address",
        action="append",
        metavar="NAME=IP",
        help="a node's IPv4 address on the cluster link, for the launch commands",
    )
    add_json_flag(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from forgeplanner.domain.units import fmt_gib

    if args.context <= 0:
        raise ClusterError(f"--context must be a positive number of tokens, got {args.context}")
    result = build_cluster(
        args.model,
        args.quant,
        args.node,
        args.link,
        args.mode,
        args.split,
        args.context,
        _parse_addresses(args.address),
    )
    if args.json:
        print_json(result.to_dict())
        return 0
    plan = result.plan
    link = plan.link
    print(
        f"{plan.model_id} {plan.quant}, context {plan.context}: {plan.mode} over "
        f"{len(plan.nodes)} node(s)"
        + (f", link {link.name}" if link else "")
        + (f", {plan.split} split" if plan.mode == "pipeline" else "")
    )
    if result.link_default_reason:
        print(result.link_default_reason)
    print()
    print_table(
        ["node", "config", "layers", "weights", "kv cache", "compute+rt", "total", "gpu limit",
         "verdict"],
        [
            [
                n.name,
                n.config_id,
                f"[{n.layers[0]}, {n.layers[1]})",
                fmt_gib(n.weights_bytes),
                fmt_gib(n.kv_cache_bytes, 2),
                fmt_gib(n.compute_bytes + n.runtime_bytes, 2),
                fmt_gib(n.total_bytes),
                fmt_gib(n.gpu_limit_bytes),
                n.verdict,
            ]
            for n in plan.nodes
        ],
    )  # fmt: skip
    print()
    dec = "unknown" if plan.decode_tps is None else f"{plan.decode_tps:.1f} tok/s"
    pre = "unknown" if plan.prefill_tps is None else f"{plan.prefill_tps:.0f} tok/s"
    print(f"decode {dec}, prefill {pre}; cluster verdict: {plan.verdict}")
    print(plan.summary)
    for note in plan.notes:
        print(f"- {note}")
    print()
    for c in result.commands:
        where = f" on {c.node}" if c.node else ""
        print(f"# {c.engine}{where}: {c.purpose}")
        print(c.command)
    return 0
