"""`forgeplanner platform layout`: the K3s shelf's node roles, service placement, power, heat,
install commands and manifests.

    forgeplanner platform layout --node NAME=CONFIG_ID[:ROLE[+ROLE...]] ... [--model ID --quant Q]
        [--runtime ollama|mlx] [--context N] [--manifests DIR] [--gitops DIR] [--json]

`build_platform` is the glue (catalog, model database, memory engine -> the pure layout); the
desktop view calls it too. Only `write_manifests` touches files: every file is written to a
temporary name in DIR first and renamed into place (os.replace) once all are written.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forgeplanner.cli import argtypes
from forgeplanner.cli.output import add_json_flag, print_json, print_table
from forgeplanner.errors import ForgePlannerError, NotFoundError


class PlatformError(ForgePlannerError):
    """A platform layout that cannot be made as asked."""


@dataclass(frozen=True, slots=True)
class PlatformResult:
    layout: Any  # PlatformLayout
    files: dict[str, list[dict[str, Any]]]  # manifest file name -> objects
    commands: tuple[Any, ...]  # NodeCommand
    addresses: dict[str, str]

    def yaml_files(self) -> dict[str, str]:
        from forgeplanner.platform.manifests import to_yaml

        return {name: to_yaml(objs) for name, objs in self.files.items()}

    def to_dict(self) -> dict[str, Any]:
        d = self.layout.to_dict()
        d["addresses"] = dict(self.addresses)
        d["commands"] = [c.to_dict() for c in self.commands]
        d["manifests"] = sorted(self.files)
        return d


def parse_node(text: str) -> tuple[str, str]:
    name, config_id, _roles = parse_node_pins(text)
    return name, config_id


def parse_node_pins(text: str) -> tuple[str, str, tuple[str, ...]]:
    from forgeplanner.platform.pins import PinError, parse_node_arg

    try:
        return parse_node_arg(text)
    except PinError as exc:
        raise PlatformError(str(exc)) from None


def build_platform(
    node_args: list[str],
    model_id: str | None = None,
    quant: str | None = None,
    runtime: str = "ollama",
    context: int = 8192,
    manifests_dir: str = "DIR",
) -> PlatformResult:
    from catalog import load_catalog
    from forgeplanner.domain.estimates import RunOptions
    from forgeplanner.engine.fit import fit
    from forgeplanner.engine.platform_layout import PlatformNode, plan_platform
    from forgeplanner.host import host_from_config
    from forgeplanner.platform.k3s import install_commands, suggested_addresses
    from forgeplanner.platform.manifests import render_manifests
    from forgeplanner.platform.pins import cpu_clock_ghz

    if (model_id is None) != (quant is None):
        raise PlatformError("--model and --quant go together")
    if not node_args:
        raise PlatformError("give at least one --node NAME=CONFIG_ID")
    catalog = load_catalog()
    model = None
    options = None
    if model_id is not None:
        from forgeplanner.cli.model_lookup import find_model

        model = find_model(model_id)
        try:
            options = RunOptions(context=context, runtime=runtime)
        except ValueError as exc:
            raise PlatformError(str(exc)) from None
    nodes = []
    for arg in node_args:
        name, config_id, pinned = parse_node_pins(arg)
        if config_id not in catalog.configs:
            raise NotFoundError("machine configuration", config_id, sorted(catalog.configs))
        cfg = catalog.configs[config_id]
        chip = catalog.chips[cfg.chip_id]
        verdict = need = limit = None
        if model is not None and chip.is_apple_silicon:
            try:
                fr = fit(model, quant, host_from_config(config_id), options)
            except ValueError as exc:
                raise PlatformError(str(exc)) from None
            verdict, need, limit = (
                fr.verdict,
                fr.memory.total_bytes,
                fr.budget.gpu_limit_bytes,
            )
        nodes.append(
            PlatformNode(
                name=name,
                config_id=config_id,
                machine=cfg.machine,
                is_apple_silicon=chip.is_apple_silicon,
                cpu_cores=chip.cpu_cores.value,
                memory_bytes=cfg.memory_bytes,
                idle_w=cfg.idle_w.value,
                max_w=cfg.max_w.value,
                idle_btu_h=cfg.idle_btu_h.value,
                max_btu_h=cfg.max_btu_h.value,
                model_verdict=verdict,
                model_need_bytes=need,
                model_limit_bytes=limit,
                cpu_ghz=cpu_clock_ghz(chip.name),
                pinned_roles=pinned,
            )
        )
    try:
        layout = plan_platform(nodes, model_id, quant, runtime)
    except ValueError as exc:
        raise PlatformError(str(exc)) from None
    addresses = suggested_addresses([n.name for n in nodes])
    files = render_manifests(layout, addresses)
    commands = install_commands(layout, addresses, manifests_dir=manifests_dir)
    return PlatformResult(layout, files, tuple(commands), addresses)


def write_manifests(result: PlatformResult, directory: Path) -> list[Path]:
    """Write every manifest file atomically: all temporaries first, then the renames."""
    directory.mkdir(parents=True, exist_ok=True)
    texts = result.yaml_files()
    temps: list[tuple[str, Path]] = []
    try:
        for name, text in texts.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            temps.append((name, Path(tmp)))
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; manifests are not secret
    except BaseException:
        for _, tmp in temps:
            tmp.unlink(missing_ok=True)
        raise
    written = []
    for name, tmp in temps:
        target = directory / name
        os.replace(tmp, target)
        written.append(target)
    return written


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
    lay.add_argument("--runtime", choices=("ollama", "mlx", "llama.cpp"), default="ollama")
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

    if args.context <= 0:
        raise PlatformError(f"--context must be a positive number of tokens, got {args.context}")
    result = build_platform(
        args.node, args.model, args.quant, args.runtime, args.context, args.manifests or "DIR"
    )
    written: list[Path] = []
    if args.manifests:
        try:
            written = write_manifests(result, Path(args.manifests))
        except OSError as exc:
            raise PlatformError(f"cannot write manifests to {args.manifests}: {exc}") from None
    if args.gitops:
        from forgeplanner.platform.gitops import build_gitops

        written += build_gitops(
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
