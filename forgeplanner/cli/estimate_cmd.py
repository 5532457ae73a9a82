"""`forgeplanner estimate`: memory, fit verdict and speed of a model on a machine.

    forgeplanner estimate (--model ID | --gguf PATH)
        (--machine CONFIG_ID | --chip "M3 Max" [--gpu-cores N] [--memory-gb N] | --this-machine)
        [--quant Q] [--runtime llama.cpp|ollama|mlx|lmstudio-gguf|lmstudio-mlx]
        [--runtime-version V] [--context N] [--depth N] [--prompt-tokens N]
        [--kv-type f16|q8_0|q4_0] [--[no-]flash-attention] [--passive-cooling]
        [--wired-limit-mb N] [--macos VER] [--json]

JSON keys (stable): memory.{weights_bytes, kv_cache_bytes, compute_bytes,
runtime_bytes, total_bytes}, budget.{physical_bytes, gpu_limit_bytes, basis}, verdict,
headroom_bytes, sysctl_command, max_context_that_fits, best_quant_that_fits, decode_tps,
prefill_tps, ttft_s, decode_tps_low/high and prefill_tps_low/high (the likely range: 10th-90th
percentile of what held-out published runs of similar setups measured) with
speed_range_basis, and published_runs: {decode: [...], prefill: [...]}, the nearest published
measurements with their value, date and source; without --quant also `quants`: the same
figures per quantization (the top-level figures are then those of the best quantization that
fits, else the best quality).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from forgeplanner.cli import argtypes
from forgeplanner.cli.output import add_json_flag, print_json, print_table
from forgeplanner.errors import ForgePlannerError

RUNTIMES = ("llama.cpp", "mlx", "ollama", "lmstudio-gguf", "lmstudio-mlx")
KV_TYPES = ("f16", "q8_0", "q4_0")


class EstimateInputError(ForgePlannerError):
    """Input that is valid syntax but impossible (negative context, MXFP4 on a dense model)."""


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "estimate",
        help="memory, fit and speed of a model on a machine",
        description="Memory, macOS GPU-budget verdict and speed of a model on a machine.",
    )
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", metavar="ID", help="model database id (forgeplanner models list)")
    src.add_argument("--gguf", metavar="PATH", help="a local GGUF file (exact tensor bytes)")
    host = p.add_mutually_exclusive_group(required=True)
    host.add_argument("--machine", metavar="CONFIG_ID", help="catalog configuration id")
    host.add_argument("--chip", metavar="NAME", help='chip name, e.g. "M3 Max"')
    host.add_argument("--this-machine", action="store_true", help="the machine you are on")
    p.add_argument(
        "--gpu-cores", type=argtypes.gpu_cores, metavar="N", help="with --chip: the GPU-core bin"
    )
    p.add_argument(
        "--memory-gb",
        type=argtypes.memory_gb,
        metavar="N",
        help="with --chip: memory (default max)",
    )
    p.add_argument("--quant", metavar="Q", help="quantization (default: all, as a list)")
    p.add_argument("--runtime", default="llama.cpp", metavar="|".join(RUNTIMES))
    p.add_argument(
        "--runtime-version",
        metavar="V",
        help="the runtime's version: a llama.cpp build (b8920), an mlx-lm, Ollama or LM Studio "
        "version (0.26.3); default: the newest the speed model covers",
    )
    p.add_argument(
        "--passive-cooling",
        action="store_true",
        help="a fanless Mac (MacBook Air): sustained GPU work throttles",
    )
    p.add_argument(
        "--context", type=argtypes.tokens, default=8192, metavar="N", help="context (tokens)"
    )
    p.add_argument(
        "--depth", type=argtypes.depth_tokens, default=0, metavar="N", help="tokens in the cache"
    )
    p.add_argument(
        "--prompt-tokens",
        type=argtypes.tokens,
        default=512,
        metavar="N",
        help="prompt length for TTFT (at most --context)",
    )
    p.add_argument("--kv-type", default="f16", metavar="|".join(KV_TYPES))
    p.add_argument(
        "--flash-attention",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force flash attention on (--flash-attention) or off (--no-flash-attention); "
        "default: the runtime's own default (llama.cpp -fa auto), reported in the output",
    )
    p.add_argument(
        "--wired-limit-mb",
        type=argtypes.wired_limit_mb,
        metavar="N",
        help="iogpu.wired_limit_mb in force",
    )
    p.add_argument("--macos", metavar="VER", help="macOS version (default wired limit rule)")
    add_json_flag(p)
    p.set_defaults(func=run)


# ---------------------------------------------------------------------------------------------


_MACOS_VERSION = re.compile(r"(1[0-9]|2[0-9])(\.\d+){0,2}")


def _options(args: argparse.Namespace):
    from forgeplanner.domain.estimates import RunOptions

    if args.runtime not in RUNTIMES:
        raise EstimateInputError(f"unknown runtime '{args.runtime}'; valid: {', '.join(RUNTIMES)}")
    if args.kv_type not in KV_TYPES:
        raise EstimateInputError(
            f"unknown --kv-type '{args.kv_type}'; valid: {', '.join(KV_TYPES)}"
        )
    for name in ("context", "prompt_tokens"):
        v = getattr(args, name)
        if v <= 0:
            raise EstimateInputError(f"--{name.replace('_', '-')} must be a positive number of "
                                     f"tokens, got {v}")  # fmt: skip
    if args.depth < 0:
        raise EstimateInputError(f"--depth must be >= 0 tokens, got {args.depth}")
    if args.prompt_tokens > args.context:
        # The prompt is processed into the context: a longer one cannot run (llama.cpp
        # refuses it), and its TTFT would be a meaningless number.
        raise EstimateInputError(
            f"--prompt-tokens {args.prompt_tokens} is more than --context {args.context}; "
            f"valid: 1..{args.context}"
        )
    if args.depth > args.context:
        # The cache cannot hold more tokens than the context it was sized for.
        raise EstimateInputError(
            f"--depth {args.depth} is more than --context {args.context}; valid: 0..{args.context}"
        )
    if args.macos is not None and not _MACOS_VERSION.fullmatch(args.macos.strip()):
        # An unparsed version silently fell back to the old wired-limit rule.
        raise EstimateInputError(
            f"--macos '{args.macos}' is not a macOS version; valid: e.g. 14, 15.2, 26.1"
        )
    if args.wired_limit_mb is not None and args.wired_limit_mb < 0:
        raise EstimateInputError(f"--wired-limit-mb must be >= 0, got {args.wired_limit_mb}")
    version = getattr(args, "runtime_version", None)
    if version is not None:
        from forgeplanner.engine.runtimes.versions import version_key

        try:
            version_key(args.runtime, version)
        except ValueError as exc:
            raise EstimateInputError(f"--runtime-version: {exc}") from None
    try:
        return RunOptions(
            context=args.context,
            depth=args.depth,
            prompt_tokens=args.prompt_tokens,
            kv_type=args.kv_type,
            flash_attention=args.flash_attention,
            runtime=args.runtime,
            runtime_version=version,
        )
    except ValueError as exc:
        raise EstimateInputError(str(exc)) from None


def resolve_host(args: argparse.Namespace):
    from forgeplanner import host as hosts

    if (args.gpu_cores is not None or args.memory_gb is not None) and not args.chip:
        raise EstimateInputError("--gpu-cores and --memory-gb go with --chip")
    if args.gpu_cores is not None and args.gpu_cores <= 0:
        raise EstimateInputError(f"--gpu-cores must be positive, got {args.gpu_cores}")
    if args.memory_gb is not None and args.memory_gb <= 0:
        raise EstimateInputError(f"--memory-gb must be positive, got {args.memory_gb}")
    wl = args.wired_limit_mb
    if args.machine:
        h = hosts.host_from_config(args.machine, macos_version=args.macos, wired_limit_mb=wl)
    elif args.chip:
        h = hosts.host_from_chip_name(
            args.chip, args.gpu_cores, args.memory_gb, macos_version=args.macos, wired_limit_mb=wl
        )
    else:
        h = hosts.host_this_machine(macos_version=args.macos, wired_limit_mb=wl)
    if getattr(args, "passive_cooling", False):
        import dataclasses

        h = dataclasses.replace(h, passive_cooling=True)
    return h


def published_runs(model, host, options, quant: str = "") -> dict[str, list[dict]]:
    """The nearest published measurements to this estimate (forgeplanner.calibration)."""
    from forgeplanner.calibration.published import for_estimate

    chip = None
    if host.chip_id and host.is_apple_silicon:
        from catalog import load_catalog

        spec = load_catalog().chips.get(host.chip_id)
        chip = spec.name if spec is not None else None
    return for_estimate(chip, host.gpu_cores or None, str(options.runtime), model.id,
                        model.active_params / 1e9, model.moe is not None,
                        quant=quant)  # fmt: skip


def resolve_model(args: argparse.Namespace):
    if args.gguf:
        from models_db.importers import import_gguf

        return import_gguf(args.gguf)
    from forgeplanner.services.models import find_model

    return find_model(args.model)


def _host_calibration(host, options):
    """This machine's own calibration (from its stored llama.cpp runs), if it has one."""
    try:
        from forgeplanner.bench.calibrate import calibrated_constants_for_this_machine
    except ImportError:  # the benchmark package is optional for estimates
        return None
    return calibrated_constants_for_this_machine(options.runtime, host)


