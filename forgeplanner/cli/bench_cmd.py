"""Benchmarks, calibration and lab sessions:

    forgeplanner bench run builtin [--json]
    forgeplanner bench run llama.cpp (--gguf PATH | --model ID) [--quant Q] [--rpc host:port,...]
                                     [--tensor-split 1/1] [-p N] [-n N] [-d N] [-r N] [--json]
    forgeplanner bench run ollama --model NAME [--url URL] [--json]
    forgeplanner bench run mlx --model REPO [--json]          (macOS on Apple silicon)
    forgeplanner bench rpc-commands --rpc host:port,...       (what to start on each node)
    forgeplanner bench import prometheus --node NAME [--url URL] [--model ID --quant Q
                                         --machine CONFIG_ID] [--json]
    forgeplanner bench list [--json]          -> {"runs": [...]}
    forgeplanner bench show ID [--json]
    forgeplanner calibrate [--json]
    forgeplanner lab list | show L-00N [--template] | run L-001|L-002|L-003 [--answers FILE.toml]
                 [--workdir DIR] | answer RECORD --answers FILE.toml
                 | export RECORD --format md|html|pdf|json --out PATH | records [--json]

JSON of a run: `id`, `fingerprint`, `measured`, `estimate`, `error_pct` (+ builtin:
`memory_bandwidth_gbps`, `matmul_gflops`, ...). Progress is drawn on stderr (a bar on a
terminal, one line per step otherwise), so stdout stays clean JSON with --json.
"""

from __future__ import annotations

import argparse
from typing import Any

from forgeplanner.cli import argtypes
from forgeplanner.cli.output import add_json_flag, print_json, print_table


def register(subparsers: argparse._SubParsersAction) -> None:
    _register_bench(subparsers)
    _register_calibrate(subparsers)
    _register_lab(subparsers)


_ints = argtypes.token_list


ACCEPT_LOAD_HELP = (
    "keep this run for estimates even if the machine is busy (it is still flagged noisy, and "
    "used only when no quiet run exists): for a machine that is never idle"
)


