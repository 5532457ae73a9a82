"""`forgeplanner platform layout`: the K3s shelf's node roles, service placement, power, heat,
install commands and manifests.

    forgeplanner platform layout --node NAME=CONFIG_ID[:ROLE[+ROLE...]] ... [--model ID --quant Q]
        [--runtime ollama|mlx|llama.cpp] [--context N] [--manifests DIR]
        [--gitops DIR [--gitops-repo URL] [--registry HOST] [--policy FILE]] [--json]
    forgeplanner platform promote GITOPS_DIR

The flags become a `forgeplanner.services.platform.PlatformRequest`; `build_platform` and
`write_manifests` there do the work (the desktop view and plans call them too).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from forgeplanner.cli import argtypes
from forgeplanner.cli.output import add_json_flag, print_json, print_table
from forgeplanner.services.platform import (
    PLATFORM_RUNTIMES,
    PlatformError,
    PlatformRequest,
    ShelfNode,
    build_platform,
    write_manifests,
)


def parse_node(text: str) -> ShelfNode:
    return ShelfNode.parse(text)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "platform",
        help="K3s platform layout: node roles, service placement, manifests",
        description="Plan the K3s platform of a shelf of Macs (learning track modules 02-05).",
    )
    sub = p.add_subparsers(dest="platform_command", metavar="SUBCOMMAND")
    lay = sub.add_parser(
        "layout",
        help="place the control plane, telemetry, registry, GitOps and inference",
        description=(
            "Give each machine a name and a catalog configuration; ForgePlanner places the K3s "
            "server, a dedicated telemetry node, Harbor, Argo CD and (with --model/--quant) "
            "inference on the Apple Silicon nodes that hold the model."
        ),
    )
    lay.add_argument(
        "--node",
        action="append",
        required=True,
        metavar="NAME=CONFIG_ID[:ROLE[+ROLE...]]",
        help="a machine: its node name and catalog configuration, optionally pinned roles "
        "(control-plane, worker, telemetry, registry, gitops, inference); repeat",
    )
    lay.add_argument("--model", help="model to serve (forgeplanner models list)")
    lay.add_argument("--quant", help="its quantization (with --model)")
    lay.add_argument("--runtime", choices=PLATFORM_RUNTIMES, default="ollama")
    lay.add_argument(
        "--context", type=argtypes.tokens, default=8192, help="context tokens (default 8192)"
    )
    lay.add_argument("--manifests", metavar="DIR", help="write the Kubernetes manifests here")
    lay.add_argument("--gitops", metavar="DIR", help="write the GitOps repository here")
    lay.add_argument("--gitops-repo", metavar="URL", help="its Git URL (for Argo CD)")
    lay.add_argument("--registry", metavar="HOST", help="Harbor's host name")
    lay.add_argument("--policy", metavar="FILE", help="gate policy for the admission policies")
    add_json_flag(lay)
    lay.set_defaults(func=run_layout)
    pro = sub.add_parser("promote", help="promote the lab environment's versions to prod")
    pro.add_argument("gitops_dir", metavar="DIR")
    add_json_flag(pro)
    pro.set_defaults(func=run_promote)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _w(v: float | None, unit: str) -> str:
    return "unknown" if v is None else f"{v:.0f} {unit}"


def run_layout(args: argparse.Namespace) -> int:
    from forgeplanner.domain.units import fmt_gib

    request = PlatformRequest(
        nodes=tuple(parse_node(n) for n in args.node),
        model_id=args.model,
        quant=args.quant,
        runtime=args.runtime,
        context=args.context,
        manifests_dir=args.manifests or "DIR",
    )
    result = build_platform(request)
    written: list[Path] = []
    if args.manifests:
        try:
            written = write_manifests(result, Path(args.manifests))
        except OSError as exc:
            raise PlatformError(f"cannot write manifests to {args.manifests}: {exc}") from None
    if args.gitops:
        from forgeplanner.services.platform import write_gitops

        written += write_gitops(
            result, args.gitops, context=args.context, policy_path=args.policy,
            repo_url=args.gitops_repo, registry_host=args.registry,
        )  # fmt: skip
    if args.json:
        d = result.to_dict()
        d["written"] = [str(p) for p in written]
        print_json(d)
        return 0
    lay = result.layout
    print_table(
        ["node", "config", "roles", "k3s", "cpu req", "mem req", "mem cap", "idle W", "max W"],
        [
            [
                n.name,
                n.config_id,
                ", ".join(n.roles) or "-",
                n.k3s or "-",
                f"{n.cpu_request_millicores}m",
                fmt_gib(n.memory_request_bytes),
                fmt_gib(n.memory_capacity_bytes),
                _w(n.idle_w, ""),
                _w(n.max_w, ""),
            ]
            for n in lay.nodes
        ],
    )
    pw = lay.power
    print()
    print(
        f"shelf: {_w(pw.idle_w, 'W')} idle, {_w(pw.max_w, 'W')} max; "
        f"{_w(pw.idle_btu_h, 'BTU/h')} idle, {_w(pw.max_btu_h, 'BTU/h')} max"
        + (f" (unknown for {', '.join(pw.unknown)})" if pw.unknown else "")
    )
    print()
    print_table(["service", "node"], sorted(lay.assignments.items()))
    for u in lay.unplaced:
        print(f"UNPLACED {u.service}: {u.reason}")
    for note in lay.notes:
        print(f"- {note}")
    print()
    for c in result.commands:
        print(f"# {c.node}: {c.purpose}")
        print(c.command)
    for p in written:
        print(f"wrote {p}")
    return 0


def run_promote(args: argparse.Namespace) -> int:
    from forgeplanner.platform.gitops import promote_directory

    changed = promote_directory(args.gitops_dir)
    if args.json:
        print_json({"changed": changed})
    else:
        print("\n".join(f"promoted {p}" for p in changed) or "prod already runs what lab runs")
    return 0
