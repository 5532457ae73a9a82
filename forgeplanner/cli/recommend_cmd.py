"""`forgeplanner recommend`: the cheapest machines (new or used), or small clusters, that run
the models at the context and speed needed, with a year's running cost.

    forgeplanner recommend --model ID [--model ID ...] [--quant-min Q] --context N
        [--min-decode-tps X] [--budget-usd N] [--condition new|used|any] [--max-watts W]
        [--allow-clusters] [--hours-at-load H] [--tariff PRICE_PER_KWH] [--as-of YYYY-MM-DD]
        [--json]

`--as-of` is the day the prices are for: "new" means sold new by Apple on that day (or dated
remaining stock), used prices are the observations recent on that day or the depreciation
model's estimate at that age (`forgeplanner.engine.prices.price_for`).

JSON (stable keys): `options` sorted by price, each with `machines` [{config_id, count}],
`quant`, `runtime`, `price_usd`, `price_basis`, `decode_tps`, `prefill_tps`, `verdict`,
`idle_w`, `max_w`, `annual_energy_kwh`, `annual_energy_cost`, `pareto` (plus `models`: the same
figures per requested model, `price`: the price basis in detail, `notes`); and `rejected`:
[{config_id, count, reason}].

The flags become a `forgeplanner.services.recommend.RecommendRequest`; the search is
`build_recommendation` there (the desktop view calls it too).
"""

from __future__ import annotations

import argparse
from typing import Any

from forgeplanner.cli import argtypes
from forgeplanner.cli.output import add_json_flag, print_json, print_table
from forgeplanner.services.recommend import (
    CONDITIONS,
    DEFAULT_HOURS_AT_LOAD,
    DEFAULT_QUANT_MIN,
    RecommendRequest,
    build_recommendation,
)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "recommend",
        help="cheapest machines (or small clusters) that run your models",
        description=(
            "Search the catalog's configurations (new or used) and quantizations for the "
            "cheapest way to run the models at the context and speed you need."
        ),
    )
    p.add_argument(
        "--model",
        action="append",
        required=True,
        metavar="ID",
        help="model id (repeat for several; every option runs all of them)",
    )
    # Default Q4_K_M, as the Recommend view (see services.recommend.DEFAULT_QUANT_MIN).
    p.add_argument(
        "--quant-min",
        metavar="Q",
        default=DEFAULT_QUANT_MIN,
        help="lowest acceptable quantization (default Q4_K_M; IQ1_S allows every quant)",
    )
    p.add_argument(
        "--context", type=argtypes.tokens, required=True, metavar="N", help="context (tokens)"
    )
    p.add_argument(
        "--min-decode-tps", type=argtypes.tokens_per_s, metavar="X", help="minimum decode tok/s"
    )
    p.add_argument("--budget-usd", type=argtypes.money, metavar="N", help="maximum price in USD")
    p.add_argument("--condition", choices=CONDITIONS, default="any", help="new, used or any")
    p.add_argument("--max-watts", type=argtypes.watts, metavar="W", help="maximum total max W")
    p.add_argument(
        "--allow-clusters",
        action="store_true",
        help="also try 2-4 identical machines (llama.cpp RPC over Thunderbolt)",
    )
    p.add_argument(
        "--hours-at-load",
        type=argtypes.hours_per_day,
        default=DEFAULT_HOURS_AT_LOAD,
        metavar="H",
        help=f"duty cycle: hours at load per day (default {DEFAULT_HOURS_AT_LOAD:g})",
    )
    p.add_argument(
        "--tariff",
        type=argtypes.tariff,
        metavar="PRICE",
        help="electricity price per kWh (for annual_energy_cost; none by default)",
    )
    p.add_argument(
        "--as-of",
        "--today",
        dest="as_of",
        type=argtypes.iso_date,
        metavar="YYYY-MM-DD",
        help="the day prices are for: what Apple sold new then, used prices then (default today)",
    )
    add_json_flag(p)
    p.set_defaults(func=run)


# ---------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    request = RecommendRequest(
        model_ids=tuple(args.model),
        context=args.context,
        quant_min=args.quant_min,
        min_decode_tps=args.min_decode_tps,
        budget_usd=args.budget_usd,
        condition=args.condition,
        max_watts=args.max_watts,
        allow_clusters=args.allow_clusters,
        hours_at_load=args.hours_at_load,
        tariff=args.tariff,
        as_of=args.as_of,
    )
    rec = build_recommendation(request)
    if args.json:
        print_json(rec.to_dict())
        return 0
    c = rec.constraints
    print(
        f"{', '.join(c['models'])} at context {c['context']}"
        + (f", quant >= {c['quant_min']}" if c["quant_min"] else "")
        + (f", decode >= {c['min_decode_tps']:g} t/s" if c["min_decode_tps"] else "")
        + f", {c['condition']} machines, prices as of {c['today']}"
    )
    print()
    rows = []
    for o in rec.options:
        (cid, n), *_ = o.machines
        rows.append(
            [
                "*" if o.pareto else "",
                f"{cid}" + (f" x{n}" if n > 1 else ""),
                o.runtime,
                o.quant,
                "unknown" if o.price_usd is None else f"${o.price_usd:,.0f}",
                o.price_basis,
                "unknown" if o.decode_tps is None else f"{o.decode_tps:.1f}",
                "unknown" if o.prefill_tps is None else f"{o.prefill_tps:.0f}",
                o.verdict,
                "unknown" if o.max_w is None else f"{o.max_w:g}",
                "unknown" if o.annual_energy_kwh is None else f"{o.annual_energy_kwh:.0f}",
            ]
        )
    if rows:
        print_table(
            [
                "P",
                "machines",
                "runtime",
                "quant",
                "price",
                "price basis",
                "decode t/s",
                "prefill t/s",
                "verdict",
                "max W",
                "kWh/yr",
            ],
            rows,
        )
        print(
            "\nP = on the price / speed / watts Pareto frontier; "
            f"energy assumes {c['hours_at_load']:g} h/day at Apple's max W"
        )
    else:
        print("no configuration meets the constraints")
    if rec.rejected:
        print(f"\nrejected ({len(rec.rejected)}):")
        print_table(["config", "reason"], [[r.config_id, r.reason] for r in rec.rejected])
    for n in rec.notes:
        print(f"note: {n}")
    return 0
