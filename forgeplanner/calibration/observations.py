"""Published runs -> fit rows: each usable row of published_runs.csv mapped to the physical
quantities the estimator uses (the engine's own pipeline and speed designs), so the fit and the
estimate are the same formula.

A row is usable when the dataset did not exclude it (`exclude_reason` empty), its runtime is
one of the modelled runtimes, its model is in the model database, its quantization is known,
and its chip bin is in the catalog (or, for decode, every bin of that chip has the same
bandwidth). Every row that is not used keeps the reason, for docs/speed-validation.md.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from forgeplanner.domain.estimates import RunOptions
from forgeplanner.domain.runtime import Runtime
from forgeplanner.engine.pipeline import prepare
from forgeplanner.engine.runtimes import profile
from forgeplanner.engine.speed import (
    HostSpeedInputs,
    decode_design_for,
    depth_band,
    host_speed_inputs,
    prefill_design_for,
)
from forgeplanner.errors import ForgePlannerError

DATA = Path(__file__).resolve().parent / "data"
RUNS_CSV = DATA / "published_runs.csv"

MODELLED_RUNTIMES = {r.value for r in Runtime}
# Source-quality weights: a verbatim tool output counts fully, a secondary copy less.
QUALITY_WEIGHT = {"high": 1.0, "medium": 0.8, "low": 0.5}


@dataclass(frozen=True, slots=True)
class Observation:
    """One published measurement with the quantities of every speed term."""

    row_id: str
    runtime: str  # Runtime value
    era: str | None  # the runtime profile's era key (by version, else date)
    kind: str  # "decode" | "prefill"
    design: dict[str, float]  # term name -> quantity (seconds per unit of coefficient)
    measured_tps: float
    weight: float  # relative weight in the fit (source quality)
    source: str  # the page or repository it came from (leave-one-source-out groups)
    input_file: str
    chip: str
    generation: str
    model_id: str
    quant: str
    moe: bool
    depth: int  # tokens in the cache before the measured part
    prompt_tokens: int
    params_b: float  # active params (billions)
    date: str
    url: str
    fanless: bool = False  # measured on a passively cooled Mac (MacBook Air)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def seconds(self) -> float:
        return 1.0 / self.measured_tps

    @property
    def depth_band(self) -> str:
        return depth_band(self.depth if self.kind == "decode" else self.prompt_tokens)


def source_key(url: str) -> str:
    """The page or repository a row came from: github.com/OWNER/REPO for repository files,
    OWNER/REPO#N for issues, PRs and discussions, host/path otherwise."""
    u = urlparse(url.strip())
    parts = [p for p in u.path.split("/") if p]
    if u.netloc.endswith("github.com") and len(parts) >= 2:
        repo = f"{parts[0]}/{parts[1]}"
        if len(parts) >= 4 and parts[2] in ("issues", "pull", "discussions"):
            return f"{repo}#{parts[3]}"
        return repo
    return f"{u.netloc}{u.path}".rstrip("/") or url


@dataclass
class Mapping:
    observations: list[Observation]
    unused: list[tuple[str, str]]  # (row_id, reason)


def _int(v: str, default: int = 0) -> int:
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return default


def _float(v: str) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if x == x else None


_TG = re.compile(r"^tg(\d+)")


def read_rows(path: Path = RUNS_CSV) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _host(catalog, chip: str, cores: int | None, kind: str) -> tuple[HostSpeedInputs, str]:
    """Speed inputs of the chip bin; ValueError with the reason when it cannot be used."""
    from forgeplanner.host import host_from_chip

    try:
        if cores:
            spec = catalog.find_chip(chip, cores)
            basis = "bin stated"
        else:
            bins = [c for c in catalog.chips.values() if c.name.lower() == chip.lower()]
            if not bins:
                raise ValueError(f"chip {chip} not in the catalog")
            bws = {c.mem_bandwidth_gbps.value for c in bins}
            if kind == "prefill" and len(bins) > 1:
                raise ValueError(f"{chip}: GPU bin unknown, prefill depends on GPU cores")
            if len(bws) > 1:
                raise ValueError(f"{chip}: GPU bin unknown and its bins differ in bandwidth")
            spec = max(bins, key=lambda c: c.gpu_cores)
            basis = "bin unknown, all bins share the bandwidth (top bin's compute)"
    except ForgePlannerError as exc:
        raise ValueError(str(exc).splitlines()[0]) from None
    host = host_from_chip(spec, None if spec.memory_options_gb else 64)
    hs = host_speed_inputs(host)
    if hs is None:
        raise ValueError(f"{spec.name} {spec.gpu_cores}c: bandwidth or compute unknown")
    return hs, basis


def build(rows: Iterable[dict[str, str]] | None = None) -> Mapping:
    """Map dataset rows to observations (and the reasons of the rows left out)."""
    from catalog import load_catalog
    from forgeplanner.engine.quant import get_quant
    from models_db import load_models

    catalog = load_catalog()
    models = load_models()
    obs: list[Observation] = []
    unused: list[tuple[str, str]] = []
    for r in rows if rows is not None else read_rows():
        rid = r["row_id"]
        if r.get("exclude_reason"):
            unused.append((rid, f"dataset: {r['exclude_reason']}"))
            continue
        try:
            obs.append(_observation(r, catalog, models, get_quant))
        except (ValueError, KeyError, ForgePlannerError) as exc:
            unused.append((rid, str(exc).splitlines()[0]))
    return Mapping(obs, unused)


