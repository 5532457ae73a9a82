"""`forgeplanner prices list|show|model|import`: dated prices and the basis of every price.

    forgeplanner prices list [--config ID] [--json]          shipped + your observations
    forgeplanner prices show ID [--as-of D] [--json]         new and used price on a day, with
                                                             basis; Apple's dated list prices
    forgeplanner prices model [--json]                       the depreciation and list-price
                                                             models with cross-validated errors
    forgeplanner prices import CSV [--map FIELD=COLUMN ...] [--currency USD] [--fx EUR=1.08 ...]
        [--decimal .|,] [--dayfirst] [--source TEXT] [--preview] [--json]
    forgeplanner prices delete ID [ID ...] [--json]          remove your own observations

`import` validates the whole file first (bad rows are reported with line numbers and nothing is
written); `--preview` shows what would be imported (matches, duplicates) and writes nothing.
JSON keys: list -> {"observations": [...]}; show -> {"config_id", "today", "as_of",
"withdrawn", "discontinued", "new", "used", "storage_options", "observations"}; model ->
{"depreciation": {...}}; import -> {"file", "columns", "rows", "new", "duplicates",
"unmatched", "imported", "preview"}; delete -> {"deleted": [...]}. The work is done by
`forgeplanner.services.prices` (the Recommend view and plans read prices there too).
"""

from __future__ import annotations

import argparse
from typing import Any

from forgeplanner.cli import argtypes
from forgeplanner.cli.output import add_json_flag, print_json, print_table
from forgeplanner.errors import ForgePlannerError


class PricesInputError(ForgePlannerError):
    pass


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "prices",
        help="used-market and refurbished price observations; CSV import",
        description="Dated price observations (shipped and your own) and used-price estimates.",
    )
    sub = p.add_subparsers(dest="prices_command", metavar="SUBCOMMAND")
    lst = sub.add_parser("list", help="price observations with their dates and sources")
    lst.add_argument("--config", metavar="ID", help="only this configuration")
    add_json_flag(lst)
    lst.set_defaults(func=_list)
    show = sub.add_parser("show", help="new and used price of one configuration, with basis")
    show.add_argument(
        "config_id", metavar="ID", help="configuration id, or a storage configuration id"
    )
    show.add_argument(
        "--as-of",
        "--today",
        dest="as_of",
        type=argtypes.iso_date,
        metavar="YYYY-MM-DD",
        help="the day prices are for (default today)",
    )
    add_json_flag(show)
    show.set_defaults(func=_show)
    model = sub.add_parser(
        "model", help="the per-family depreciation model and its cross-validated error"
    )
    add_json_flag(model)
    model.set_defaults(func=_model)
    imp = sub.add_parser("import", help="import listings from a CSV (all rows or none)")
    imp.add_argument("csv", metavar="CSV")
    imp.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help="column for a field: title, price, currency, date, condition, source, config_id",
    )
    imp.add_argument(
        "--currency",
        type=argtypes.currency_code,
        default="USD",
        metavar="CODE",
        help="currency of prices without one (default USD)",
    )
    imp.add_argument(
        "--fx",
        type=argtypes.fx_pair,
        action="append",
        default=[],
        metavar="CODE=RATE",
        help="USD per unit of CODE, e.g. EUR=1.08 (no rates are shipped)",
    )
    imp.add_argument("--decimal", default=".", choices=(".", ","), help="decimal separator")
    imp.add_argument("--dayfirst", action="store_true", help="dates are DD/MM/YYYY")
    imp.add_argument("--source", metavar="TEXT", help="source for rows without one")
    imp.add_argument("--preview", action="store_true", help="show what would be imported only")
    add_json_flag(imp)
    imp.set_defaults(func=_import)
    dele = sub.add_parser(
        "delete",
        help="delete your own price observations (ids from `prices list`: user-N or N)",
        description="Delete price observations you imported; all of them or none. Shipped "
        "observations are part of the catalog and cannot be deleted.",
    )
    dele.add_argument("ids", nargs="+", metavar="ID")
    add_json_flag(dele)
    dele.set_defaults(func=_delete)
    cost = sub.add_parser(
        "running-cost",
        help="a shelf of machines: total W, BTU/h, kWh and money per year",
    )
    cost.add_argument("machines", nargs="+", metavar="CONFIG_ID[xN]")
    cost.add_argument(
        "--hours-at-load",
        type=argtypes.hours_per_day,
        default=8.0,
        metavar="H",
        help="duty cycle: hours at load per day (default 8)",
    )
    cost.add_argument(
        "--tariff", type=argtypes.tariff, metavar="PRICE", help="electricity price per kWh"
    )
    add_json_flag(cost)
    cost.set_defaults(func=_running_cost)
    p.set_defaults(func=lambda _a: (p.print_help(), 2)[1])


