"""`forgeplanner governance ...`: the gate at the boundary of a plan repository.

    governance init DIR                         a plan repository for the governance lab
    governance install-hook REPO --policy FILE  the git pre-commit hook (plain git)
    governance check --policy FILE [--staged | PLAN ...]
                                                exit 0 ALLOW (or signed-off ESCALATE),
                                                1 DENY, 2 ESCALATE; errors as the gate's:
                                                3 malformed policy, 4 a plan that cannot
                                                be judged, 5 bad command line, 6 internal
    governance sign-off PLAN --policy FILE --who NAME --why TEXT
    governance latency PLAN --policy FILE [--runs N]

Every check and sign-off is kept as an evidence record in the user database.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from forgeplanner.cli import argtypes
from forgeplanner.cli.output import add_json_flag, print_json, print_table


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "governance",
        help="the gate as a pre-commit hook, sign-offs, latency (learning track module 07)",
        description="Enforce the gate policy on a plan repository; record verdicts and sign-offs.",
    )
    sub = p.add_subparsers(dest="governance_command", metavar="ACTION")
    i = sub.add_parser("init", help="create a plan repository (plan + policy, committed)")
    i.add_argument("directory", metavar="DIR")
    add_json_flag(i)
    i.set_defaults(func=_init)
    h = sub.add_parser("install-hook", help="install the gate as the repository's pre-commit hook")
    h.add_argument("repo", metavar="REPO")
    h.add_argument("--policy", required=True, metavar="FILE", help="relative to REPO")
    h.add_argument("--force", action="store_true", help="replace an existing foreign hook")
    add_json_flag(h)
    h.set_defaults(func=_install)
    from forgeplanner.governance.gate import EXIT_BAD_PLAN, EXIT_INTERNAL, EXIT_USAGE

    c = sub.add_parser("check", help="judge plans (what the hook runs)")
    c.usage_exit_code = EXIT_USAGE  # type: ignore[attr-defined]  # 2 is ESCALATE here
    c.add_argument("plans", nargs="*", metavar="PLAN")
    c.add_argument("--policy", required=True, metavar="FILE")
    c.add_argument("--staged", action="store_true", help="the plans staged in this repository")
    c.add_argument("--no-record", action="store_true", help="do not keep evidence records")
    add_json_flag(c)
    c.set_defaults(
        func=_check,
        error_exit_code=EXIT_BAD_PLAN,
        crash_exit_code=EXIT_INTERNAL,
        usage_exit_code=EXIT_USAGE,
    )
    s = sub.add_parser("sign-off", help="a human accepts an ESCALATE (who, why; when = now)")
    s.add_argument("plan", metavar="PLAN")
    s.add_argument("--policy", required=True, metavar="FILE")
    s.add_argument("--who", required=True)
    s.add_argument("--why", required=True)
    add_json_flag(s)
    s.set_defaults(func=_sign_off)
    lat = sub.add_parser("latency", help="measure the gate's latency (in process and as a hook)")
    lat.add_argument("plan", metavar="PLAN")
    lat.add_argument("--policy", required=True, metavar="FILE")
    lat.add_argument("--runs", type=argtypes.repetitions, default=50)
    lat.add_argument("--process-runs", type=argtypes.repetitions, default=5)
    add_json_flag(lat)
    lat.set_defaults(func=_latency)
    p.set_defaults(func=lambda _a: (p.print_help(), 2)[1])


def _store():
    from forgeplanner.store import Store

    return Store()


def _init(args: argparse.Namespace) -> int:
    from forgeplanner.plan.plan_repo import PLAN_FILE, POLICY_FILE, init_plan_repo

    root = init_plan_repo(args.directory)
    out = {"repo": str(root), "plan": str(root / PLAN_FILE), "policy": str(root / POLICY_FILE)}
    print_json(out) if args.json else print(f"plan repository {root}: {PLAN_FILE}, {POLICY_FILE}")
    return 0


def _install(args: argparse.Namespace) -> int:
    from forgeplanner.plan.hook import install_hook

    path = install_hook(args.repo, args.policy, force=args.force)
    print_json({"hook": str(path)}) if args.json else print(f"installed {path}")
    return 0


def _check(args: argparse.Namespace) -> int:
    from forgeplanner.governance.gate import EXIT_MALFORMED_POLICY
    from forgeplanner.governance.policy import PolicyError
    from forgeplanner.plan.hook import check_files

    if not args.staged and not args.plans:
        from forgeplanner.governance.gate import EXIT_USAGE

        print("forgeplanner: error: governance check: give PLAN files or --staged", file=sys.stderr)
        return EXIT_USAGE
    with _store() as store:
        try:
            code, results = check_files(
                args.plans, args.policy, store, repo=Path("."), staged=args.staged,
                record=not args.no_record,
            )  # fmt: skip
        except PolicyError as exc:
            print(f"forgeplanner: malformed policy: {exc}", file=sys.stderr)
            return EXIT_MALFORMED_POLICY
    if args.json:
        print_json({"exit_code": code, "plans": [r.to_dict() for r in results]})
        return code
    out = sys.stdout if code == 0 else sys.stderr  # git shows a refused commit's stderr
    for r in results:
        extra = ""
        if r.signoff:
            extra = f" (signed off by {r.signoff['who']} at {r.signoff['when']})"
        print(f"{r.outcome}{extra}: {r.path} [{r.latency_ms:.1f} ms]", file=out)
        for v in r.verdicts:
            if v.outcome != "ALLOW":
                print(f"  {v.outcome} {v.rule} {v.subject}: {v.reason}", file=out)
        if r.outcome == "ESCALATE" and not r.signoff:
            print(f"  a human decides: forgeplanner governance sign-off {r.path} "
                  f"--policy {args.policy} --who NAME --why REASON; then commit again",
                  file=out)  # fmt: skip
    return code


def _sign_off(args: argparse.Namespace) -> int:
    from forgeplanner.plan.hook import sign_off

    with _store() as store:
        body = sign_off(args.plan, args.policy, args.who, args.why, store)
    if args.json:
        print_json({"signoff": body})
    else:
        print(f"signed off {args.plan} (sha256 {body['plan_sha256'][:12]}...) by {body['who']} "
              f"at {body['when']}: {body['why']}")  # fmt: skip
    return 0


def _latency(args: argparse.Namespace) -> int:
    from forgeplanner.plan.hook import measure_latency

    d: dict[str, Any] = measure_latency(
        args.plan, args.policy, runs=args.runs, process_runs=args.process_runs
    )
    if args.json:
        print_json(d)
        return 0
    rows = []
    for key, label in (("in_process", "gate (in process)"), ("hook_process", "hook (process)")):
        s = d[key]
        if s:
            rows.append((label, s["runs"], f"{s['median_ms']:.1f}", f"{s['p95_ms']:.1f}"))
    print_table(["measured", "runs", "median ms", "p95 ms"], rows)
    return 0