CHIP_BINS_CSV = Path(__file__).parent / "data" / "lookups" / "chip_bins.csv"
_FIRST_MAC: dict[str, str] = {}


def chip_release_date(catalog, chip: str) -> str | None:
    """The day the first Mac with this chip (any GPU bin, laptops included) was announced:
    the earliest `chip_announced` of its bins in data/lookups/chip_bins.csv (sourced per row);
    for a chip not listed there, the earliest release date of a catalog machine with it."""
    if not _FIRST_MAC:
        with CHIP_BINS_CSV.open(newline="", encoding="utf-8") as f:
            for r in csv.DictReader(f):
                name, day = r["chip"].lower(), r["chip_announced"]
                if day and (name not in _FIRST_MAC or day < _FIRST_MAC[name]):
                    _FIRST_MAC[name] = day
    day = _FIRST_MAC.get(chip.lower())
    if day:
        return day
    dates = [
        cfg.release_date
        for cfg in catalog.configs.values()
        if cfg.release_date
        and (spec := catalog.chips.get(cfg.chip_id)) is not None
        and spec.name.lower() == chip.lower()
    ]
    return min(dates) if dates else None


def _observation(r: dict[str, str], catalog, models, get_quant) -> Observation:
    runtime = r["runtime"]
    if runtime not in MODELLED_RUNTIMES:
        raise ValueError(f"runtime {runtime} not modelled")
    if not r.get("model_id"):
        raise ValueError("model not mapped to the database")
    if not r.get("quant"):
        raise ValueError("quantization not stated")
    tps = _float(r["tokens_per_s"])
    if not tps or tps <= 0:
        raise ValueError("no positive tokens/s")
    kind = r["kind"]
    model = models.get(r["model_id"])
    quant = get_quant(r["quant"].replace("mlx-", "MLX-"))
    prof = profile(runtime)
    if quant.format != prof.weight_format:
        raise ValueError(f"{quant.name} is not a {prof.weight_format} quantization")
    cores = _int(r.get("gpu_cores", ""), 0) or None
    hs, bin_basis = _host(catalog, r["chip"], cores, kind)
    version = (r.get("runtime_version") or "").strip()
    era = None
    if r.get("llamacpp_build") and runtime in ("llama.cpp",):
        era = prof.era_for(f"b{_int(r['llamacpp_build'])}")
    if era is None:
        era = prof.era_for_date(r.get("runtime_date") or r.get("date") or "")
    # A chip cannot be measured on a build older than the chip: tables that state one
    # reference build for every row (llama.cpp discussion #4167 names b1550 for its M4 Max
    # rows too) are run on newer builds for newer chips, so the era is at least the chip's.
    released = chip_release_date(catalog, r["chip"])
    floor = prof.era_for_date(released) if released else None
    if floor is not None and (era is None or floor.since > era.since):
        era = floor
    fa_txt = (r.get("flash_attention") or "").strip()
    fa_req = None if fa_txt == "" else bool(_int(fa_txt))
    depth = _int(r.get("depth", ""), 0)
    prompt = _int(r.get("prompt_tokens", ""), 0)
    gen = _int(r.get("gen_tokens", ""), 0)
    if kind == "decode" and not gen:
        m = _TG.match(r.get("test", ""))
        gen = int(m.group(1)) if m else 128
    opts = RunOptions(
        runtime=runtime,
        flash_attention=fa_req,
        context=max(512, depth + max(prompt, gen) + 256),
    )
    p = prepare(model, quant, opts, apple_gpu=True)
    m = p.speed_inputs
    if kind == "decode":
        # mean cache depth while generating gen tokens after `depth`
        design = decode_design_for(m, hs, depth + gen / 2.0)
    elif kind == "prefill":
        if not prompt:
            raise ValueError("prefill row without a prompt length")
        na_era = bool(era.neural_accelerators) if era is not None else False
        from forgeplanner.engine.speed import RuntimeConstants

        shim = RuntimeConstants(decode={}, prefill={}, uses_neural_accelerators=na_era)
        design = prefill_design_for(
            m, hs, shim, prompt_tokens=prompt, prompt_start=depth,
            n_ubatch=prof.n_ubatch(opts.n_ubatch, opts.n_batch),
            flash_attention=bool(p.fa.enabled),
        )  # fmt: skip
    else:
        raise ValueError(f"kind {kind} unknown")
    q = (r.get("source_quality") or "medium").strip()
    return Observation(
        row_id=r["row_id"],
        runtime=runtime,
        era=era.key if era is not None else None,
        kind=kind,
        design={k: float(v) for k, v in design.items()},
        measured_tps=tps,
        weight=QUALITY_WEIGHT.get(q, 0.8),
        source=source_key(r.get("source_url", "")),
        input_file=r.get("input_file", ""),
        chip=r["chip"],
        generation=hs.generation or r.get("chip_generation", ""),
        model_id=model.id,
        quant=quant.name,
        moe=model.moe is not None,
        depth=depth,
        prompt_tokens=prompt,
        params_b=model.active_params / 1e9,
        date=(r.get("date") or r.get("runtime_date") or "")[:10],
        url=r.get("source_url", ""),
        fanless="macbook air" in (r.get("machine") or "").lower(),
        extra={"bin": bin_basis, "version": version, "test": r.get("test", "")},
    )