def _pairs(items: list[str], flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise PricesInputError(f"{flag} '{item}': expected KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def _list(args: argparse.Namespace) -> int:
    from catalog import load_catalog
    from forgeplanner.services.prices import all_observations

    cat = load_catalog()
    if args.config:
        cat.config(args.config)  # NotFoundError lists valid ids
    obs = [o for o in all_observations(cat) if args.config in (None, o.config_id)]
    if args.json:
        print_json({"observations": [o.to_dict() for o in obs]})
        return 0
    rows = [
        [
            o.date,
            o.config_id or o.machine_id or "-",
            _money(o.price_usd, o.price_max_usd),
            o.condition,
            o.price_type,
            o.origin,
            o.source[:70],
        ]
        for o in sorted(obs, key=lambda o: o.date)
    ]
    print_table(["date", "config", "price", "condition", "type", "origin", "source"], rows)
    if cat.market_notes and not args.config:
        print("\nmarket notes (no single configuration):")
        for n in cat.market_notes:
            print(f"  {n.date}: {n.text} [{n.quality}]")
    return 0


def _money(lo: float, hi: float | None = None) -> str:
    return f"${lo:,.0f}" + (f"-{hi:,.0f}" if hi else "")


def _show(args: argparse.Namespace) -> int:
    from catalog import load_catalog
    from forgeplanner.engine import prices as px
    from forgeplanner.services.prices import all_observations, price_day

    cat = load_catalog()
    cfg, only = cat.resolve(args.config_id)
    day = price_day(args.as_of)
    obs = all_observations(cat)
    model = px.fit_depreciation(cat.configs, obs, cat.chips)
    new = px.new_price(cfg, day, obs, model)
    used = px.used_price(cfg, obs, day, model)
    options = [only] if only is not None else list(cfg.storage_options)
    mine = [
        o
        for o in obs
        if o.config_id == cfg.id and (only is None or o.storage_gb in (None, only.storage_gb))
    ]
    if args.json:
        print_json(
            {
                "config_id": cfg.id,
                "today": day,
                "as_of": day,
                "withdrawn": cfg.withdrawn,
                "discontinued": cfg.discontinued,
                "new": new.to_dict(),
                "used": used.to_dict(),
                "storage_options": [o.to_dict() for o in options],
                "observations": [o.to_dict() for o in mine],
            }
        )
        return 0
    storage = "storage not stated" if cfg.storage_gb is None else f"{cfg.storage_gb} GB storage"
    print(f"{cfg.id} ({cfg.machine}, {cfg.memory_gb} GB, {storage}), prices as of {day}")
    for name, b in (("new", new), ("used", used)):
        shown = "unknown" if b.price_usd is None else f"${b.price_usd:,.0f}"
        print(f"  {name:4}  {shown:>9}  {b.label}")
        if b.detail:
            print(f"              {b.detail}")
    if cfg.withdrawn:
        print(f"  withdrawn by Apple {cfg.withdrawn}")
    if cfg.discontinued:
        print(f"  discontinued by Apple {cfg.discontinued}")
    print("\nApple list prices:")
    rows = []
    for o in options:
        for h in o.history:
            price = "unknown" if h.price.value is None else f"${h.price.value:,.0f}"
            rows.append([o.id, h.date, h.status, price, h.basis, h.grade, h.price_list])
    print_table(["configuration", "from", "status", "price", "basis", "grade", "price list"], rows)
    if mine:
        print("\nobservations:")
        print_table(
            ["date", "price", "condition", "type", "storage GB", "seller", "source"],
            [
                [
                    o.date,
                    _money(o.price_usd, o.price_max_usd),
                    o.condition,
                    o.price_type,
                    o.storage_gb or "?",
                    o.seller or o.origin,
                    o.source[:60],
                ]
                for o in sorted(mine, key=lambda o: o.date)
            ],
        )
    return 0


def _model(args: argparse.Namespace) -> int:
    from catalog import load_catalog
    from forgeplanner.engine import prices as px
    from forgeplanner.services.prices import all_observations

    cat = load_catalog()
    obs = all_observations(cat)
    model = px.fit_depreciation(cat.configs, obs, cat.chips)
    if model is None:
        raise PricesInputError("too few market observations to fit a depreciation model")
    if args.json:
        print_json({"depreciation": model.to_dict()})
        return 0
    print(model.describe())
    print(
        "\nln(price / Apple list price) = intercept + slope x age + shortage (prices from "
        f"{px.SHORTAGE_FROM} on); error = leave-one-configuration-out cross-validation "
        "(absolute % error of each observation)"
    )
    print_table(
        [
            "family",
            "obs",
            "configs",
            "intercept",
            "slope/yr",
            "shortage",
            "ages",
            "dates",
            "CV med %",
            "CV mean %",
        ],
        [
            [
                f.name,
                f.n_points,
                f.n_configs,
                f"{f.intercept:+.3f}",
                f"{f.slope:+.3f}",
                f"{f.shortage:+.3f}",
                f"{f.age_min:.1f}-{f.age_max:.1f}",
                f"{f.date_from}..{f.date_to}",
                "-" if f.cv_median_pct is None else f"{f.cv_median_pct:.1f}",
                "-" if f.cv_mean_pct is None else f"{f.cv_mean_pct:.1f}",
            ]
            for f in model.families.values()
        ],
    )
    lm = model.list_model
    if lm is not None:
        print(
            f"\nlist-price model (for configurations whose Apple price is unknown): fit on "
            f"{lm.n_points} launch prices, leave-one-out error median {lm.cv_median_pct:.1f}%, "
            f"mean {lm.cv_mean_pct:.1f}%"
        )
    print(f"{model.skipped} market observation(s) name no configuration or reference price")
    return 0


def _import(args: argparse.Namespace) -> int:
    from forgeplanner.services.prices import ListingFormat, import_listings

    fmt = ListingFormat(
        mapping=_pairs(args.map, "--map"),
        default_currency=args.currency,
        fx=dict(args.fx),  # argtypes.fx_pair: (CODE, finite rate > 0)
        decimal=args.decimal,
        dayfirst=args.dayfirst,
        default_source=args.source,
    )
    imp, added = import_listings(args.csv, fmt, preview=args.preview)
    payload = imp.to_dict()
    payload["imported"] = len(added)
    payload["preview"] = bool(args.preview)
    if args.json:
        print_json(payload)
        return 0
    print(f"{imp.file}: columns " + ", ".join(f"{k}<-'{v}'" for k, v in imp.columns.items()))
    print_table(
        ["line", "date", "price USD", "original", "condition", "config", "match", "duplicate"],
        [
            [
                r.line,
                r.date.isoformat(),
                f"{r.price_usd:,.2f}",
                f"{r.currency} {r.original_price:,.2f}",
                r.condition,
                (r.config_id + (f" ({r.storage_gb} GB)" if r.storage_gb else ""))
                if r.config_id
                else (r.title or "")[:40],
                r.match if r.config_id else f"unmatched: {r.match_reason}",
                r.duplicate_of or "",
            ]
            for r in imp.rows
        ],
    )
    verb = "would import" if args.preview else "imported"
    print(
        f"\n{verb} {len(imp.new_rows) if args.preview else len(added)} row(s); "
        f"{len(imp.duplicates)} duplicate(s) skipped; "
        f"{payload['unmatched']} row(s) match no catalog configuration"
    )
    return 0


def _delete(args: argparse.Namespace) -> int:
    import re

    from forgeplanner.services.prices import delete_observations

    ids: list[int] = []
    for text in args.ids:
        m = re.fullmatch(r"(?:user-)?(\d{1,18})", text.strip())
        if m is None:
            raise PricesInputError(
                f"'{text}' is not one of your observations' ids (user-N or N; shipped "
                "observations are catalog data and cannot be deleted)"
            )
        ids.append(int(m.group(1)))
    deleted = delete_observations(ids)
    if args.json:
        print_json({"deleted": [r.to_dict() for r in deleted]})
    else:
        for r in deleted:
            what = r.config_id or r.title or "?"
            print(f"deleted user-{r.id}: {r.observed_on} {what} ${r.price:,.2f} ({r.source})")
    return 0


def _running_cost(args: argparse.Namespace) -> int:
    from catalog import load_catalog
    from forgeplanner.cli.argtypes import MAX_MACHINES
    from forgeplanner.cli.cluster_cmd import parse_node_arg
    from forgeplanner.engine.power import ShelfItem, annual_energy, shelf_totals

    cat = load_catalog()
    items = []
    for text in args.machines:
        group = parse_node_arg(text, limit=MAX_MACHINES)
        cfg = cat.config(group.config_id)  # NotFoundError lists the valid ids
        items.append(
            ShelfItem(cfg.id, group.count, cfg.idle_w, cfg.max_w, cfg.idle_btu_h, cfg.max_btu_h)
        )
    try:
        shelf = shelf_totals(items)
        energy = annual_energy(shelf.idle_w, shelf.max_w, args.hours_at_load, args.tariff)
    except ValueError as exc:
        raise PricesInputError(str(exc)) from None
    if args.json:
        print_json(
            {
                "machines": [{"config_id": it.name, "count": it.count} for it in items],
                "shelf": shelf.to_dict(),
                "annual_energy": energy.to_dict(),
                "hours_at_load": args.hours_at_load,
                "tariff_per_kwh": args.tariff,
            }
        )
        return 0

    def show(v: float | None, fmt: str = "{:g}") -> str:
        return "unknown" if v is None else fmt.format(v)

    print_table(
        ["machine", "count", "idle W", "max W", "idle BTU/h", "max BTU/h"],
        [
            [
                it.name,
                it.count,
                it.idle_w.display("{:g}"),
                it.max_w.display("{:g}"),
                it.idle_btu_h.display("{:g}"),
                it.max_btu_h.display("{:g}"),
            ]
            for it in items
        ]
        + [
            [
                "total",
                sum(it.count for it in items),
                show(shelf.idle_w),
                show(shelf.max_w),
                show(shelf.idle_btu_h, "{:.1f}"),
                show(shelf.max_btu_h, "{:.1f}"),
            ]
        ],
    )
    print(
        f"\nper year at {args.hours_at_load:g} h/day at Apple's max W: "
        f"{show(energy.kwh, '{:.0f}')} kWh"
        + (f", {energy.cost:.2f} at {args.tariff:g}/kWh" if energy.cost is not None else "")
    )
    print(f"  {energy.formula}")
    for u in shelf.unknown:
        print(f"  unknown: {u}")
    return 0
