#!/usr/bin/env python3
"""Fit the speed model's constants to the published runs in the reference folder.

    .venv/bin/python scripts/calibrate_speed.py [--reference DIR] [--check]

Reads bench_llamacpp_apple_calibration.csv and bench_other_calibration.csv, maps every row to
a catalog chip bin (chip name + GPU cores) and a model-database id, builds the same physical
quantities the estimator uses (forgeplanner.engine.speed.model_speed_inputs /
host_speed_inputs), fits the constants (forgeplanner.engine.speed_fit), cross-validates
(leave one chip generation out, leave one chip out, leave one model out), and writes

  forgeplanner/engine/speed_constants.py   the constants (generated; header says how)
  docs/calibration.md                      the fit, every mapping, in-sample and held-out errors

`--check` fits and prints without writing anything.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import os
import statistics
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from forgeplanner.engine.speed import (  # noqa: E402
    UBATCH_DEFAULT,
    RuntimeConstants,
    SpeedConstants,
    host_speed_inputs,
    model_speed_inputs,
)
from forgeplanner.engine.speed_fit import (  # noqa: E402
    Observation,
    cross_validate,
    errors_pct,
    fit_constants,
)

# Verbatim copies of the reference CSVs (scripts/calibration_data/README.md)
DEFAULT_REFERENCE = Path(__file__).resolve().parent / "calibration_data"
APPLE_CSV = "bench_llamacpp_apple_calibration.csv"
OTHER_CSV = "bench_other_calibration.csv"
CONSTANTS_PY = REPO / "forgeplanner" / "engine" / "speed_constants.py"
DOC_MD = REPO / "docs" / "calibration.md"

# --------------------------------------------------------------------------------------------
# Mappings (each one documented; docs/calibration.md lists them)
# --------------------------------------------------------------------------------------------

# benchmark model name -> (model-database id, why)
MODEL_MAP: dict[str, tuple[str, str]] = {
    "LLaMA 7B (v2)": ("llama-2-7b", "Llama 2 7B, the model of llama.cpp discussion #4167"),
    "LLaMA 7B (per #4167-style test)": ("llama-2-7b", "same test as #4167"),
    "Llama 3 8B": (
        "llama-3.1-8b",
        "Llama 3 8B has the Llama 3.1 8B shape (32 layers, 4096, GQA 8, vocab 128256); "
        "3.1 only changes RoPE scaling and context",
    ),
    "Llama 3 70B": ("llama-3.1-70b", "Llama 3 70B has the Llama 3.1 70B shape"),
    "Llama 2 70B": ("llama-2-70b", "same model"),
    "gpt-oss 20B": ("gpt-oss-20b", "same model"),
    "gpt-oss-20b": ("gpt-oss-20b", "same model"),
    "gpt-oss-120b": ("gpt-oss-120b", "same model"),
    "DeepSeek R1 14B": (
        "qwen2.5-14b",
        "Ollama's deepseek-r1:14b is DeepSeek-R1-Distill-Qwen-14B, a Qwen2.5-14B fine-tune "
        "(same architecture; DeepSeek-R1 README, distilled models table)",
    ),
    "Llama 3.2 3B": ("llama-3.2-3b", "same model"),
    "Qwen3-Coder-30B-A3B": (
        "qwen3-30b-a3b",
        "Qwen3-Coder-30B-A3B-Instruct has the Qwen3-30B-A3B shape (48 layers, 128 experts, "
        "8 active, hidden 2048)",
    ),
    "Qwen2.5-Coder-7B": (
        "qwen2.5-7b",
        "Qwen2.5-Coder-7B has the Qwen2.5-7B shape (28 layers, 3584, GQA 7, vocab 152064)",
    ),
    "gemma-3-4b": ("gemma-3-4b", "same model"),
    "Qwen3.5-35B-A3B": ("qwen3.5-35b-a3b", "same model"),
}

# chip rows without a GPU-core count: which bin, and whether prefill rows can be used
CHIP_BIN_ASSUMED: dict[str, tuple[int, bool, str]] = {
    "M2 Ultra": (
        76,
        True,
        "rows from ggml-org/llama.cpp (discussion #15396, benches/mac-m2-ultra) come from the "
        "maintainer's Mac Studio M2 Ultra 192 GB (sold with either bin); "
        "the maintainer's is the 76-core part (assumed; decode does not depend on it)",
    ),
    "M1 Max": (
        32,
        False,
        "GPU bin not stated (24 or 32 cores, same 400 GB/s): decode rows used, prefill rows "
        "excluded (prefill scales with cores)",
    ),
    "M1 Max (10-core CPU)": (
        24,
        False,
        "Mac Studio (2022) M1 Max, GPU bin not stated (24 or 32 cores, same 400 GB/s): decode "
        "rows used, prefill excluded",
    ),
    "M1 Pro": (
        16,
        False,
        "GPU bin not stated (14 or 16 cores, same 200 GB/s): decode rows used, prefill excluded",
    ),
}

RUNTIME_MAP: dict[str, tuple[str, bool]] = {
    "llama.cpp (Metal)": ("llama.cpp", False),
    "llama.cpp (Metal) fa=1": ("llama.cpp", True),
    "Ollama": ("ollama", False),
    "MLX": ("mlx", False),
}

EXCLUDED_RUNTIMES = {
    "llama.cpp batched-bench": "llama-batched-bench aggregates several sequences and mixes "
    "prompt and generation; the model is single-stream",
    "ds4 (Metal)": "ds4 is a separate DeepSeek-V4 engine, and DeepSeek-V4-Flash is not in the "
    "model database",
    "LM Studio / MLX": "UI-reported number, quantization described only as a 'bf16/4-bit mix'",
    "LM Studio / llama.cpp": "UI-reported number, GGUF quantization not stated",
    "oMLX (MLX + SSD KV cache)": "third-party engine with an SSD KV cache",
}


@dataclass(frozen=True, slots=True)
class RawRow:
    key: str
    chip: str
    gpu_cores: int | None
    runtime: str | None
    flash_attention: bool
    model_name: str
    quant: str | None
    test: str | None  # "tg" | "pp"
    n_tokens: int
    depth: float  # tg: mean depth over the run; pp: prompt start
    tps: float
    source: str
    excluded: str | None = None
    recent_build: bool = False


def _test_shape(test: str) -> tuple[str | None, int, float, str | None]:
    """(kind, n_tokens, depth, note) of a test label."""
    t = test.strip()
    for kind in ("tg", "pp"):
        if t.startswith(kind) and t[2:].isdigit():
            n = int(t[2:])
            # llama-bench tgN starts from an empty cache: mean depth N/2; ppN reads N tokens
            return kind, n, (n / 2.0 if kind == "tg" else 0.0), None
    if t == "avg eval (tg)":
        return "tg", 128, 64.0, "test length not stated: taken as tg128"
    if t == "avg prompt eval (pp)":
        return "pp", 512, 0.0, "test length not stated: taken as pp512"
    if t == "eval rate (tg)":
        return "tg", 512, 256.0, "Ollama eval rate of a chat answer: mean depth taken as 256"
    if t in ("F16 tg", "Q4 tg"):
        return "tg", 128, 64.0, "#4167-style test: tg128"
    if t in ("F16 pp", "Q4 pp"):
        return "pp", 512, 0.0, "#4167-style test: pp512"
    return None, 0, 0.0, None


def parse_apple(path: Path) -> list[RawRow]:
    rows: list[RawRow] = []
    with path.open(newline="", encoding="utf-8") as f:
        for i, r in enumerate(csv.DictReader(f), start=2):
            for q, qn in (("f16", "F16"), ("q8_0", "Q8_0"), ("q4_0", "Q4_0")):
                for test in ("pp512", "tg128"):
                    v = (r.get(f"{q}_{test}_tps") or "").strip()
                    if not v:
                        continue
                    kind, n, depth, _ = _test_shape(test)
                    rows.append(
                        RawRow(
                            key=f"{path.name}:{i}:{qn}:{test}",
                            chip=r["chip"].strip(),
                            gpu_cores=int(r["gpu_cores"]),
                            runtime="llama.cpp",
                            flash_attention=False,
                            model_name=r["model"].strip(),
                            quant=qn,
                            test=kind,
                            n_tokens=n,
                            depth=depth,
                            tps=float(v),
                            source="llama.cpp #4167",
                        )
                    )
    return rows


def _quant_of(model_id: str | None, runtime: str | None, label: str) -> str | None:
    lab = label.strip()
    if lab.startswith("Ollama default"):
        # Ollama's library ships gpt-oss in its native MXFP4 (OpenAI's release format), the
        # other models as Q4_K_M (willitrun DATA_SOURCES, as the CSV row says)
        return "MXFP4" if model_id and model_id.startswith("gpt-oss") else "Q4_K_M"
    if runtime == "mlx":
        return {"F16": "MLX-bf16", "4-bit": "MLX-4bit"}.get(lab)
    return lab if lab in ("F16", "Q8_0", "Q4_0", "Q4_K_M", "MXFP4") else None


def parse_other(path: Path) -> list[RawRow]:
    rows: list[RawRow] = []
    with path.open(newline="", encoding="utf-8") as f:
        for i, r in enumerate(csv.DictReader(f), start=2):
            fw = r["framework"].strip()
            chip = r["chip"].strip()
            model_name = r["model"].strip()
            key = f"{path.name}:{i}"
            tps_txt = r["tokens_per_s"].strip()
            excluded = EXCLUDED_RUNTIMES.get(fw)
            runtime, fa = RUNTIME_MAP.get(fw, (None, False))
            if runtime is None and excluded is None:
                excluded = f"runtime '{fw}' not modelled"
            kind, n, depth, _note = _test_shape(r["test"])
            if runtime == "mlx" and excluded is None and "tertiary" in r["source_quality"]:
                excluded = (
                    "tertiary quote of a Dec 2023 blog (original not read), MLX's first weeks "
                    "before its quantized kernels were tuned: 4-bit decoded slower than F16"
                )
            if kind is None and excluded is None:
                excluded = f"test '{r['test']}' not a single-stream pp/tg figure"
            try:
                tps = float(tps_txt)
            except ValueError:
                tps = float("nan")
                excluded = excluded or f"tokens_per_s '{tps_txt}' is not one number"
            model_id = MODEL_MAP.get(model_name, (None, ""))[0]
            if model_id is None and excluded is None:
                excluded = f"model '{model_name}' not in the model database"
            quant = _quant_of(model_id, runtime, r["quant"])
            if quant is None and excluded is None:
                excluded = f"quantization '{r['quant']}' not specific"
            cores_txt = r["gpu_cores"].strip()
            cores = int(cores_txt) if cores_txt else None
            if cores is None and excluded is None:
                assumed = CHIP_BIN_ASSUMED.get(chip)
                if assumed is None:
                    excluded = f"GPU bin of '{chip}' not stated"
                else:
                    cores = assumed[0]
                    if kind == "pp" and not assumed[1]:
                        excluded = f"prefill on an unstated GPU bin of {chip}"
            rows.append(
                RawRow(
                    key=key,
                    chip=chip.replace(" (10-core CPU)", ""),
                    gpu_cores=cores,
                    runtime=runtime,
                    flash_attention=fa,
                    model_name=model_name,
                    quant=quant,
                    test=kind,
                    n_tokens=n,
                    depth=depth,
                    tps=tps,
                    source=r["source"].split(" (")[0][:60],
                    excluded=excluded,
                    # ggml-org/llama.cpp benches/ on build 7948 (2026): see RECENT_BUILD_NOTE
                    recent_build="build 7948" in r["source"],
                )
            )
    return rows


# --------------------------------------------------------------------------------------------
# rows -> observations
# --------------------------------------------------------------------------------------------


def per_core_fp32(chips: Iterable) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Per-core FP32 FLOP/s per Apple generation: median of published TFLOPS / GPU cores."""
    by_gen: dict[str, list[float]] = {}
    used: dict[str, list[str]] = {}
    for c in chips:
        if not c.is_apple_silicon or not c.gpu_cores or c.gpu_fp32_tflops.value is None:
            continue
        by_gen.setdefault(c.generation, []).append(
            float(c.gpu_fp32_tflops.value) * 1e12 / c.gpu_cores
        )
        used.setdefault(c.generation, []).append(
            f"{c.name} {c.gpu_cores}c {c.gpu_fp32_tflops.value}"
        )
    return {g: float(statistics.median(v)) for g, v in sorted(by_gen.items())}, used


