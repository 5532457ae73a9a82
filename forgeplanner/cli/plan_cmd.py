"""`forgeplanner plan ...`, `export`, `evidence verify` and `gate`: build plans and their records.

    plan new NAME [--out FILE]            plan show FILE [--json]
    plan add-machine FILE CONFIG_ID [--count N] [--condition new|used|refurbished]
    plan add-model FILE MODEL_ID --quant Q [--runtime R] [--context N]
    plan attach-run FILE RUN_ID ...       plan recompute FILE      plan list / load NAME
    export PLAN --format md|html|pdf|csv|xlsx|json --out PATH [--policy FILE]
    evidence verify FILE                  exit 0 intact, 1 altered (each change named)
    gate PLAN --policy FILE               exit 0 all ALLOW, 1 any DENY, 2 ESCALATE (no DENY),
                                          3 malformed policy; other errors exit 2 via main()

Every edit recomputes estimates, layouts and running cost through the engine, writes the
file atomically and saves a new version of the plan in the user database.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from forgeplanner.cli import argtypes
from forgeplanner.cli.output import add_json_flag, print_json, print_table

EXPORT_FORMATS = ("md", "html", "pdf", "csv", "xlsx", "json")


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_plan(subparsers)
    _register_export(subparsers)
    _register_evidence(subparsers)
    _register_gate(subparsers)


# -- parsers ----------------------------------------------------------------------------------


def _alt(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--alternative", metavar="NAME", help="edit this alternative instead of the main build"
    )


def _db(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-db", action="store_true", help="do not save a version in the user database"
    )


def _register_plan(subparsers: argparse._SubParsersAction) -> None:
    plan = subparsers.add_parser(
        "plan", help="build plans (.fplan)", description="Create, edit and show build plans."
    )
    sub = plan.add_subparsers(dest="plan_command", metavar="ACTION")

    p = sub.add_parser("new", help="start a plan")
    p.add_argument("name")
    p.add_argument("--out", metavar="FILE", help="plan file (default: NAME.fplan)")
    p.add_argument("--notes", default="")
    p.add_argument(
        "--duty-hours", type=argtypes.hours_per_day, help="hours per day at load (default 4)"
    )
    p.add_argument(
        "--tariff", type=argtypes.tariff, help="electricity price per kWh (default 0.17)"
    )
    p.add_argument(
        "--currency", type=argtypes.currency_code, help="currency of the tariff (default USD)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    _db(p)
    add_json_flag(p)
    p.set_defaults(func=_plan_new)

    p = sub.add_parser("show", help="show a plan")
    p.add_argument("file")
    add_json_flag(p)
    p.set_defaults(func=_plan_show)

    p = sub.add_parser("add-machine", help="add machines of a catalog configuration")
    p.add_argument("file")
    p.add_argument("config_id")
    p.add_argument("--count", type=argtypes.machine_count, default=1)
    p.add_argument("--condition", choices=("new", "used", "refurbished"), default="new")
    p.add_argument(
        "--price-usd", type=argtypes.unit_price, help="your own unit price (basis 'user')"
    )
    p.add_argument("--price-date", type=argtypes.iso_date, help="date of --price-usd (YYYY-MM-DD)")
    p.add_argument("--role", default="", help="what the machines are for (free text)")
    _alt(p)
    _db(p)
    add_json_flag(p)
    p.set_defaults(func=_plan_add_machine)

    p = sub.add_parser("remove-machine", help="remove a configuration (or lower its count)")
    p.add_argument("file")
    p.add_argument("config_id")
    p.add_argument(
        "--count",
        type=argtypes.bounded_int(0, argtypes.MAX_MACHINES, " machines"),
        help="new count (default: remove)",
    )
    _alt(p)
    _db(p)
    add_json_flag(p)
    p.set_defaults(func=_plan_remove_machine)

    p = sub.add_parser("add-model", help="add a model with its quantization")
    p.add_argument("file")
    p.add_argument("model_id")
    p.add_argument("--quant", required=True)
    p.add_argument("--runtime", default="llama.cpp", choices=("llama.cpp", "mlx", "ollama"))
    p.add_argument("--context", type=argtypes.tokens, default=8192)
    _alt(p)
    _db(p)
    add_json_flag(p)
    p.set_defaults(func=_plan_add_model)

    p = sub.add_parser("remove-model", help="remove a model")
    p.add_argument("file")
    p.add_argument("model_id")
    _alt(p)
    _db(p)
    add_json_flag(p)
    p.set_defaults(func=_plan_remove_model)

    p = sub.add_parser("add-alternative", help="add an alternative build to compare")
    p.add_argument("file")
    p.add_argument("name")
    p.add_argument("--rationale", default="")
    _db(p)
    add_json_flag(p)
    p.set_defaults(func=_plan_add_alternative)

    p = sub.add_parser("set-power", help="duty cycle and electricity tariff")
    p.add_argument("file")
    p.add_argument("--duty-hours", type=argtypes.hours_per_day)
    p.add_argument("--tariff", type=argtypes.tariff)
    p.add_argument("--currency", type=argtypes.currency_code)
    _db(p)
    add_json_flag(p)
    p.set_defaults(func=_plan_set_power)

    p = sub.add_parser("set-cluster", help="lay one model out over several machines")
    p.add_argument("file")
    p.add_argument("--model", required=True)
    p.add_argument("--quant", required=True)
    p.add_argument("--context", type=argtypes.tokens, default=8192)
    p.add_argument("--node", action="append", required=True, metavar="CONFIG_ID[xCOUNT]")
    p.add_argument("--link", default=None)
    p.add_argument("--mode", choices=("pipeline", "tensor"), default="pipeline")
    # The runtimes that split a model over machines (services.cluster.CLUSTER_RUNTIMES).
    p.add_argument("--runtime", default="llama.cpp", choices=("llama.cpp", "mlx"))
    _alt(p)
    _db(p)
    add_json_flag(p)
    p.set_defaults(func=_plan_set_cluster)

    p = sub.add_parser("set-platform", help="lay out the K3s platform over named nodes")
    p.add_argument("file")
    p.add_argument("--node", action="append", required=True, metavar="NAME=CONFIG_ID")
    p.add_argument("--model")
    p.add_argument("--quant")
    p.add_argument("--runtime", default="ollama", choices=("ollama", "mlx"))
    p.add_argument("--context", type=argtypes.tokens, default=8192)
    _alt(p)
    _db(p)
    add_json_flag(p)
    p.set_defaults(func=_plan_set_platform)

    p = sub.add_parser("attach-run", help="attach measured benchmark runs from the store")
    p.add_argument("file")
    p.add_argument("run_ids", nargs="+", metavar="RUN_ID")
    p.add_argument("--config", metavar="CONFIG_ID", help="the plan machine the runs measured")
    _db(p)
    add_json_flag(p)
    p.set_defaults(func=_plan_attach_run)

    p = sub.add_parser("detach-run", help="remove an attached run")
    p.add_argument("file")
    p.add_argument("run_id")
    _db(p)
    add_json_flag(p)
    p.set_defaults(func=_plan_detach_run)

    p = sub.add_parser("recompute", help="refresh estimates with this version's engine")
    p.add_argument("file")
    _db(p)
    add_json_flag(p)
    p.set_defaults(func=_plan_recompute)

    p = sub.add_parser("migrate", help="rewrite an older .fplan at the current schema version")
    p.add_argument("file")
    p.add_argument("--out", metavar="FILE", help="write here instead of in place")
    add_json_flag(p)
    p.set_defaults(func=_plan_migrate)

    p = sub.add_parser("list", help="plans saved in the user database")
    add_json_flag(p)
    p.set_defaults(func=_plan_list)

    p = sub.add_parser("load", help="write a plan saved in the database to a file")
    p.add_argument("name")
    p.add_argument("--version", type=argtypes.record_id)
    p.add_argument("--out", metavar="FILE", required=True)
    add_json_flag(p)
    p.set_defaults(func=_plan_load)


def _register_export(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a plan (md, html, pdf, csv, xlsx, json evidence record)",
        description="Export a plan. JSON is the evidence record (see `evidence verify`).",
    )
    p.add_argument("plan", metavar="PLAN")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--out", required=True, metavar="PATH")
    p.add_argument(
        "--policy", metavar="FILE", help="evaluate this gate policy and record the verdicts"
    )
    p.add_argument(
        "--no-db", action="store_true", help="json: do not keep the record in the user database"
    )
    add_json_flag(p)
    p.set_defaults(func=_export)


def _register_evidence(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("evidence", help="check and sign evidence records")
    sub = p.add_subparsers(dest="evidence_command", metavar="ACTION")
    v = sub.add_parser(
        "verify",
        help="check every digest (and signature) of an evidence record",
        description="Exit 0 when the record is intact (and, with --signer, signed by that "
        "key), 1 when anything changed or the signature is missing or wrong (each named).",
    )
    v.add_argument("file")
    v.add_argument(
        "--signer",
        action="append",
        metavar="PUBLIC_KEY",
        help="require a valid signature by this key: a .pub file, a PEM public key or an "
        "OpenSSH line 'ssh-ed25519 AAAA...' (repeat to accept any of several)",
    )
    add_json_flag(v)
    v.set_defaults(func=_evidence_verify)
    g = sub.add_parser(
        "sign",
        help="sign an intact evidence record with your Ed25519 or SSH key",
        description="Add a signature over the record's seal, made with a private key "
        "(OpenSSH or PEM; Ed25519, ECDSA or RSA >= 2048 bits). An encrypted key's passphrase "
        "comes from FORGEPLANNER_KEY_PASSPHRASE. The record is rewritten atomically.",
    )
    g.add_argument("file")
    g.add_argument("--key", required=True, metavar="PRIVATE_KEY", help="e.g. ~/.ssh/id_ed25519")
    g.add_argument("--signer", metavar="NAME", help="who signs (default: the key file's name)")
    g.add_argument("--out", metavar="FILE", help="write the signed record here (default: FILE)")
    add_json_flag(g)
    g.set_defaults(func=_evidence_sign)


def _register_gate(subparsers: argparse._SubParsersAction) -> None:
    from forgeplanner.governance.gate import EXIT_BAD_PLAN, EXIT_INTERNAL, EXIT_USAGE

    p = subparsers.add_parser(
        "gate",
        help="evaluate a gate policy against a plan (exit 0 allow, 1 deny, 2 escalate)",
        description="Judge a plan against a policy, on figures recomputed from the catalog, "
        "the engine and your own price observations (never on figures stored in the plan "
        "file, which anyone can edit). Exit codes: 0 every rule ALLOWs, 1 any rule DENIES, 2 "
        "a rule ESCALATES and none denies; errors: 3 the policy file is malformed, 4 the plan "
        "cannot be judged (missing, invalid, unknown machine or model), 5 bad command line, "
        "6 internal error.",
    )
    p.usage_exit_code = EXIT_USAGE  # type: ignore[attr-defined]  # argparse's 2 = ESCALATE
    p.add_argument("plan", metavar="PLAN")
    p.add_argument("--policy", required=True, metavar="FILE")
    p.add_argument("--alternative", metavar="NAME", help="judge this alternative instead")
    p.add_argument(
        "--record",
        action="store_true",
        help="store the verdicts (and the recomputed figures they judged) in the plan file",
    )
    add_json_flag(p)
    p.set_defaults(
        func=_gate,
        error_exit_code=EXIT_BAD_PLAN,
        crash_exit_code=EXIT_INTERNAL,
        usage_exit_code=EXIT_USAGE,
    )


# -- helpers ---------------------------------------------------------------------------------


def _slug(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.")
    return s or "plan"


def _sources():
    from forgeplanner.plan.sources import EngineSources

    return EngineSources()


def _load(path: str):
    from forgeplanner.plan.files import read_plan

    return read_plan(path)


def _commit(args: argparse.Namespace, plan, path: str | Path, recompute: bool = True):
    """Recompute through the engine, then write the file atomically and save a database
    version as one unit: the version is inserted first (taking the database's write lock, so a
    busy database fails before the file is touched), the file is written, then the version is
    committed; if that commit fails the old file is put back. File and database agree."""
    from forgeplanner.plan.compute import recompute as do_recompute
    from forgeplanner.plan.files import write_plan

    if recompute:
        plan = do_recompute(plan, _sources(), plan.updated_at)
    version = None
    if getattr(args, "no_db", False):
        write_plan(path, plan)
    else:
        version = _save_db(plan, lambda: write_plan(path, plan), path)
    _report(args, plan, path, version)
    return plan


def _save_db(plan, write_file, path: str | Path) -> int:
    from forgeplanner.fileio import atomic_write
    from forgeplanner.plan.document import plan_to_document
    from forgeplanner.store import PlanRepo, open_store

    try:
        old = Path(path).read_bytes() if Path(path).is_file() else None
    except OSError:
        old = None
    store = open_store()
    try:
        written = False
        try:
            with store.session() as s:
                version = PlanRepo(s).save(plan.name, plan_to_document(plan)).version
                write_file()
                written = True
            return version
        except BaseException:
            if written:  # the commit failed after the file was replaced: put the old one back
                if old is not None:
                    atomic_write(path, old)
                else:
                    Path(path).unlink(missing_ok=True)
            raise
    finally:
        store.close()


def _report(args: argparse.Namespace, plan, path, version: int | None) -> None:
    if getattr(args, "json", False):
        print_json(_summary(plan, path, version))
    else:
        _print_plan(plan)
        db = f", database version {version}" if version is not None else ""
        print(f"\nwrote {path}{db}")


def _summary(plan, path=None, version: int | None = None) -> dict[str, Any]:
    from forgeplanner.export import tables as t
    from forgeplanner.plan.document import plan_to_document

    doc = plan_to_document(plan)
    out: dict[str, Any] = {
        "file": None if path is None else str(path),
        "db_version": version,
        "schema_version": doc["schema_version"],
        "name": plan.name,
        "totals": t.totals(plan.build),
        "alternatives": {a.name: t.totals(a.build) for a in plan.alternatives},
        "document": doc,
    }
    return out


def _print_plan(plan) -> None:
    from forgeplanner.export import tables as t

    print(f"Plan: {plan.name}  (updated {plan.updated_at})")
    for label, build in [("main build", plan.build)] + [
        (f"alternative: {a.name}", a.build) for a in plan.alternatives
    ]:
        print(f"\n== {label}")
        rows = t.bom_rows(build)
        if rows:
            print_table(
                ["machine", "config", "count", "unit", "total", "basis", "as of"],
                [
                    [
                        r["machine"],
                        r["config_id"],
                        r["count"],
                        t.usd(r["unit_price_usd"]),
                        t.usd(r["line_total_usd"]),
                        r["price_basis"],
                        r["price_as_of"] or "",
                    ]
                    for r in rows
                ],
            )
        tot = t.totals(build)
        if not build.machines:
            print("no machines yet")
        else:
            print(
                f"total {t.usd(tot['total_price_usd'])}; max {t.num(tot['max_w'], 0, ' W')}; "
                f"{t.num(tot['annual_kwh'], 0, ' kWh')}/year, "
                f"{t.num(tot['annual_cost'], 0, ' ' + tot['currency'])}/year"
            )
        est = t.estimate_rows(build)
        if est:
            print_table(
                ["model", "quant", "machine", "verdict", "total", "headroom", "decode", "prefill"],
                [
                    [
                        r["model_id"],
                        r["quant"],
                        r["target"],
                        r["verdict"],
                        t.gib(r["total_bytes"]),
                        t.gib(r["headroom_bytes"]),
                        t.num(r["decode_tps"]),
                        t.num(r["prefill_tps"], 0),
                    ]
                    for r in est
                ],
            )
        elif build.models:
            print("models: " + ", ".join(f"{m.model_id} {m.quant}" for m in build.models))
        unpriced = [f"{m.config_id}: {m.price.reason}" for m in build.machines if m.price.reason]
        if unpriced:
            print("no price: " + "; ".join(unpriced))
        if build.cluster is not None:
            res = build.cluster.result
            print(
                f"cluster: {len(res.get('nodes') or [])} nodes, decode "
                f"{t.num(res.get('decode_tps'))} tok/s, prefill {t.num(res.get('prefill_tps'), 0)}"
                f" tok/s ({res.get('verdict', '')})"
            )
        if build.platform is not None:
            roles = t.platform_node_rows(build)
            print("K3s: " + "; ".join(f"{r['name']} {r['roles']}" for r in roles))
    if plan.runs:
        print("\nattached runs: " + ", ".join(r.run_id for r in plan.runs))
    if plan.verdicts:
        print("gate verdicts: " + ", ".join(f"{v.rule}={v.outcome}" for v in plan.verdicts))


# -- plan handlers ---------------------------------------------------------------------------


def _plan_new(args: argparse.Namespace) -> int:
    from forgeplanner.errors import ForgePlannerError
    from forgeplanner.plan.files import locked_plan

    out = Path(args.out or f"{_slug(args.name)}.fplan")
    with locked_plan(out):
        if out.exists() and not args.force:
            raise ForgePlannerError(f"{out} exists; pass --force to overwrite it")
        _new_plan_locked(args, out)
    return 0


def _new_plan_locked(args: argparse.Namespace, out: Path) -> None:
    from dataclasses import replace

    from forgeplanner.domain.plan import PowerSettings
    from forgeplanner.errors import ForgePlannerError
    from forgeplanner.plan import edit

    try:
        plan = edit.new_plan(args.name, now_iso(), args.notes)
        defaults = PowerSettings()
        power = PowerSettings(
            duty_hours_per_day=defaults.duty_hours_per_day
            if args.duty_hours is None
            else args.duty_hours,
            tariff_per_kwh=defaults.tariff_per_kwh if args.tariff is None else args.tariff,
            currency=args.currency or defaults.currency,
        )
    except ValueError as exc:
        raise ForgePlannerError(str(exc)) from exc
    plan = replace(plan, power=power)
    _commit(args, plan, out, recompute=False)


def _plan_show(args: argparse.Namespace) -> int:
    plan = _load(args.file)
    if args.json:
        print_json(_summary(plan, args.file))
    else:
        _print_plan(plan)
    return 0


def _edit(args: argparse.Namespace, fn) -> int:
    """Under the plan's edit lock: load, apply `fn(plan, now) -> plan`, recompute, write, save
    (a concurrent edit waits for this one instead of overwriting it)."""
    from forgeplanner.errors import ForgePlannerError
    from forgeplanner.plan.files import locked_plan

    with locked_plan(args.file):
        plan = _load(args.file)
        try:
            plan = fn(plan, now_iso())
        except ValueError as exc:
            raise ForgePlannerError(str(exc)) from exc
        _commit(args, plan, args.file)
    return 0


def _plan_add_machine(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from forgeplanner.domain.plan import PlanPrice
    from forgeplanner.errors import ForgePlannerError
    from forgeplanner.plan import edit

    if args.count < 1:
        raise ForgePlannerError(f"--count must be >= 1, got {args.count}")
    machine = _sources().machine(args.config_id, args.count, args.condition)
    if args.price_usd is not None:
        try:
            price = PlanPrice(
                usd=args.price_usd,
                basis="user",
                as_of=args.price_date or now_iso()[:10],
                source="entered by the user",
                condition=args.condition,
            )
        except ValueError as exc:
            raise ForgePlannerError(str(exc)) from exc
        machine = replace(machine, price=price)
    if args.role:
        machine = replace(machine, role=args.role)
    return _edit(args, lambda p, now: edit.add_machine(p, machine, now, args.alternative))


def _plan_remove_machine(args: argparse.Namespace) -> int:
    from forgeplanner.plan import edit

    count = 0 if args.count is None else args.count
    return _edit(
        args, lambda p, now: edit.set_machine_count(p, args.config_id, count, now, args.alternative)
    )


def _plan_add_model(args: argparse.Namespace) -> int:
    from forgeplanner.plan import edit

    model = _sources().model(args.model_id, args.quant, args.runtime, args.context)
    return _edit(args, lambda p, now: edit.add_model(p, model, now, args.alternative))


def _plan_remove_model(args: argparse.Namespace) -> int:
    from forgeplanner.plan import edit

    return _edit(args, lambda p, now: edit.remove_model(p, args.model_id, now, args.alternative))


def _plan_add_alternative(args: argparse.Namespace) -> int:
    from forgeplanner.plan import edit

    return _edit(args, lambda p, now: edit.add_alternative(p, args.name, args.rationale, now))


def _plan_set_power(args: argparse.Namespace) -> int:
    from forgeplanner.domain.plan import PowerSettings
    from forgeplanner.plan import edit

    def fn(plan, now):
        old = plan.power
        power = PowerSettings(
            duty_hours_per_day=old.duty_hours_per_day
            if args.duty_hours is None
            else args.duty_hours,
            tariff_per_kwh=old.tariff_per_kwh if args.tariff is None else args.tariff,
            currency=args.currency or old.currency,
        )
        return edit.set_power(plan, power, now)

    return _edit(args, fn)


def parse_node_counts(values: list[str]) -> list[dict[str, Any]]:
    from forgeplanner.cli.argtypes import MAX_CLUSTER_NODES
    from forgeplanner.errors import ForgePlannerError

    nodes = []
    for v in values:
        m = re.fullmatch(r"(.+?)(?:x(\d{1,6}))?", v)
        if m is None or not m.group(1):
            raise ForgePlannerError(f"--node '{v}': expected CONFIG_ID or CONFIG_IDxCOUNT")
        count = int(m.group(2) or 1)
        if not 1 <= count <= MAX_CLUSTER_NODES:
            raise ForgePlannerError(f"--node '{v}': count must be 1..{MAX_CLUSTER_NODES}")
        nodes.append({"config_id": m.group(1), "count": count})
    return nodes


def _plan_set_cluster(args: argparse.Namespace) -> int:
    from forgeplanner.plan import edit

    inputs = {
        "model_id": args.model,
        "quant": args.quant,
        "context": args.context,
        "runtime": args.runtime,
        "nodes": parse_node_counts(args.node),
        "link": args.link,
        "mode": args.mode,
    }
    section = _sources().layout("cluster", inputs)
    return _edit(args, lambda p, now: edit.set_layout(p, section, "cluster", now, args.alternative))


def _plan_set_platform(args: argparse.Namespace) -> int:
    from forgeplanner.errors import ForgePlannerError
    from forgeplanner.plan import edit

    nodes = []
    for v in args.node:
        name, sep, config = v.partition("=")
        if not sep or not name or not config:
            raise ForgePlannerError(f"--node '{v}': expected NAME=CONFIG_ID")
        nodes.append({"name": name, "config_id": config})
    inputs = {
        "nodes": nodes,
        "model_id": args.model,
        "quant": args.quant,
        "runtime": args.runtime,
        "context": args.context,
    }
    section = _sources().layout("platform", inputs)
    return _edit(
        args, lambda p, now: edit.set_layout(p, section, "platform", now, args.alternative)
    )


def _plan_attach_run(args: argparse.Namespace) -> int:
    from forgeplanner.plan import edit
    from forgeplanner.plan.runs import runs_from_store

    runs = runs_from_store(args.run_ids, config_id=args.config or "")

    def fn(plan, now):
        for run in runs:
            plan = edit.attach_run(plan, run, now)
        return plan

    return _edit(args, fn)


def _plan_detach_run(args: argparse.Namespace) -> int:
    from forgeplanner.plan import edit

    return _edit(args, lambda p, now: edit.detach_run(p, args.run_id, now))


def _plan_recompute(args: argparse.Namespace) -> int:
    from dataclasses import replace

    return _edit(args, lambda p, now: replace(p, updated_at=now))


def _plan_migrate(args: argparse.Namespace) -> int:
    from forgeplanner.plan.files import locked_plan, write_plan

    out = args.out or args.file
    with locked_plan(out):
        plan = _load(args.file)
        write_plan(out, plan)
    if args.json:
        print_json(_summary(plan, out))
    else:
        print(f"wrote {out} (schema version current)")
    return 0


def _plan_list(args: argparse.Namespace) -> int:
    from forgeplanner.store import PlanRepo, open_store

    store = open_store()
    try:
        with store.session() as s:
            repo = PlanRepo(s)
            rows = []
            for name in repo.names():
                versions = repo.versions(name)
                rows.append(
                    {
                        "name": name,
                        "versions": len(versions),
                        "latest": versions[-1].version,
                        "saved_at": versions[-1].created_at.isoformat(),
                    }
                )
    finally:
        store.close()
    if args.json:
        print_json({"plans": rows})
    else:
        print_table(
            ["name", "versions", "latest", "saved at"],
            [[r["name"], r["versions"], r["latest"], r["saved_at"]] for r in rows],
        )
    return 0


def _plan_load(args: argparse.Namespace) -> int:
    from forgeplanner.plan.document import plan_from_document
    from forgeplanner.plan.files import locked_plan, write_plan
    from forgeplanner.store import PlanRepo, open_store

    store = open_store()
    try:
        with store.session() as s:
            record = PlanRepo(s).get(args.name, args.version)
    finally:
        store.close()
    plan = plan_from_document(record.document, f"database plan '{record.name}' v{record.version}")
    with locked_plan(args.out):
        write_plan(args.out, plan)
    if args.json:
        print_json(_summary(plan, args.out, record.version))
    else:
        print(f"wrote {args.out} from '{record.name}' version {record.version}")
    return 0


# -- export, evidence, gate ------------------------------------------------------------------


def _export(args: argparse.Namespace) -> int:
    from forgeplanner.export.render import export_plan

    plan = _load(args.plan)
    gate = policy = None
    if args.policy:
        from forgeplanner.governance.gate import evaluate
        from forgeplanner.governance.policy import load_policy

        policy = load_policy(args.policy)
        # As the gate: verdicts on recomputed figures, and the report shows those figures.
        plan = _recomputed_for_gate(plan)
        gate = evaluate(plan, policy)
    elif plan.verdicts and args.format == "json":
        from forgeplanner.governance.gate import GateResult

        gate = GateResult("(recorded in the plan)", "", "primary build", plan.verdicts)
    if gate is not None:
        from dataclasses import replace

        plan = replace(plan, verdicts=gate.verdicts)
    warnings: list[str] = []
    evidence_id = None
    if args.format == "json" and not args.no_db:
        out, evidence_id = _export_evidence(plan, Path(args.out), gate, policy)
    else:
        out = export_plan(
            plan,
            args.format,
            args.out,
            now=now_iso(),
            gate=gate,
            policy=policy,
            warn=warnings.append,
        )
    for w in warnings:
        print(f"forgeplanner: warning: {w}", file=sys.stderr)
    if args.json:
        report: dict[str, Any] = {
            "format": args.format,
            "out": str(out),
            "bytes": out.stat().st_size,
        }
        if evidence_id is not None:
            report["evidence_id"] = evidence_id
        if warnings:
            report["warnings"] = warnings
        print_json(report)
    else:
        kept = f"; evidence record {evidence_id} in the database" if evidence_id else ""
        print(f"wrote {out} ({args.format}, {out.stat().st_size:,} bytes){kept}")
    return 0


def _export_evidence(plan, out: Path, gate, policy) -> tuple[Path, int]:
    """Write the evidence record and keep it (exactly as written) with the plan's latest
    saved version, as one unit: the database row is inserted first (a busy database fails
    before the file is touched), then the file is written, then the row is committed."""
    import json

    from forgeplanner.errors import NotFoundError
    from forgeplanner.export.render import render_bytes
    from forgeplanner.fileio import atomic_write, check_output_path
    from forgeplanner.store import EvidenceRepo, PlanRepo, open_store

    out = check_output_path(out)
    data = render_bytes(plan, "json", now=now_iso(), gate=gate, policy=policy)
    record = json.loads(data)
    store = open_store()
    try:
        with store.session() as s:
            try:
                plan_id = PlanRepo(s).get(plan.name).id
            except NotFoundError:
                plan_id = None
            view = EvidenceRepo(s).add(
                kind="plan",
                title=f"evidence record: {plan.name}",
                body=record,
                plan_id=plan_id,
                run_ids=[
                    int(r.run_id) for r in plan.runs if r.run_id.isdigit() and len(r.run_id) < 19
                ],
            )
            atomic_write(out, data)
            return out, view.id
    finally:
        store.close()


def _evidence_verify(args: argparse.Namespace) -> int:
    from forgeplanner.evidence.record import MAX_RECORD_BYTES, verify_bytes
    from forgeplanner.evidence.signing import load_public_key
    from forgeplanner.fileio import read_input

    signers = [load_public_key(k) for k in args.signer or []]
    data = read_input(args.file, MAX_RECORD_BYTES, "evidence record")
    result = verify_bytes(data, signers, source=args.file)
    if args.json:
        print_json(
            {
                "file": args.file,
                "ok": result.ok,
                "problems": result.problems,
                "digests_checked": result.checked,
                "signed_by": result.signed_by,
            }
        )
    elif result.ok:
        signed = f"; signed by {', '.join(result.signed_by)}" if result.signed_by else ""
        print(f"{args.file}: intact ({result.checked} digests match{signed})")
    elif len(result.problems) == 1:
        print(f"{args.file}: ALTERED: {result.problems[0]}", file=sys.stderr)
    else:
        print(f"{args.file}: ALTERED", file=sys.stderr)
        for problem in result.problems:
            print(f"  - {problem}", file=sys.stderr)
    return 0 if result.ok else 1


def _evidence_sign(args: argparse.Namespace) -> int:
    from forgeplanner.evidence import signing
    from forgeplanner.evidence.record import MAX_RECORD_BYTES, dumps, loads_record, sign_record
    from forgeplanner.fileio import atomic_write, read_input
    from forgeplanner.plan.files import locked_plan

    key = signing.load_private_key(args.key, signing.passphrase_from_env())
    signer = args.signer if args.signer is not None else signing.default_signer_name(args.key)
    out = args.out or args.file
    with locked_plan(out):  # the same edit lock as plans: two signers do not lose one
        record = loads_record(read_input(args.file, MAX_RECORD_BYTES, "evidence record"), args.file)
        if not isinstance(record, dict):
            from forgeplanner.errors import DataError

            raise DataError(args.file, "(document)", type(record).__name__, "not a record")
        signed = sign_record(record, key, signer, now_iso())
        atomic_write(out, dumps(signed).encode("utf-8"))
    entry = signed["signatures"][-1]
    if args.json:
        print_json({"file": str(out), "signature": entry})
    else:
        print(f"signed {out} as {entry['fingerprint']} ({entry['signer']})")
    return 0


def _gate(args: argparse.Namespace) -> int:
    from forgeplanner.governance.gate import EXIT_MALFORMED_POLICY, evaluate
    from forgeplanner.governance.policy import PolicyError, load_policy
    from forgeplanner.plan.files import locked_plan

    try:
        policy = load_policy(args.policy)
    except PolicyError as exc:
        # A broken policy is not a verdict: exit 3 so a hook never mistakes it for ESCALATE.
        print(f"forgeplanner: malformed policy: {exc}", file=sys.stderr)
        return EXIT_MALFORMED_POLICY
    lock = locked_plan(args.plan) if args.record else contextlib.nullcontext()
    with lock:
        stored = _load(args.plan)
        plan = _recomputed_for_gate(stored, args.alternative)
        try:
            result = evaluate(plan, policy, args.alternative)
        except KeyError as exc:
            from forgeplanner.errors import ForgePlannerError

            raise ForgePlannerError(str(exc.args[0])) from exc
        if args.record:
            from forgeplanner.plan import edit
            from forgeplanner.plan.files import write_plan

            write_plan(args.plan, edit.set_verdicts(plan, result.verdicts, now_iso()))
    changed = _figure_changes(stored, plan)
    if changed:
        shown = "; ".join(changed[:6]) + (
            f"; ... {len(changed) - 6} more" if len(changed) > 6 else ""
        )
        print(
            f"note: {args.plan}: judged on recomputed figures, which differ from the file's "
            f"({shown}); `forgeplanner plan recompute {args.plan}` updates the file",
            file=sys.stderr,
        )
    if args.json:
        from forgeplanner.plan.document import to_jsonable

        print_json(
            {
                "policy": policy.name,
                "policy_sha256": policy.sha256,
                "target": result.target,
                "outcome": result.outcome,
                "exit_code": result.exit_code,
                "verdicts": to_jsonable(result.verdicts),
                "recomputed": changed,
            }
        )
    else:
        print_table(
            ["rule", "subject", "verdict", "observed", "limit", "reason"],
            [
                [v.rule, v.subject, v.outcome, v.observed, v.limit, v.reason]
                for v in result.verdicts
            ],
        )
        print(f"\n{result.outcome} ({result.target}, policy {policy.name})")
    return result.exit_code


def _recomputed_for_gate(plan, alternative: str | None = None):
    """The plan with every derived figure of the judged build (the main build, or the named
    alternative) recomputed: machines' prices and power from the catalog and the user's price
    observations, estimates and layouts from the engine. The gate never trusts numbers stored
    in a file anyone can edit. A machine or model this installation does not know makes the
    plan unjudgeable (exit 4), never a guess."""
    from dataclasses import replace

    from forgeplanner.plan.compute import recompute_build

    sources = _sources()
    if alternative is None:
        return replace(plan, build=recompute_build(plan.build, sources, plan.power))
    try:
        target = plan.alternative(alternative)
    except KeyError as exc:
        from forgeplanner.errors import ForgePlannerError

        raise ForgePlannerError(str(exc.args[0])) from None
    fresh = replace(target, build=recompute_build(target.build, sources, plan.power))
    return replace(plan, alternatives=tuple(fresh if a is target else a for a in plan.alternatives))


def _figure_changes(before, after) -> list[str]:
    """What a recompute changed that the gate judges: prices, power, fit and headroom."""
    from forgeplanner.export.tables import usd

    out: list[str] = []
    builds = [("", before.build, after.build)] + [
        (f"{a.name}: ", a.build, b.build)
        for a, b in zip(before.alternatives, after.alternatives, strict=True)
    ]
    for label, old, new in builds:
        for m0, m1 in zip(old.machines, new.machines, strict=True):
            if m0.price.usd != m1.price.usd:
                out.append(
                    f"{label}{m0.config_id} price {usd(m0.price.usd)} -> {usd(m1.price.usd)}"
                )
            for attr in ("idle_w", "max_w"):
                v0, v1 = getattr(m0, attr), getattr(m1, attr)
                if v0 != v1:
                    out.append(f"{label}{m0.config_id} {attr} {v0} -> {v1}")
        e0 = {(e.model_id, e.quant, e.target): e for e in old.estimates}
        for e in new.estimates:
            prev = e0.get((e.model_id, e.quant, e.target))
            if prev is None:
                out.append(f"{label}{e.model_id} on {e.target}: estimate added")
            elif (prev.verdict, prev.headroom_bytes) != (e.verdict, e.headroom_bytes):
                out.append(f"{label}{e.model_id} on {e.target}: {prev.verdict} -> {e.verdict}")
    return out
