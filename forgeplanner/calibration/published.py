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


def _tier(chip: str) -> str:
    parts = chip.split()
    return parts[1] if len(parts) > 1 else "base"


def _gen(chip: str) -> str:
    return chip.split()[0] if chip else ""


def _score(r: dict, t: Target) -> float:
    s = 0.0
    if r["chip"] == t.chip:
        s += 3.0
        cores = r.get("gpu_cores")
        if t.gpu_cores and cores and str(cores) == str(t.gpu_cores):
            s += 0.5
    elif _gen(r["chip"]) == _gen(t.chip) and _tier(r["chip"]) == _tier(t.chip):
        s += 2.0
    elif _tier(r["chip"]) == _tier(t.chip):
        s += 1.0
    elif _gen(r["chip"]) == _gen(t.chip):
        s += 0.8
    if r["runtime"] == t.runtime:
        s += 2.0
    elif (r["runtime"] in GGUF_FAMILY) == (t.runtime in GGUF_FAMILY):
        s += 1.0
    if r["model"] == t.model_id:
        s += 3.0
    else:
        p = max(float(r.get("params_b") or 0.0), 1e-3)
        s += max(0.0, 2.0 - 2.0 * abs(math.log(p / max(t.params_b, 1e-3))))
    if bool(r.get("moe")) == t.moe:
        s += 0.5
    if t.quant and r.get("quant") == t.quant:
        s += 1.0
    year = (r.get("date") or "0000")[:4]
    s += 0.1 * max(0, min(4, int(year) - 2022)) if year.isdigit() else 0.0
    return s


def nearest(t: Target, n: int = 5, path: Path = INDEX) -> list[dict]:
    """The n published runs closest to the target, best first, each with what it measured,
    when and where (value, test, date, url)."""
    rows = [r for r in _rows(str(path)) if r["kind"] == t.kind]
    ranked = sorted(rows, key=lambda r: (-_score(r, t), r["id"]))
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
