"""`forgeplanner cluster`: one model spread over several Macs (llama.cpp RPC, exo, MLX).

    forgeplanner cluster --model ID --quant Q [--context N] --node CONFIG_ID[xCOUNT] ...
        [--link 1gbe|2.5gbe|10gbe|tb3|tb4|tb5|tb5-rdma] [--mode pipeline|tensor]
        [--split auto|proportional|fastest] [--runtime llama.cpp|mlx] [--address NAME=IP ...]
        [--json]

The flags become a `forgeplanner.services.cluster.ClusterRequest`; `build_cluster` there does
the work (the desktop view and plans call it too).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from forgeplanner.cli import argtypes
from forgeplanner.cli.output import add_json_flag, print_json, print_table
from forgeplanner.services.cluster import (
    CLUSTER_RUNTIMES,
    LINK_IDS,
    MAX_NODES,
    MODES,
    SPLITS,
    ClusterError,
    ClusterRequest,
    NodeGroup,
    build_cluster,
)

_NODE = re.compile(r"^(?P<id>[a-z0-9][a-z0-9.-]*?)(?:x(?P<count>\d+))?$")


def parse_node_arg(text: str, limit: int = 0) -> NodeGroup:
    """ "mac-mini-m4-pro-20c-64gbx2" -> NodeGroup("mac-mini-m4-pro-20c-64gb", 2)."""
    m = _NODE.match(text.strip().lower())
    if not m:
        raise ClusterError(f"--node '{text}': expected CONFIG_ID or CONFIG_IDxCOUNT")
    limit = limit or MAX_NODES
    count_text = m.group("count") or "1"
    count = int(count_text) if len(count_text) <= 6 else limit + 1
    if not 1 <= count <= limit:
        raise ClusterError(f"--node '{text}': count must be 1..{limit}")
    # "...x2" where the id itself ends in x<digits> would be ambiguous; ids end in "gb".
    return NodeGroup(m.group("id"), count)


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
    p.add_argument("--mode", choices=MODES, default="pipeline")
    p.add_argument(
        "--split",
        choices=SPLITS,
        default="auto",
        help="pipeline split: proportional to GPU budgets, or the fastest that fits (auto: "
        "fastest when one fits, else proportional)",
    )
    p.add_argument(
        "--runtime",
        choices=CLUSTER_RUNTIMES,
        default="llama.cpp",
        help="whose memory and speed figures: llama.cpp (RPC, default) or MLX (distributed)",
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

    request = ClusterRequest(
        model_id=args.model,
        quant=args.quant,
        nodes=tuple(parse_node_arg(n) for n in args.node),
        link_id=args.link,
        mode=args.mode,
        split=args.split,
        context=args.context,
        addresses=_parse_addresses(args.address),
        runtime=args.runtime,
    )
    result = build_cluster(request)
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