def _register_bench(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="benchmark this machine (built-in, llama.cpp, Ollama, MLX) and keep the runs",
        description="Run benchmarks, store them with this machine's fingerprint and the "
        "estimate made before each run, and show the error.",
    )
    sub = p.add_subparsers(dest="bench_command", metavar="SUBCOMMAND")
    run = sub.add_parser("run", help="run a benchmark")
    runners = run.add_subparsers(dest="runner", metavar="RUNNER")

    b = runners.add_parser("builtin", help="memory bandwidth, matmul, decode simulation")
    b.add_argument(
        "--array-mb", type=argtypes.mebibytes, help="MiB per bandwidth array (default: >= LLC)"
    )
    b.add_argument("--repetitions", "-r", type=argtypes.repetitions, default=7)
    b.add_argument("--threads", type=argtypes.threads, help="default: every logical CPU")
    b.add_argument(
        "--decode-mb", type=argtypes.mebibytes, default=512, help="decode-simulation weights, MiB"
    )
    b.add_argument("--accept-load", action="store_true", help=ACCEPT_LOAD_HELP)
    add_json_flag(b)
    b.set_defaults(func=_run_builtin)

    ll = runners.add_parser("llama.cpp", help="llama-bench (or llama-cpp-python) on a GGUF")
    src = ll.add_mutually_exclusive_group(required=True)
    src.add_argument("--gguf", metavar="PATH", help="a GGUF file")
    src.add_argument(
        "--model",
        metavar="ID",
        help="a catalog model: benchmarks a random-weight GGUF of its shape",
    )
    ll.add_argument("--quant", default="Q8_0", help="synthetic file type with --model "
                    "(F16, Q8_0, Q4_0, F32; default Q8_0)")  # fmt: skip
    ll.add_argument("--rpc", metavar="HOST:PORT,...", help="llama.cpp RPC servers (cluster run)")
    ll.add_argument("--tensor-split", metavar="A/B/...", help="split over the RPC devices")
    ll.add_argument("-p", "--n-prompt", type=_ints, default=(512,), help="prompt tokens")
    ll.add_argument("-n", "--n-gen", type=_ints, default=(128,), help="generated tokens")
    ll.add_argument("-d", "--depth", type=_ints, default=(0,), help="tokens already in cache")
    ll.add_argument("-r", "--repetitions", type=argtypes.repetitions, default=5)
    ll.add_argument("--threads", type=argtypes.threads)
    ll.add_argument(
        "--flash-attn",
        choices=("on", "off"),
        help="default: llama-bench's own default (-fa auto); the estimate uses the same",
    )
    ll.add_argument("--timeout", type=argtypes.seconds, default=3600.0, help="seconds")
    ll.add_argument("--accept-load", action="store_true", help=ACCEPT_LOAD_HELP)
    add_json_flag(ll)
    ll.set_defaults(func=_run_llamacpp)

    ol = runners.add_parser("ollama", help="a model served by Ollama (HTTP API)")
    ol.add_argument("--model", required=True, metavar="NAME", help="e.g. llama3.1:8b")
    ol.add_argument("--url", default=None, help="default $OLLAMA_HOST or http://localhost:11434")
    ol.add_argument("-n", "--n-gen", type=argtypes.tokens, default=128)
    ol.add_argument("-r", "--repetitions", type=argtypes.repetitions, default=3)
    ol.add_argument("--catalog-model", metavar="ID", help="catalog id, for the estimate")
    ol.add_argument("--quant", help="its quantization (e.g. Q4_K_M), for the estimate")
    add_json_flag(ol)
    ol.set_defaults(func=_run_ollama)

    mx = runners.add_parser("mlx", help="mlx_lm.benchmark (macOS on Apple silicon)")
    mx.add_argument("--model", required=True, metavar="REPO", help="MLX model repo or folder")
    mx.add_argument("-p", "--n-prompt", type=argtypes.tokens, default=512)
    mx.add_argument("-n", "--n-gen", type=argtypes.tokens, default=128)
    mx.add_argument("-r", "--repetitions", type=argtypes.repetitions, default=5)
    mx.add_argument("--catalog-model", metavar="ID")
    mx.add_argument("--quant", help="e.g. MLX-4bit")
    mx.add_argument("--accept-load", action="store_true", help=ACCEPT_LOAD_HELP)
    add_json_flag(mx)
    mx.set_defaults(func=_run_mlx)
    run.set_defaults(func=lambda _a: (run.print_help(), 2)[1])

    imp = sub.add_parser("import", help="import measured runs from elsewhere")
    sources = imp.add_subparsers(dest="source", metavar="SOURCE")
    pr = sources.add_parser(
        "prometheus", help="measured serving metrics of one inference Mac, from Prometheus"
    )
    pr.add_argument("--node", required=True, help="the node label of the inference Mac")
    pr.add_argument("--url", default=None, help="Prometheus (default http://localhost:9090)")
    pr.add_argument(
        "--time",
        type=argtypes.finite_float(0.0, 1e11, what=" (unix seconds)"),
        help="evaluation time, unix seconds (default now)",
    )
    pr.add_argument("--model", metavar="ID", help="catalog model it serves, for the estimate")
    pr.add_argument("--quant", help="its quantization, for the estimate")
    pr.add_argument("--machine", metavar="CONFIG_ID", help="the Mac's catalog configuration")
    pr.add_argument("--runtime", default="llama.cpp", choices=("llama.cpp", "ollama", "mlx"))
    add_json_flag(pr)
    pr.set_defaults(func=_import_prometheus)
    imp.set_defaults(func=lambda _a: (imp.print_help(), 2)[1])

    rc = sub.add_parser("rpc-commands", help="the ggml-rpc-server command for each node")
    rc.add_argument("--rpc", required=True, metavar="HOST:PORT,...")
    add_json_flag(rc)
    rc.set_defaults(func=_rpc_commands)

    lst = sub.add_parser("list", help="stored runs")
    lst.add_argument("--runner", help="only this runner")
    lst.add_argument("--limit", type=argtypes.positive_count, default=None)
    add_json_flag(lst)
    lst.set_defaults(func=_list)
    show = sub.add_parser("show", help="one stored run")
    show.add_argument("id", type=argtypes.record_id, metavar="ID")
    show.add_argument("--raw", action="store_true", help="include the tool's raw output")
    add_json_flag(show)
    show.set_defaults(func=_show)
    p.set_defaults(func=lambda _a: (p.print_help(), 2)[1])