def run(args: argparse.Namespace) -> int:
    from forgeplanner.engine.estimate import estimate, estimate_quants, estimate_to_dict
    from forgeplanner.engine.fit import best_quant_that_fits

    options = _options(args)
    model = resolve_model(args)
    host = resolve_host(args)
    constants = _host_calibration(host, options) if args.this_machine else None
    from forgeplanner import host as hosts

    measured = hosts.host_measurements_summary(host) if args.this_machine else None
    if measured is not None and not args.json:  # which runs (or figure) the estimate used
        print(f"host bandwidth: {hosts.describe_bandwidth(host)}")
    try:
        if args.quant:
            e = estimate(model, args.quant, host, options, constants)
            best = best_quant_that_fits(model, host, options)
            payload = estimate_to_dict(e, best)
            curve = _depth_curve(model, e, host, options)
            payload["decode_tps_by_depth"] = curve
            payload["published_runs"] = published_runs(model, host, options, e.quant)
            if measured is not None:
                payload["host_measurements"] = measured
            if args.json:
                print_json(payload)
            else:
                _print_one(e, best, curve, payload["published_runs"])
            return 0
        qe = estimate_quants(model, host, options, constants)
    except ValueError as exc:
        raise EstimateInputError(str(exc)) from None
    best = qe.best_quant_that_fits
    top = _pick_top(qe, model)
    payload = estimate_to_dict(top, best)
    payload["quants"] = [
        {k: v for k, v in estimate_to_dict(e, best).items() if k not in ("host", "runtime")}
        for e in qe.estimates
    ]
    payload["published_runs"] = published_runs(model, host, options, top.quant)
    if measured is not None:
        payload["host_measurements"] = measured
    if args.json:
        print_json(payload)
    else:
        _print_many(qe, top)
    return 0


