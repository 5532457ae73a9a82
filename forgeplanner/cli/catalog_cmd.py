"""`forgeplanner catalog list|chips|links|show ID [--json]`: the hardware catalog.

JSON keys are stable: `catalog list --json` -> {"machines": [...]} (one row per chip x memory
configuration, with `id`, `sources`, every figure as {value, source, as_of, reason, derived}
and its `storage_options`, each a chip x memory x storage configuration with its dated list
prices); `catalog list --storage --json` -> {"storage_configurations": [...]} (one row per chip
x memory x storage configuration Apple sold); `catalog chips --json` -> {"chips": [...]};
`catalog links --json` -> {"links": [...]}; `catalog show ID --json` -> {"configuration":
{...}}, {"storage_configuration": {...}}, {"chip": {...}} or {"link": {...}}. Unknown figures
print as "unknown" in the tables.
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
    lst.add_argument(
        "--storage",
        action="store_true",
        help="one row per chip x memory x storage configuration, with its dated list prices",
    )
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
    if args.storage:
        return _list_storage(cat, configs, args.json)
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
                f"{c.thunderbolt}x{c.thunderbolt_ports or '?'}",
                "/".join(str(e) for e in c.ethernet_gbps),
                c.release_date,
                f"withdrawn {c.withdrawn}"
                if c.withdrawn
                else (f"discontinued {c.discontinued}" if c.discontinued else ""),
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


def _list_storage(cat: Any, configs: list[Any], as_json: bool) -> int:
    rows = []
    for c in configs:
        for o in c.storage_options:
            launch = o.launch
            changes = [h for h in o.history[1:]]
            rows.append(
                {
                    "id": o.id,
                    "config_id": c.id,
                    "machine": c.machine,
                    "chip_id": c.chip_id,
                    "memory_gb": c.memory_gb,
                    "storage_gb": o.storage_gb,
                    "storage_kind": o.storage_kind,
                    "release_date": c.release_date,
                    "discontinued": c.discontinued,
                    "launch_price_usd": launch.price.to_dict(),
                    "launch_grade": launch.grade,
                    "history": [h.to_dict() for h in o.history],
                    "changes": len(changes),
                }
            )
    if as_json:
        print_json({"storage_configurations": rows})
        return 0

    def last(o: Any) -> str:
        h = o.history[-1]
        if len(o.history) == 1:
            return ""
        if h.status != "sold":
            return f"off sale {h.date}"
        shown = "unknown" if h.price.value is None else f"${h.price.value:,.0f}"
        return f"{shown} from {h.date}" + (" (est.)" if h.basis == "scaled" else "")

    table = []
    for c in configs:
        for o in c.storage_options:
            fig = o.launch.price
            table.append(
                [
                    o.id,
                    o.label,
                    _money(fig),
                    o.launch.grade or ("-" if fig.value is None else ""),
                    c.release_date,
                    last(o),
                ]
            )
    print_table(["configuration", "storage", "launch", "grade", "released", "latest"], table)
    priced = sum(1 for r in rows if r["launch_price_usd"]["value"] is not None)
    print(f"\n{len(rows)} configurations, {priced} with a launch price")
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
    option = None
    if args.id not in cat.configs and args.id not in cat.chips and args.id not in cat.links:
        try:
            cfg, option = cat.storage_option(args.id)
        except NotFoundError:
            option = None
    if option is not None:
        payload: dict[str, Any] = {
            "storage_configuration": {
                **option.to_dict(),
                "configuration": config_dict(cat, cfg),
                "sources": list(cfg.sources),
            }
        }
        payload["storage_configuration"]["configuration"].pop("storage_options")
    elif args.id in cat.configs:
        payload = {"configuration": config_dict(cat, cat.configs[args.id])}
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
    if option is not None:
        _print_history(option.to_dict())
        return 0
    _print_body(body)
    return 0


def _print_history(option: dict[str, Any]) -> None:
    """The dated list prices of one storage option."""
    rows = []
    for h in option["history"]:
        fig = h["price_usd"]
        shown = "unknown" if fig["value"] is None else f"${fig['value']:,.0f}"
        note = fig["derived"] or fig["reason"] or ""
        if fig["value"] is not None and fig["reason"] and fig["derived"]:
            note = f"{fig['derived']} [{fig['reason']}]"
        rows.append(
            [h["date"], h["status"], shown, h["basis"], h["grade"], h["price_list"], note[:110]]
        )
    print_table(["from", "status", "price", "basis", "grade", "price list", "note"], rows)


def _print_body(body: dict[str, Any]) -> None:
    rows = []
    for key, value in body.items():
        if key in ("id", "sources", "price_observations", "storage_options"):
            continue
        if key == "memory" and isinstance(value, dict):
            rows.append(
                [
                    key,
                    f"{value['type']}-{value['mts']} x{value['channels']} channels",
                    f"{value['source']} (as of {value['as_of']})",
                    "; ".join(x for x in (value["form"], value["note"]) if x),
                ]
            )
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
    for option in body.get("storage_options") or []:
        print(f"\n{option['id']} ({option['storage_gb'] or 'storage not stated'} GB):")
        _print_history(option)
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