def _register_calibrate(subparsers: argparse._SubParsersAction) -> None:
    c = subparsers.add_parser(
        "calibrate",
        help="fit this machine's effective bandwidth/compute from its llama.cpp runs",
        description="Fit this machine's effective bandwidth, compute and per-token cost from "
        "its stored llama.cpp runs; later estimates for this machine use them.",
    )
    add_json_flag(c)
    c.set_defaults(func=_calibrate)


def _register_lab(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("lab", help="guided lab sessions (L-001, L-002, L-003)")
    sub = p.add_subparsers(dest="lab_command", metavar="SUBCOMMAND")
    lst = sub.add_parser("list", help="the lab protocols")
    add_json_flag(lst)
    lst.set_defaults(func=_lab_list)
    show = sub.add_parser("show", help="a protocol: steps, recording sheet, prompts")
    show.add_argument("lab_id", metavar="LAB")
    show.add_argument("--template", action="store_true", help="print an answers file to fill")
    add_json_flag(show)
    show.set_defaults(func=_lab_show)
    run = sub.add_parser("run", help="run what can run here and store the lab record")
    run.add_argument("lab_id", metavar="LAB", help="L-001, L-002 or L-003")
    run.add_argument("--answers", metavar="FILE", help="answers to manual steps and prompts")
    run.add_argument("--workdir", metavar="DIR", help="L-003: where its repositories go")
    add_json_flag(run)
    run.set_defaults(func=_lab_run)
    ans = sub.add_parser("answer", help="add answers to a stored lab record")
    ans.add_argument("record_id", type=argtypes.record_id, metavar="RECORD")
    ans.add_argument("--answers", required=True, metavar="FILE")
    add_json_flag(ans)
    ans.set_defaults(func=_lab_answer)
    exp = sub.add_parser("export", help="export a lab record (json = the sealed record)")
    exp.add_argument("record_id", type=argtypes.record_id, metavar="RECORD")
    exp.add_argument("--format", required=True, choices=("md", "html", "pdf", "json"))
    exp.add_argument("--out", required=True, metavar="PATH")
    add_json_flag(exp)
    exp.set_defaults(func=_lab_export)
    rec = sub.add_parser("records", help="stored lab records")
    add_json_flag(rec)
    rec.set_defaults(func=_lab_records)
    p.set_defaults(func=lambda _a: (p.print_help(), 2)[1])


# ------------------------------------------------------------------------------ helpers


def _store():
    from forgeplanner.store import Store

    return Store()


def _drive(gen, args: argparse.Namespace):
    from forgeplanner.bench.progress import drive

    return drive(gen, bar=True)


def _f(v: Any, fmt: str = "{:.1f}") -> str:
    return "-" if v is None else fmt.format(v)


def _print_run(summary: dict[str, Any]) -> None:
    from forgeplanner.bench.fingerprint import describe

    print(f"run {summary['id']} ({summary['runner']}, {summary['status']})")
    print(f"machine: {describe(summary['fingerprint'])}")
    if summary.get("model"):
        print(f"model: {summary['model']}")
    if summary["runner"] == "builtin":
        m = summary["measured"]
        rows = [
            ("copy bandwidth (STREAM)", _f(m.get("copy_gbps"), "{:.1f} GB/s")),
            ("triad bandwidth (STREAM)", _f(m.get("triad_gbps"), "{:.1f} GB/s")),
            ("decode simulation", f"{_f(m.get('decode_sim_tps'), '{:.1f} tok/s')} over "
             f"{(m.get('decode_sim_weight_bytes') or 0) / 2**20:.0f} MiB "
             f"({_f(m.get('decode_sim_gbps'), '{:.1f} GB/s')})"),
            ("matrix multiply (fp32)", _f(m.get("matmul_gflops"), "{:.1f} GFLOP/s")),
            ("threads", str(m.get("threads"))),
        ]  # fmt: skip
        est = summary["estimate"].get("memory_bandwidth_gbps")
        if est:
            rows.append(("catalog bandwidth", f"{est:.0f} GB/s"))
        print_table(["metric", "value"], rows)
    else:
        meas, est, err = summary["measured"], summary["estimate"], summary["error_pct"]
        rows = []
        for key, label in (("decode_tps", "decode"), ("prefill_tps", "prefill")):
            rows.append(
                (label, _f(meas.get(key), "{:.2f}"), _f(est.get(key), "{:.2f}"),
                 _f(err.get(key), "{:+.1f} %"))
            )  # fmt: skip
        print_table(["tokens/s", "measured", "estimate", "error"], rows)
        tests = meas.get("tests") or []
        if tests:
            print()
            print_table(
                ["test", "median t/s", "stddev", "samples"],
                [(t["label"], f"{t['median_ts']:.2f}", f"{t['stddev_ts']:.2f}",
                  ", ".join(f"{s:.1f}" for s in t["samples_ts"])) for t in tests],
            )  # fmt: skip
        if est.get("basis"):
            print(f"\nestimate basis: {est['basis']}")
        if est.get("bandwidth_basis"):
            print(f"host bandwidth: {_f(est.get('bandwidth_gbps'), '{:.1f} GB/s')} "
                  f"({est['bandwidth_basis']})")  # fmt: skip
    _print_load(summary)
    if summary.get("message"):
        print(f"note: {summary['message']}")


def _print_load(summary: dict[str, Any]) -> None:
    """The load during the run and the verdict (forgeplanner.measurement.load)."""
    load = summary.get("load")
    if not load:
        print("\nload during the run: not recorded (run stored before load sampling)")
        return
    verdict = summary["load_verdict"]
    head = {"noisy": "NOISY", "accepted": "NOISY, kept with --accept-load"}.get(verdict, verdict)
    if verdict == "not judged":
        head += f" ({load.get('not_judged_reason')})"
    print(f"\nload during the run: {head}")
    gib = 2**30
    rows = [
        ("other processes' CPU share", f"{100 * load['other_cpu_share']:.0f} % "
         f"(peak {100 * load['other_cpu_share_peak']:.0f} %)"),
        ("this run's CPU share",
         f"{100 * load['own_cpu_share']:.0f} % of {load['cpu_count']} CPUs"),
        ("steal (hypervisor)", f"{100 * load['steal_share']:.0f} %"),
        ("load average (1 min)", f"{_f(load.get('loadavg_1m_start'), '{:.2f}')} at start, "
         f"{_f(load.get('loadavg_1m_end'), '{:.2f}')} at end"),
        ("memory available (lowest)", f"{load['memory_available_min_bytes'] / gib:.1f} of "
         f"{load['memory_total_bytes'] / gib:.1f} GiB"),
        ("swapped in / out", f"{load['swap_in_bytes'] / 2**20:.0f} / "
         f"{load['swap_out_bytes'] / 2**20:.0f} MiB"),
        ("sampled", f"{load['samples']} times over {load['duration_s']:.1f} s"),
    ]  # fmt: skip
    busiest = load.get("busiest_others") or []
    if busiest:
        text = ", ".join(
            f"{p['name']} ({p['pid']}) {100 * p['cpu_share']:.0f} %" for p in busiest[:3]
        )
        rows.append(("busiest other processes", text))
    print_table(["load", "value"], rows)
    for why in load.get("reasons") or []:
        print(f"noisy: {why}")


def _output(rec, args: argparse.Namespace) -> int:
    from forgeplanner.bench.session import run_summary

    summary = run_summary(rec)
    if args.json:
        print_json(summary)
    else:
        _print_run(summary)
    return 0


# ------------------------------------------------------------------------------ handlers


def _run_builtin(args: argparse.Namespace) -> int:
    from forgeplanner.bench.builtin import BuiltinConfig
    from forgeplanner.bench.session import LoadPolicy, record_builtin
    from forgeplanner.domain.units import MiB

    _check_builtin_sizes(args)
    cfg = BuiltinConfig(
        array_bytes=args.array_mb * MiB if args.array_mb else None,
        repetitions=args.repetitions,
        threads=args.threads,
        decode_weight_bytes=args.decode_mb * MiB,
    )
    with _store() as store:
        rec = _drive(
            record_builtin(store, cfg, load=LoadPolicy(accept_load=args.accept_load)), args
        )
        return _output(rec, args)


def _check_builtin_sizes(args: argparse.Namespace) -> None:
    """The kernels allocate what they are asked for: three STREAM arrays of --array-mb and
    the decode simulation's --decode-mb of weights. More than half of this machine's memory
    would swap (measuring the disk, not the memory) or be killed; refuse it up front."""
    import os

    import psutil

    from forgeplanner.domain.units import MiB
    from forgeplanner.errors import ForgePlannerError

    total = psutil.virtual_memory().total
    want = max(3 * (args.array_mb or 0), args.decode_mb) * MiB
    if want > total // 2:
        raise ForgePlannerError(
            f"--array-mb {args.array_mb or 'default'} / --decode-mb {args.decode_mb} need "
            f"{want / 2**30:.1f} GiB, more than half of this machine's "
            f"{total / 2**30:.1f} GiB; choose smaller sizes"
        )
    cpus = os.cpu_count() or 1
    if args.threads is not None and args.threads > 8 * cpus:
        raise ForgePlannerError(
            f"--threads {args.threads} is more than 8 x the {cpus} logical CPUs here; "
            f"valid: 1..{8 * cpus}"
        )


def _llama_spec(args: argparse.Namespace, model_path: str):
    from forgeplanner.bench.llamacpp import LlamaBenchSpec, parse_rpc_list
    from forgeplanner.errors import ForgePlannerError

    split: tuple[float, ...] = ()
    if args.tensor_split:
        try:
            split = tuple(float(x) for x in args.tensor_split.split("/"))
        except ValueError:
            raise ForgePlannerError(
                f"--tensor-split '{args.tensor_split}' is not like 3/1 (parts per device)"
            ) from None
    try:
        return LlamaBenchSpec(
            model_path=model_path,
            n_prompt=args.n_prompt,
            n_gen=args.n_gen,
            depth=args.depth,
            repetitions=args.repetitions,
            threads=args.threads,
            rpc=parse_rpc_list(args.rpc) if args.rpc else (),
            tensor_split=split,
            flash_attn=None if args.flash_attn is None else args.flash_attn == "on",
        )
    except ValueError as exc:
        raise ForgePlannerError(str(exc)) from None


def _run_llamacpp(args: argparse.Namespace) -> int:
    import sys

    from forgeplanner.bench.llamacpp import parse_rpc_list, rpc_server_command
    from forgeplanner.bench.session import (
        LoadPolicy,
        record_llamacpp,
        target_from_gguf,
        target_from_model,
    )

    with _store() as store:
        rpc = parse_rpc_list(args.rpc) if args.rpc else ()
        if args.gguf:
            target = target_from_gguf(args.gguf)
        else:  # checks the tools (and RPC servers) before writing the model
            target = _drive(target_from_model(args.model, args.quant, rpc=rpc), args)
            print(f"note: {target.note}", file=sys.stderr)
        spec = _llama_spec(args, str(target.gguf_path))
        if args.rpc:
            print("cluster run over llama.cpp RPC; on each node start:", file=sys.stderr)
            for ep in parse_rpc_list(args.rpc):
                print("  " + " ".join(rpc_server_command(ep)), file=sys.stderr)
        policy = LoadPolicy(accept_load=args.accept_load)
        rec = _drive(record_llamacpp(store, target, spec, timeout=args.timeout, load=policy), args)
        code = _output(rec, args)
        if target.synthetic and not args.json:
            print(f"note: {target.note}")
        return code


def _run_ollama(args: argparse.Namespace) -> int:
    from forgeplanner.bench.ollama_runner import OllamaSpec, default_url
    from forgeplanner.bench.session import record_ollama

    spec = OllamaSpec(
        model=args.model,
        url=args.url or default_url(),
        n_gen=args.n_gen,
        repetitions=args.repetitions,
    )
    with _store() as store:
        rec = _drive(
            record_ollama(store, spec, catalog_model=args.catalog_model, quant=args.quant), args
        )
        return _output(rec, args)


def _run_mlx(args: argparse.Namespace) -> int:
    from forgeplanner.bench.mlx_runner import MlxSpec
    from forgeplanner.bench.session import LoadPolicy, record_mlx

    spec = MlxSpec(args.model, args.n_prompt, args.n_gen, args.repetitions)
    policy = LoadPolicy(accept_load=args.accept_load)
    with _store() as store:
        rec = _drive(
            record_mlx(
                store, spec, catalog_model=args.catalog_model, quant=args.quant, load=policy
            ),
            args,
        )
        return _output(rec, args)


def _import_prometheus(args: argparse.Namespace) -> int:
    from forgeplanner.bench.prometheus_import import (
        DEFAULT_URL,
        PrometheusQuery,
        record_prometheus,
    )

    q = PrometheusQuery(args.url or DEFAULT_URL, args.node, args.time)
    with _store() as store:
        rec = _drive(
            record_prometheus(store, q, model_id=args.model, quant=args.quant,
                              config_id=args.machine, runtime=args.runtime),
            args,
        )  # fmt: skip
        return _output(rec, args)


def _rpc_commands(args: argparse.Namespace) -> int:
    from forgeplanner.bench.llamacpp import parse_rpc_list, rpc_server_command

    eps = parse_rpc_list(args.rpc)
    cmds = [" ".join(rpc_server_command(ep)) for ep in eps]
    if args.json:
        print_json(
            {"nodes": [{"endpoint": str(e), "command": c} for e, c in zip(eps, cmds, strict=True)]}
        )
    else:
        for e, c in zip(eps, cmds, strict=True):
            print(f"on {e.host}: {c}")
        print(f"then: forgeplanner bench run llama.cpp --gguf FILE --rpc {args.rpc}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from forgeplanner.bench.fingerprint import machine_fingerprint
    from forgeplanner.bench.session import mark_interrupted, run_summary
    from forgeplanner.measurement.load import load_summary
    from forgeplanner.store import BenchRunRepo

    with _store() as store:
        mark_interrupted(store, machine_fingerprint())
        with store.session() as s:
            runs = BenchRunRepo(s).list(runner=args.runner, limit=args.limit)
    if args.json:
        print_json({"runs": [run_summary(r) for r in runs]})
        return 0
    rows = []
    for r in runs:
        m, e, err = r.measured or {}, r.estimate or {}, r.error_pct or {}
        if r.runner == "builtin":
            what = (f"copy {_f(m.get('copy_gbps'))} GB/s, matmul "
                    f"{_f(m.get('matmul_gflops'), '{:.0f}')} GFLOP/s")  # fmt: skip
        else:
            what = (
                f"decode {_f(m.get('decode_tps'), '{:.2f}')} "
                f"(est {_f(e.get('decode_tps'), '{:.2f}')}, "
                f"{_f(err.get('decode_tps'), '{:+.0f} %')}), prefill {_f(m.get('prefill_tps'))}"
            )
        rows.append((r.id, r.started_at.strftime("%Y-%m-%d %H:%M"), r.runner, r.status,
                     (r.model_ref or "").rsplit("/", 1)[-1][:32], what,
                     load_summary(r.measured) if r.status == "ok" else "",
                     r.fingerprint.get("hostname", "")))  # fmt: skip
    print_table(
        ["id", "started (UTC)", "runner", "status", "model", "result", "load", "machine"], rows
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    from forgeplanner.bench.session import run_summary
    from forgeplanner.store import BenchRunRepo

    with _store() as store, store.session() as s:
        rec = BenchRunRepo(s).get(args.id)
    summary = run_summary(rec)
    if args.raw:
        summary["raw_output"] = rec.raw_output
    if args.json:
        print_json(summary)
    else:
        _print_run(summary)
        if args.raw and rec.raw_output:
            print("\nraw output:\n" + rec.raw_output)
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from forgeplanner.bench.calibrate import calibrate
    from forgeplanner.bench.fingerprint import machine_fingerprint

    with _store() as store:
        rec = calibrate(store, machine_fingerprint())
    d = rec.to_dict()
    if args.json:
        print_json({"calibration": d})
        return 0
    print(f"calibration {rec.id} from llama.cpp runs {', '.join(map(str, rec.run_ids))}"
          f" ({d['details'].get('runs_load') or 'load not recorded'})")  # fmt: skip
    left_out = d["details"].get("runs_left_out") or {}
    for run_id, why in left_out.items():
        print(f"left out run {run_id}: {why}")
    print_table(
        ["constant", "fitted"],
        [
            ("effective bandwidth", _f(d["bandwidth_gbps"], "{:.2f} GB/s")),
            ("effective compute", _f(d["compute_gflops"], "{:.1f} GFLOP/s")),
            ("per-token cost", _f(d["per_token_ms"], "{:.2f} ms")),
        ],
    )
    print()
    b, a = rec.error_before, rec.error_after
    print_table(
        ["metric", "error before (MAPE)", "error after (MAPE)"],
        [
            (label, _f(b.get(f"{k}_mape"), "{:.1f} %"), _f(a.get(f"{k}_mape"), "{:.1f} %"))
            for k, label in (("decode_tps", "decode"), ("prefill_tps", "prefill"))
        ],
    )
    print(f"\n{rec.details.get('decode_fit', '')}")
    return 0


def _lab_list(args: argparse.Namespace) -> int:
    from forgeplanner.labs import LABS

    if args.json:
        print_json({"labs": [p.to_dict() for p in LABS.values()]})
    else:
        print_table(["id", "title", "module"], [(p.id, p.title, p.module) for p in LABS.values()])
    return 0


def _lab_show(args: argparse.Namespace) -> int:
    from forgeplanner.labs import get_lab

    lab = get_lab(args.lab_id)
    if args.template:
        from forgeplanner.labs.answers import template

        print(template(lab), end="")
        return 0
    if args.json:
        print_json({"lab": lab.to_dict()})
        return 0
    print(f"{lab.id} {lab.title}\nmodule: {lab.module}\n\n{lab.goal}\n")
    for i, s in enumerate(lab.steps, 1):
        tag = " (automated)" if s.automated else ""
        tag += " (macOS)" if s.macos_only else ""
        print(f"{i}. {s.title}{tag}\n   {s.procedure}")
        if s.command:
            print(f"   $ {s.command}")
        for c in s.more:
            print(f"   $ {c.text}" + (f"   # {c.why}" if c.why else ""))
    print("\nrecording sheet:")
    for f in lab.sheet:
        print(f"  - {f.label}" + (f" [{f.unit}]" if f.unit else "") + (" (you fill)" if f.manual
                                                                        else ""))  # fmt: skip
    print("\nobservation prompts:")
    for o in lab.observations:
        print(f"  - [{o.key}] {o.prompt}")
    print("\nanswers file keys (lab run --answers FILE.toml; `--template` prints one):")
    for k in lab.answer_keys():
        print(f"  {k['key']} ({k['type']}): {k['about']}")
    return 0


def _lab_run(args: argparse.Namespace) -> int:
    from forgeplanner.labs import get_lab
    from forgeplanner.labs.answers import load_answers
    from forgeplanner.labs.runner import run_lab

    lab = get_lab(args.lab_id)
    answers = load_answers(args.answers, lab) if args.answers else None
    with _store() as store:
        rec = _drive(run_lab(lab.id, store, answers=answers, workdir=args.workdir), args)
    return _lab_report(rec, args)


def _lab_answer(args: argparse.Namespace) -> int:
    from forgeplanner.labs import get_lab
    from forgeplanner.labs.answers import load_answers
    from forgeplanner.labs.runner import answer_lab
    from forgeplanner.store import EvidenceRepo

    with _store() as store:
        with store.session() as s:
            ref = EvidenceRepo(s).get(args.record_id).ref or ""
        answers = load_answers(args.answers, get_lab(ref))
        rec = answer_lab(args.record_id, answers, store)
    return _lab_report(rec, args)


def _lab_export(args: argparse.Namespace) -> int:
    from forgeplanner.cli.plan_cmd import now_iso
    from forgeplanner.export.lab_report import export_lab

    with _store() as store:
        out = export_lab(args.record_id, args.format, args.out, store, now_iso())
    if args.json:
        print_json({"format": args.format, "out": str(out), "bytes": out.stat().st_size})
    else:
        print(f"wrote {out} ({args.format}, {out.stat().st_size:,} bytes)")
    return 0


def _lab_report(rec, args: argparse.Namespace) -> int:
    if args.json:
        print_json({"lab_record": rec.to_dict()})
        return 0
    body = rec.body
    print(f"lab record {rec.id}: {rec.title}")
    print_table(
        ["step", "status", "note"],
        [(s["title"], s["status"], s.get("note", "")) for s in body["steps"]],
    )
    from forgeplanner.export.lab_report import sheet_cell, sheet_tables

    print("\nrecording sheet:")
    for k, v in body["sheet"].items():
        print(f"  {k}: {sheet_cell(v)}")
    for label, table in sheet_tables(body["sheet"], {}):
        print(f"\n{label}:")
        print_table(list(table.headers), list(table.rows))
    print("\nobservations:")
    for o in body["observations"]:
        print(f"  - [{o['key']}] {o['prompt']}\n      {o['answer'] or '(not answered)'}")
    print(f"\nstatus: {body['status']}")
    if body.get("missing"):
        print("missing (answers file keys): " + ", ".join(body["missing"]))
        print(f"add them: forgeplanner lab answer {rec.id} --answers FILE.toml")
    return 0


def _lab_records(args: argparse.Namespace) -> int:
    from forgeplanner.store import EvidenceRepo

    with _store() as store, store.session() as s:
        recs = EvidenceRepo(s).list(kind="lab")
    if args.json:
        print_json({"lab_records": [r.to_dict() for r in recs]})
    else:
        print_table(
            ["id", "lab", "created (UTC)", "runs"],
            [(r.id, r.title, r.created_at.strftime("%Y-%m-%d %H:%M"),
              ", ".join(map(str, r.run_ids))) for r in recs],
        )  # fmt: skip
    return 0
