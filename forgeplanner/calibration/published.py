"""The published runs nearest to an estimate: the evidence beside our number.

Reads data/published_index.json (written by speed_report from the usable rows of
published_runs.csv) and ranks runs by how close they are to the estimate's setup:

- same kind (decode / prefill) is required;
- chip: the same chip and GPU bin best, then the same chip, the same generation and tier
  ("Max"), the same tier, anything;
- runtime: the same runtime, then the same engine family (llama.cpp / Ollama / LM Studio's
  llama.cpp engine, or MLX / LM Studio's MLX engine);
- model: the same model, else the nearest active-parameter count (log ratio), dense / MoE
  matching;
- recency breaks ties.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

INDEX = Path(__file__).resolve().parent / "data" / "published_index.json"
GGUF_FAMILY = {"llama.cpp", "ollama", "lmstudio-gguf"}


@dataclass(frozen=True, slots=True)
class Target:
    chip: str  # "M4 Max"
    gpu_cores: int | None
    runtime: str
    kind: str  # "decode" | "prefill"
    model_id: str
    params_b: float  # active params, billions
    moe: bool
    quant: str = ""


@lru_cache(maxsize=1)
def _rows(path: str = str(INDEX)) -> tuple[dict, ...]:
    p = Path(path)
    if not p.is_file():
        return ()
    return tuple(json.loads(p.read_text(encoding="utf-8")))


@lru_cache(maxsize=256)
def _bits(quant: str) -> float | None:
    """Bits per weight of a quantization name (the engine's registry; UD-* as its base)."""
    from forgeplanner.engine.quant import get_quant
    from forgeplanner.errors import ForgePlannerError

    try:
        return float(get_quant(quant).bits_per_weight)
    except ForgePlannerError:  # an unknown or free-text quant in a published row
        return None


def _tier(chip: str) -> str:
    parts = chip.split()
    return parts[1] if len(parts) > 1 else "base"


def _gen(chip: str) -> str:
    return chip.split()[0] if chip else ""


@dataclass(frozen=True)
class _Columns:
    """The index as numpy columns, so ranking 2,000 runs is a few array operations (this runs
    on every `estimate`, whose start-up budget is a few hundred milliseconds)."""

    rows: tuple[dict, ...]
    kind: np.ndarray
    chip: np.ndarray
    gen: np.ndarray
    tier: np.ndarray
    cores: np.ndarray
    runtime: np.ndarray
    gguf: np.ndarray
    model: np.ndarray
    log_params: np.ndarray
    moe: np.ndarray
    bits: np.ndarray
    quant: np.ndarray
    recency: np.ndarray
    order: np.ndarray  # rank of the row id, the tie-break


@lru_cache(maxsize=2)
def _columns(path: str) -> _Columns:
    rows = _rows(path)

    def col(f, dtype=object):
        return np.array([f(r) for r in rows], dtype=dtype)

    def year_bonus(r: dict) -> float:
        year = (r.get("date") or "0000")[:4]
        return 0.1 * max(0, min(4, int(year) - 2022)) if year.isdigit() else 0.0

    ids = [r["id"] for r in rows]
    rank = {rid: i for i, rid in enumerate(sorted(ids))}
    return _Columns(
        rows=rows,
        kind=col(lambda r: r["kind"]),
        chip=col(lambda r: r["chip"]),
        gen=col(lambda r: _gen(r["chip"])),
        tier=col(lambda r: _tier(r["chip"])),
        cores=col(lambda r: str(r.get("gpu_cores") or "")),
        runtime=col(lambda r: r["runtime"]),
        gguf=col(lambda r: r["runtime"] in GGUF_FAMILY, bool),
        model=col(lambda r: r["model"]),
        log_params=col(lambda r: math.log(max(float(r.get("params_b") or 0.0), 1e-3)), float),
        moe=col(lambda r: bool(r.get("moe")), bool),
        bits=col(lambda r: _bits(r.get("quant") or "") or np.nan, float),
        quant=col(lambda r: r.get("quant") or ""),
        recency=col(year_bonus, float),
        order=np.array([rank[i] for i in ids], dtype=np.int64),
    )


def _scores(c: _Columns, t: Target) -> np.ndarray:
    """How close each published run is to the target (higher is closer): chip (same bin, same
    chip, same generation and tier, tier, generation), runtime (same, same weight format),
    model (same, else by size), dense/MoE, bits per weight, and newer runs a little."""
    same_chip = c.chip == t.chip
    same_gen, same_tier = c.gen == _gen(t.chip), c.tier == _tier(t.chip)
    s = np.where(
        same_chip,
        3.0 + 0.5 * ((c.cores == str(t.gpu_cores or "-")) & bool(t.gpu_cores)),
        np.where(same_gen & same_tier, 2.0, np.where(same_tier, 1.0, np.where(same_gen, 0.8, 0.0))),
    )
    s = s + np.where(
        c.runtime == t.runtime, 2.0, np.where(c.gguf == (t.runtime in GGUF_FAMILY), 1.0, 0.0)
    )
    size = np.maximum(0.0, 2.0 - 2.0 * np.abs(c.log_params - math.log(max(t.params_b, 1e-3))))
    s = s + np.where(c.model == t.model_id, 3.0, size)
    s = s + 0.5 * (c.moe == t.moe)
    if t.quant:
        # bits per weight set the bytes read per token: a run at half the bits is no evidence
        # for this estimate, whatever else it shares
        bits_t = _bits(t.quant)
        if bits_t:
            close = np.maximum(0.0, 1.0 - np.abs(c.bits - bits_t) / 1.5)
            s = s + 2.0 * np.nan_to_num(close, nan=0.0)
        s = s + 0.5 * (c.quant == t.quant)
    return s + c.recency


def nearest(t: Target, n: int = 5, path: Path = INDEX) -> list[dict]:
    """The n published runs closest to the target, best first, each with what it measured,
    when and where (value, test, date, url)."""
    c = _columns(str(path))
    if not c.rows:
        return []
    score = np.where(c.kind == t.kind, _scores(c, t), -np.inf)
    best = np.lexsort((c.order, -score))[:n]
    ranked = [c.rows[i] for i in best if np.isfinite(score[i])]
    out = []
    for r in ranked[:n]:
        out.append(
            {
                "chip": r["chip"] + (f" {r['gpu_cores']}-core GPU" if r.get("gpu_cores") else ""),
                "machine": r.get("machine"),
                "runtime": r["runtime"],
                "version": r.get("version"),
                "model": r["model"],
                "quant": r["quant"],
                "test": r.get("test"),
                "depth": r.get("depth"),
                "prompt_tokens": r.get("prompt"),
                "tokens_per_s": r["tps"],
                "date": r.get("date"),
                "source": r["url"],
                "source_title": r.get("title"),
            }
        )
    return out


def for_estimate(
    chip: str | None,
    gpu_cores: int | None,
    runtime: str,
    model_id: str,
    params_b: float,
    moe: bool,
    n: int = 5,
    quant: str = "",
) -> dict[str, list[dict]]:
    """{"decode": [...], "prefill": [...]}: the nearest published runs of each kind; empty
    lists for a host without an Apple chip (no published runs of that kind are kept)."""
    if not chip:
        return {"decode": [], "prefill": []}
    out = {}
    for kind in ("decode", "prefill"):
        target = Target(chip, gpu_cores, str(runtime), kind, model_id, params_b, moe, quant)
        out[kind] = nearest(target, n)
    return out