def to_observations(
    rows: Sequence[RawRow], catalog, models, per_core: dict[str, float]
) -> tuple[list[Observation], list[tuple[RawRow, str]]]:
    from forgeplanner.host import host_from_chip

    obs: list[Observation] = []
    skipped: list[tuple[RawRow, str]] = []
    for r in rows:
        if r.excluded:
            skipped.append((r, r.excluded))
            continue
        assert r.runtime and r.quant and r.test and r.gpu_cores
        chip = catalog.find_chip(r.chip, r.gpu_cores)
        model = models.get(MODEL_MAP[r.model_name][0])
        host = host_from_chip(chip, None, per_core=per_core)
        h = host_speed_inputs(host)
        if h is None:
            skipped.append((r, f"catalog has no bandwidth/compute for {chip.id}"))
            continue
        m = model_speed_inputs(
            model, r.quant, r.runtime, kv_type="f16", flash_attention=r.flash_attention
        )
        obs.append(
            Observation(
                key=r.key,
                runtime=r.runtime,
                test=r.test,
                model=m,
                host=h,
                chip=chip.name,
                generation=chip.generation,
                gpu_cores=chip.gpu_cores,
                depth=r.depth,
                n_tokens=r.n_tokens,
                n_ubatch=UBATCH_DEFAULT[r.runtime],
                measured_tps=r.tps,
                source=r.source,
                recent_build=r.recent_build,
            )
        )
    return obs, skipped


