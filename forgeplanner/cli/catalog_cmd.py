"""`forgeplanner catalog list|chips|links|show ID [--json]`: the hardware catalog.

JSON keys are stable: `catalog list --json` -> {"machines": [...]} (one row per buyable
configuration, with `id`, `sources` and every figure as {value, source, as_of, reason,
derived}); `catalog chips --json` -> {"chips": [...]}; `catalog links --json` -> {"links":
[...]}; `catalog show ID --json` -> {"configuration": {...}} or {"chip": {...}} or {"link":
{...}}. Unknown figures print as "unknown" in the tables.
"""

from __future__ import annotations

import argparse
from typing import Any

from forgeplanner.cli.output import add_json_flag, print_json, print_table
from forgeplanner.domain.provenance import Figure


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "catalog",
        help="hardware catalog: chips, machine configurations, links",
        description="Browse the hardware catalog. Every figure carries its source and date.",
    )
    sub = p.add_subparsers(dest="catalog_command", metavar="SUBCOMMAND")
    lst = sub.add_parser("list", help="buyable machine configurations")
    lst.add_argument("--kind", choices=("mac-mini", "mac-studio"), help="only this kind")
    add_json_flag(lst)
    lst.set_defaults(func=_list)
    chips = sub.add_parser("chips", help="chips per GPU-core bin (and Intel CPUs)")
    add_json_flag(chips)
    chips.set_defaults(func=_chips)
    links = sub.add_parser("links", help="network links between Macs")
    add_json_flag(links)
    links.set_defaults(func=_links)
    show = sub.add_parser("show", help="everything about one configuration, chip or link")
    show.add_argument("id", metavar="ID", help="configuration, chip or link id")
    add_json_flag(show)
    show.set_defaults(func=_show)
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])


def _fmt(fig: Figure, fmt: str = "{:g}") -> str:
    return fig.display(fmt)


def _money(fig: Figure) -> str:
    return "unknown" if fig.value is None else f"${fig.value:,.0f}"


def _list(args: argparse.Namespace) -> int:
    from catalog import load_catalog
    from catalog.serialize import config_dict

    cat = load_catalog()
    configs = [c for c in cat.configs.values() if args.kind in (None, c.kind)]
    if args.json:
        print_json({"machines": [config_dict(cat, c) for c in configs]})
        return 0
    rows = []
    for c in configs:
        chip = cat.chips[c.chip_id]
        rows.append(
            [
                c.id,
                chip.name if chip.vendor == "apple" else chip.name.split(" (")[0],
                chip.gpu_cores or "-",
                c.memory_gb,
                _money(c.launch_price_usd),
                _fmt(c.idle_w),
                _fmt(c.max_w),
                _fmt(c.max_btu_h),
                f"{c.thunderbolt}x{c.thunderbolt_ports}",
                "/".join(str(e) for e in c.ethernet_gbps),
                c.release_date,
                f"withdrawn {c.withdrawn}" if c.withdrawn else "",
            ]
        )
    print_table(
        [
            "id",
            "chip",
            "gpu",
            "mem GB",
            "launch",
            "idle W",
            "max W",
            "max BTU/h",
            "TB",
            "GbE",
            "released",
            "",
        ],
        rows,
    )
    return 0


def _chips(args: argparse.Namespace) -> int:
    from catalog import load_catalog
    from catalog.serialize import chip_dict

    cat = load_catalog()
    if args.json:
        print_json({"chips": [chip_dict(c) for c in cat.chips.values()]})
        return 0
    rows = []
    for c in cat.chips.values():
        cores = _fmt(c.cpu_cores)
        if c.cpu_p_cores.known and c.cpu_e_cores.known:
            cores += f" ({c.cpu_p_cores.value}P+{c.cpu_e_cores.value}E)"
        rows.append(
            [
                c.id,
                c.name,
                c.gpu_cores or "-",
                cores,
                _fmt(c.mem_bandwidth_gbps),
                _fmt(c.gpu_fp32_tflops),
                _fmt(c.neural_engine_tops),
                "/".join(str(m) for m in c.memory_options_gb),
                c.year,
                "laptop" if c.laptop_only else "",
            ]
        )
    print_table(
        ["id", "name", "gpu", "cpu cores", "GB/s", "FP32 TF", "NE TOPS", "memory GB", "year", ""],
        rows,
    )
    return 0


def _links(args: argparse.Namespace) -> int:
    from catalog import load_catalog
    from catalog.serialize import link_dict

    cat = load_catalog()
    if args.json:
        print_json({"links": [link_dict(x) for x in cat.links.values()]})
        return 0
    rows = []
    for x in cat.links.values():
        rows.append(
            [
                x.id,
                x.name,
                _gbit(x.nominal_bandwidth_bytes_per_s),
                _gbit(x.measured_bandwidth_bytes_per_s),
                "unknown" if x.latency_s.value is None else f"{x.latency_s.value * 1e6:g} us",
            ]
        )
    print_table(["id", "link", "nominal Gb/s", "measured Gb/s", "latency"], rows)
    return 0


def _gbit(fig: Figure) -> str:
    return "unknown" if fig.value is None else f"{fig.value * 8 / 1e9:.3g}"


def _show(args: argparse.Namespace) -> int:
    from catalog import load_catalog
    from catalog.serialize import chip_dict, config_dict, link_dict
    from forgeplanner.errors import NotFoundError

    cat = load_catalog()
    if args.id in cat.configs:
        payload: dict[str, Any] = {"configuration": config_dict(cat, cat.configs[args.id])}
        obs = [o.to_dict() for o in cat.observations_for(args.id)]
        payload["configuration"]["price_observations"] = obs
    elif args.id in cat.chips:
        payload = {"chip": chip_dict(cat.chips[args.id])}
        payload["chip"]["configurations"] = [
            c.id for c in cat.configs.values() if c.chip_id == args.id
        ]
    elif args.id in cat.links:
        payload = {"link": link_dict(cat.links[args.id])}
    else:
        valid = [*cat.configs, *cat.chips, *cat.links]
        raise NotFoundError("catalog id", args.id, valid)
    if args.json:
        print_json(payload)
        return 0
    ((kind, body),) = payload.items()
    print(f"{kind}: {body['id']}")
    _print_body(body)
    return 0


def _print_body(body: dict[str, Any]) -> None:
    rows = []
    for key, value in body.items():
        if key in ("id", "sources", "price_observations"):
            continue
        if isinstance(value, dict) and "value" in value:
            if value["value"] is None:
                rows.append([key, "unknown", value["reason"] or "", ""])
            else:
                shown = value["value"]
                shown = f"{shown:g}" if isinstance(shown, float) else str(shown)
                detail = value["derived"] or ""
                if value["reason"]:
                    detail = f"{detail} [{value['reason']}]" if detail else value["reason"]
                rows.append([key, shown, f"{value['source']} (as of {value['as_of']})", detail])
        elif isinstance(value, list):
            rows.append([key, ", ".join(str(v) for v in value), "", ""])
        else:
            rows.append([key, "" if value is None else str(value), "", ""])
    print_table(["field", "value", "source", "note"], rows)
    obs = body.get("price_observations") or []
    if obs:
        print("\nprice observations:")
        print_table(
            ["date", "price", "type", "condition", "source"],
            [
                [
                    o["date"],
                    f"${o['price_usd']:,.0f}"
                    + (f"-{o['price_max_usd']:,.0f}" if o["price_max_usd"] else ""),
                    o["price_type"],
                    o["condition"],
                    o["source"],
                ]
                for o in obs
            ],
        )
    print("\nsources:")
    for s in body.get("sources", []):
        print(f"  - {s}")