DEPTHS = (0, 1024, 4096, 16384, 32768, 65536, 131072)


def _depth_curve(model, e, host, options) -> list[dict[str, float]]:
    """Decode tokens/s across context depth, up to the context asked for."""
    from forgeplanner.engine.estimate import decode_curve

    if e.speed is None:
        return []
    depths = sorted({d for d in DEPTHS if d <= options.context} | {options.context})
    return [
        {"depth": d, "decode_tps": round(t, 3)}
        for d, t in decode_curve(model, e.quant, host, options, depths)
    ]


def _pick_top(qe, model):
    """The estimate shown at top level without --quant: a GGUF file's own quantization, else
    the best quantization that fits, else the best quality."""
    own = (model.gguf_file_type or "").upper()
    for e in qe.estimates:
        if own and e.quant.upper() == own:
            return e
    for e in qe.estimates:
        if e.quant == qe.best_quant_that_fits:
            return e
    return qe.estimates[0]


# ---------------------------------------------------------------------------------------------
# human-readable output
# ---------------------------------------------------------------------------------------------


def _gib(n: int | None) -> str:
    return "unknown" if n is None else f"{n / (1 << 30):.2f} GiB"


def _tps(x: float | None) -> str:
    return "unknown" if x is None else f"{x:.1f}"


def _header(e) -> None:
    o = e.options
    print(f"{e.model_id} {e.quant} on {e.host.name}")
    print(
        f"runtime {o.runtime}, context {o.context}, depth {o.depth}, prompt {o.prompt_tokens}, "
        f"KV {o.kv_type}, flash attention {'on' if o.flash_attention else 'off'}"
    )
    if e.flash_attention_basis:
        print(f"flash attention: {e.flash_attention_basis}")
    print()