# --------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------


def mape(values: Iterable[float]) -> float:
    v = [abs(x) for x in values]
    return sum(v) / len(v) if v else float("nan")


def error_table(
    obs: Sequence[Observation], errs: dict[str, float]
) -> dict[tuple[str, str], tuple[int, float, float]]:
    """(runtime, test) -> (n, MAPE %, max abs %)."""
    out: dict[tuple[str, str], tuple[int, float, float]] = {}
    for rt in ("llama.cpp", "ollama", "mlx"):
        for t in ("tg", "pp"):
            e = [errs[o.key] for o in obs if o.runtime == rt and o.test == t and o.key in errs]
            if e:
                out[(rt, t)] = (len(e), mape(e), max(abs(x) for x in e))
    return out


@dataclass
class Report:
    constants: SpeedConstants
    obs: list[Observation]
    skipped: list[tuple[RawRow, str]]
    insample: dict[str, float]
    cv: dict[str, dict[str, float]]
    per_core_used: dict[str, list[str]]
    out_of_fit: list[tuple[Observation, float]] = field(default_factory=list)  # (obs, % error)


def run(reference: Path, fit_date: str) -> Report:
    from catalog import load_catalog
    from models_db import load_models

    catalog = load_catalog()
    models = load_models()
    per_core, used = per_core_fp32(catalog.chips.values())
    rows = parse_apple(reference / APPLE_CSV) + parse_other(reference / OTHER_CSV)
    obs, skipped = to_observations(rows, catalog, models, per_core)
    constants = fit_constants(obs, fit_date=fit_date, per_core_fp32_flops=per_core)
    insample = dict(zip((o.key for o in obs), errors_pct(constants, obs), strict=True))
    cv = {
        "leave one chip generation out (M1 / M2)": cross_validate(
            obs, lambda o: o.generation, per_core_fp32_flops=per_core
        ),
        "leave one chip out (e.g. all M2 Ultra rows)": cross_validate(
            obs, lambda o: o.chip, per_core_fp32_flops=per_core
        ),
        "leave one model out": cross_validate(
            obs, lambda o: o.model.model_id, per_core_fp32_flops=per_core
        ),
    }
    summary: dict[str, float] = {}
    for (rt, t), (_, m, _) in error_table(obs, insample).items():
        summary[f"in-sample {rt} {t} MAPE %"] = round(m, 2)
    for name, errs in cv.items():
        short = name.split(" (")[0]
        for (rt, t), (_, m, _) in error_table(obs, errs).items():
            summary[f"{short}: {rt} {t} MAPE %"] = round(m, 2)
    constants = SpeedConstants(
        runtimes=constants.runtimes,
        fit_date=constants.fit_date,
        basis=constants.basis,
        errors=summary,
        per_core_fp32_flops=per_core,
        build_drift=constants.build_drift,
    )
    # Rows left out of the fit but mappable (the old MLX quotes): what the constants predict
    mlx_rows = [replace(r, excluded=None) for r, _ in skipped if r.runtime == "mlx"]
    extra, _ = to_observations(mlx_rows, catalog, models, per_core)
    out_of_fit = list(zip(extra, errors_pct(constants, extra), strict=True))
    return Report(constants, obs, skipped, insample, cv, used, out_of_fit)


def _fmt_runtime(name: str, c: RuntimeConstants) -> str:
    def d(m):
        return "{" + ", ".join(f"{k!r}: {v!r}" for k, v in m.items()) + "}"

    return (
        f"    {name!r}: RuntimeConstants(\n"
        f"        a_bw={c.a_bw!r},\n"
        f"        a_ultra={c.a_ultra!r},\n"
        f"        a_core={c.a_core!r},\n"
        f"        dequant={d(c.dequant)},\n"
        f"        tau_token_s={c.tau_token_s!r},\n"
        f"        tau_layer_s={c.tau_layer_s!r},\n"
        f"        kv_read_factor={c.kv_read_factor!r},\n"
        f"        compute={d(c.compute)},\n"
        f"        c_ultra={c.c_ultra!r},\n"
        f"        a_reread={c.a_reread!r},\n"
        f"    ),\n"
    )


def render_constants(rep: Report) -> str:
    c = rep.constants
    errs = "\n".join(f"#   {k}: {v}" for k, v in c.errors.items())
    runtimes = "".join(_fmt_runtime(n, rc) for n, rc in c.runtimes.items())
    per_core = "{" + ", ".join(f"{k!r}: {v!r}" for k, v in c.per_core_fp32_flops.items()) + "}"
    errors = "{\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in c.errors.items()) + "}"
    return f'''"""Calibrated speed constants. GENERATED FILE - do not edit by hand.

Regenerate with:  .venv/bin/python scripts/calibrate_speed.py
Fitted {c.fit_date} on {len(rep.obs)} published runs from /work/shared/reference
(bench_llamacpp_apple_calibration.csv, bench_other_calibration.csv); formulas in
forgeplanner/engine/speed.py, fit in forgeplanner/engine/speed_fit.py, mappings, excluded rows
and errors in docs/calibration.md.
"""

# Fit errors (mean absolute percentage error; held-out = cross-validated):
{errs}

from forgeplanner.engine.speed import RuntimeConstants, SpeedConstants

FIT_DATE = {c.fit_date!r}

# Peak FP32 FLOP/s per GPU core by generation: median of published TFLOPS / cores
# (catalog chips with a published figure). Used where a bin has no published figure.
PER_CORE_FP32_FLOPS: dict[str, float] = {per_core}

FIT_ERRORS: dict[str, float] = {errors}

CONSTANTS = SpeedConstants(
    runtimes={{
{runtimes}    }},
    fit_date=FIT_DATE,
    basis={c.basis!r},
    errors=FIT_ERRORS,
    per_core_fp32_flops=PER_CORE_FP32_FLOPS,
)
'''


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _ruff_format(path: Path) -> None:
    """Keep the generated module in the repo's format (ruff), when ruff is installed."""
    import shutil
    import subprocess

    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    if Path(ruff).exists():
        subprocess.run([ruff, "format", "--quiet", str(path)], check=False, timeout=60)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    ap.add_argument("--check", action="store_true", help="fit and print; write nothing")
    ap.add_argument("--date", default=_dt.date.today().isoformat(), help="fit date to record")
    args = ap.parse_args(argv)
    rep = run(args.reference, args.date)
    from calibration_doc import render_doc  # scripts/calibration_doc.py

    doc = render_doc(rep)
    if args.check:
        print(doc)
        return 0
    atomic_write(CONSTANTS_PY, render_constants(rep))
    _ruff_format(CONSTANTS_PY)
    atomic_write(DOC_MD, doc)
    for k, v in rep.constants.errors.items():
        print(f"{k}: {v}")
    print(f"wrote {CONSTANTS_PY.relative_to(REPO)} and {DOC_MD.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    sys.exit(main())