def _range(lo: float | None, hi: float | None) -> str:
    return "" if lo is None or hi is None else f" (likely {lo:.1f}-{hi:.1f})"


def _print_published(runs: dict[str, list[dict]] | None) -> None:
    if not runs or not any(runs.values()):
        return
    print()
    print("nearest published runs:")
    for kind in ("decode", "prefill"):
        for r in runs.get(kind, [])[:3]:
            print(
                f"  {kind:7s} {r['tokens_per_s']:8.1f} t/s  {r['chip']}, {r['runtime']}"
                f"{' ' + r['version'] if r.get('version') else ''}, {r['model']} {r['quant']}, "
                f"{r.get('test') or ''} ({r.get('date') or 'undated'}) {r['source']}"
            )


def _print_one(
    e, best: str | None, curve: list[dict[str, float]], runs: dict | None = None
) -> None:
    _header(e)
    m = e.fit.memory
    print_table(
        ["memory", "size"],
        [
            ["weights", _gib(m.weights_bytes)],
            ["KV cache", _gib(m.kv_cache_bytes)],
            ["compute buffer", _gib(m.compute_bytes)],
            ["runtime", _gib(m.runtime_bytes)],
            ["total", _gib(m.total_bytes)],
        ],
    )
    b = e.fit.budget
    print()
    print(f"budget:   {_gib(b.gpu_limit_bytes)} of {_gib(b.physical_bytes)} ({b.basis})")
    print(f"verdict:  {e.fit.verdict}, headroom {_gib(e.fit.headroom_bytes)}")
    if e.fit.sysctl_command:
        left = e.fit.memory_left_for_macos_bytes
        print(f"raise:    {e.fit.sysctl_command}  (leaves {_gib(left)} for macOS)")
    print(f"max context that fits: {e.max_context_that_fits or 'none'}")
    print(f"best quantization that fits: {best or 'none'}")
    s = e.speed
    if s is not None:
        print(
            f"speed:    decode {s.decode_tps:.1f} tokens/s"
            f"{_range(s.decode_tps_low, s.decode_tps_high)}, prefill {s.prefill_tps:.1f} "
            f"tokens/s{_range(s.prefill_tps_low, s.prefill_tps_high)}, time to first token "
            f"{s.ttft_s:.2f} s"
        )
        print(
            "decode across depth: "
            + ", ".join(f"{c['depth']}: {c['decode_tps']:.1f}" for c in curve)
            + " tokens/s"
        )
    for w in e.warnings:
        print(f"warning:  {w}")
    print()
    print("how:")
    for x in (*e.fit.memory.explain, *e.fit.explain, *(s.explain if s else ())):
        if x.term == "warning":
            continue
        print(f"  {x.term} = {x.value}")
        print(f"      {x.formula}")
        print(f"      {x.numbers}")
        if x.source:
            print(f"      source: {x.source}")
    if s is not None:
        print(f"  speed basis: {s.basis}")
        if s.band_basis:
            print(f"  likely range: {s.band_basis}")
    _print_published(runs)


def _print_many(qe, top) -> None:
    _header(top)
    rows = []
    for e in qe.estimates:
        s = e.speed
        rows.append(
            [
                e.quant,
                _gib(e.fit.memory.total_bytes),
                e.fit.verdict,
                _gib(e.fit.headroom_bytes),
                e.max_context_that_fits or "-",
                _tps(s.decode_tps if s else None),
                _tps(s.prefill_tps if s else None),
                "unknown" if s is None else f"{s.ttft_s:.2f}",
            ]
        )
    print_table(
        ["quant", "total", "verdict", "headroom", "max ctx", "decode t/s", "prefill t/s", "ttft s"],
        rows,
    )
    b = top.fit.budget
    print()
    print(f"budget: {_gib(b.gpu_limit_bytes)} of {_gib(b.physical_bytes)} ({b.basis})")
    print(f"best quantization that fits: {qe.best_quant_that_fits or 'none'}")
    if top.speed is not None:
        print(f"speed basis: {top.speed.basis}")
    else:
        print("speed: unknown (" + "; ".join(top.warnings) + ")")
    print("(--quant Q shows the breakdown and formulas of one quantization)")
