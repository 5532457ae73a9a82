"""The published-runs dataset: one sourced row per published Apple Silicon measurement.

`build_dataset()` reads every input table in data/sources/ (copies of the gathered tables,
each row with the URL that finds it again) and the curated lookups in data/lookups/, and
returns the normalised dataset; `render_csv()` is the exact text of data/published_runs.csv,
so a test can tell when the committed file is stale. scripts/build_published_runs.py writes
it. Nothing is dropped: a row the speed fit must skip keeps its `exclude_reason`, and a
number copied by several sources is kept once as the primary row with its `copies` named,
the copies marked "duplicate of ...".
"""

from __future__ import annotations

import io
import math
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd

from forgeplanner.calibration.runs_checks import rule_reasons
from forgeplanner.calibration.runs_hardware import APPLE_CHIPS, normalise_hardware
from forgeplanner.calibration.runs_inputs import INPUT_TABLES, read_inputs
from forgeplanner.calibration.runs_lookups import Lookups, load_lookups
from forgeplanner.calibration.runs_measure import (
    is_mlx_quant,
    normalise_date,
    normalise_quant,
    normalise_shape,
)
from forgeplanner.calibration.runs_models import ModelMatcher, name_key
from forgeplanner.calibration.runs_runtime import normalise_runtime
from forgeplanner.errors import DataError

DATA_DIR = Path(__file__).resolve().parent / "data"
SOURCES_DIR = DATA_DIR / "sources"
LOOKUPS_DIR = DATA_DIR / "lookups"
DATASET_PATH = DATA_DIR / "published_runs.csv"

COLUMNS: tuple[str, ...] = (
    "row_id",
    "machine",
    "chip",
    "chip_generation",
    "chip_tier",
    "gpu_cores",
    "gpu_cores_basis",
    "memory_gb",
    "runtime",
    "runtime_version",
    "llamacpp_build",
    "engine",
    "engine_basis",
    "flash_attention",
    "runtime_date",
    "runtime_date_basis",
    "runtime_version_raw",
    "model_name",
    "hf_repo",
    "model_id",
    "model_mapping",
    "moe",
    "params_total_b",
    "params_active_b",
    "params_b",
    "model_size_gib",
    "quant",
    "quant_basis",
    "quant_raw",
    "test",
    "kind",
    "depth",
    "prompt_tokens",
    "gen_tokens",
    "batch",
    "batch_settings",
    "threads",
    "tokens_per_s",
    "tps_stddev",
    "date",
    "year",
    "source_url",
    "source_locator",
    "source_title",
    "source_kind",
    "source_quality",
    "input_file",
    "input_row_id",
    "copies",
    "exclude_reason",
    "notes",
    "dataset_notes",
)

_QUALITY_RANK = {"high": 0, "medium": 1, "low": 2}
_KIND_RANK = {
    "github-discussion": 0,
    "github-issue": 0,
    "github-pr": 0,
    "repo-data": 0,
    "readme": 1,
    "docs": 1,
    "blog": 2,
    "forum": 2,
}
_ROW_PREFIX = {
    "repo_calibration_llamacpp_4167.csv": "cal4167-",
    "repo_calibration_other.csv": "calother-",
    "repo_heldout.csv": "heldout-",
}


def _num(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _fmt(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{value:.6g}" if abs(value) < 1e6 else str(int(value))


def _source_kind(url: str, stated: str) -> str:
    if stated:
        return stated
    if "/discussions/" in url:
        return "github-discussion"
    if "/issues/" in url:
        return "github-issue"
    if "/pull/" in url:
        return "github-pr"
    if "/blob/" in url:
        return "repo-data"
    return "blog" if url else ""


def _locator(url: str, model_name: str, test: str) -> str:
    """Where on the page: the comment anchor or the repo file, then the table row."""
    where = ""
    if "#" in url:
        where = url.split("#", 1)[1]
    elif m := re.search(r"/blob/([0-9a-f]{7})[0-9a-f]*/(.+)$", url):
        where = f"{m.group(2)} @{m.group(1)}"
    row = f"row '{model_name}' / '{test}'"
    return f"{where}; {row}" if where else row


# mac-llm-bench's result files: "file_size_gb" is os.path.getsize / 1073741824
# (lib/collect_results.sh), so GiB despite its name.
_MLB_FILE_SIZE = re.compile(r"mac-llm-bench result JSON.*?\bfile_size_gb ([\d.]+)")


def _normalise_row(raw: dict[str, str], lookups: Lookups, matcher: ModelMatcher) -> dict:
    notes: list[str] = []
    hw = normalise_hardware(raw, lookups)
    date, date_note = normalise_date(raw["date"])
    if date_note:
        notes.append(date_note)
    match = matcher.match(raw["model_name"], raw["hf_repo"], raw["params_b"], raw["model_id_hint"])
    entry = matcher.entry(match.model_id) if match.model_id else None
    # The runtime decides how the quant label reads; MLX wrappers are found first.
    quant = normalise_quant(raw["quant"], raw["runtime"], raw["model_name"], raw["hf_repo"])
    rt = normalise_runtime(
        raw,
        date,
        entry.gguf_arch if entry else "",
        is_mlx_quant(quant.quant),
        lookups,
    )
    if rt.runtime != raw["runtime"]:
        quant = normalise_quant(raw["quant"], rt.runtime, raw["model_name"], raw["hf_repo"])
        notes.append(
            f"runtime '{raw['runtime']}' in the source table; the engine named is MLX-based"
        )
    if rt.note:
        notes.append(rt.note)
    if quant.quant_basis not in ("stated", "not stated"):
        notes.append(f"quant {quant.quant_basis}")
    shape = normalise_shape(raw, raw["input_file"])
    if shape.note:
        notes.append(shape.note)
    if raw["exclude_hint"]:
        notes.append(f"the first held-out table set this row aside: {raw['exclude_hint']}")
    size_gib = raw["model_size_gib"]
    if not size_gib and rt.runtime == "llama.cpp" and (m := _MLB_FILE_SIZE.search(raw["notes"])):
        size_gib = m.group(1)
        notes.append("model_size_gib from mac-llm-bench's file_size_gb (bytes / 2^30)")
    tps = _num(raw["tokens_per_s"])
    reasons = rule_reasons(
        runtime=rt.runtime,
        chip=hw.chip,
        apple=hw.chip in APPLE_CHIPS,
        engine=rt.engine,
        batch=shape.batch,
        notes=raw["notes"],
        test=raw["test"],
        model_name=raw["model_name"],
        kind=shape.kind,
        tps=tps,
        quant=quant.quant,
        quant_raw=raw["quant"],
        active_params_b=(entry.params_active_b or entry.params_total_b) if entry else None,
        bandwidth_gbps=hw.bandwidth_max_gbps,
        date=date,
        chip_announced=hw.chip_announced,
    )
    moe = ""
    if entry is not None:
        moe = "moe" if entry.params_active_b else "dense"
    year = date[:4]
    prefix = _ROW_PREFIX.get(raw["input_file"], "")
    return {
        "row_id": raw["row_id"] or f"{prefix}{raw['input_row_id']}",
        "machine": hw.machine,
        "chip": hw.chip,
        "chip_generation": hw.chip_generation,
        "chip_tier": hw.chip_tier,
        "gpu_cores": _fmt(hw.gpu_cores),
        "gpu_cores_basis": hw.gpu_cores_basis,
        "memory_gb": _fmt(hw.memory_gb),
        "runtime": rt.runtime,
        "runtime_version": rt.runtime_version,
        "llamacpp_build": _fmt(rt.llamacpp_build),
        "engine": rt.engine,
        "engine_basis": rt.engine_basis,
        "flash_attention": raw["flash_attention"],
        "runtime_date": rt.runtime_date,
        "runtime_date_basis": rt.runtime_date_basis,
        "runtime_version_raw": raw["runtime_version"],
        "model_name": raw["model_name"],
        "hf_repo": raw["hf_repo"],
        "model_id": match.model_id,
        "model_mapping": match.mapping,
        "moe": moe,
        "params_total_b": _fmt(entry.params_total_b) if entry else "",
        "params_active_b": _fmt(entry.params_active_b) if entry else "",
        "params_b": raw["params_b"],
        "model_size_gib": size_gib,
        "quant": quant.quant,
        "quant_basis": quant.quant_basis,
        "quant_raw": raw["quant"],
        "test": raw["test"],
        "kind": shape.kind,
        "depth": _fmt(shape.depth),
        "prompt_tokens": _fmt(shape.prompt_tokens),
        "gen_tokens": _fmt(shape.gen_tokens),
        "batch": _fmt(shape.batch),
        "batch_settings": shape.batch_settings,
        "threads": raw["threads"],
        # As printed (a validated number): never re-rounded.
        "tokens_per_s": raw["tokens_per_s"].strip() if tps is not None else "",
        "tps_stddev": raw["tps_stddev"].strip() if _num(raw["tps_stddev"]) is not None else "",
        "date": date,
        "year": year,
        "source_url": raw["source_url"],
        "source_locator": _locator(raw["source_url"], raw["model_name"], raw["test"]),
        "source_title": raw["source_title"],
        "source_kind": _source_kind(raw["source_url"], raw["source_kind"]),
        "source_quality": raw["source_quality"],
        "input_file": raw["input_file"],
        "input_row_id": raw["input_row_id"],
        "copies": "",
        "_reasons": reasons,
        "_tps_raw": raw["tokens_per_s"].strip(),
        "notes": raw["notes"],
        "dataset_notes": "; ".join(notes),
    }


def _dedupe_key(row: dict) -> tuple[str, ...]:
    """Rows that may be one number copied share this key (see `_mark_duplicates`)."""
    model = row["model_id"] or name_key(row["model_name"])
    return (row["chip"], row["kind"], model, row["quant"])


def _decimals(printed: str) -> int:
    return len(printed.split(".", 1)[1]) if "." in printed else 0


def _same_rate(a: str, b: str) -> bool:
    """Equal once the finer of two printed rates is rounded like the coarser one."""
    places = min(_decimals(a), _decimals(b))
    return abs(round(float(a), places) - round(float(b), places)) < 1e-9


def _same_runtime(a: str, b: str) -> bool:
    return a == b or "other:unstated" in (a, b)


_GITHUB = re.compile(
    r"github\.com/([\w.-]+/[\w.-]+)(?:/(?:issues|pull|discussions)/(\d+))?", re.IGNORECASE
)
_ANY_URL = re.compile(r"https?://[^\s,;)\]']+")


def _origin(url: str) -> str:
    """A page's identity: GitHub repo (and thread), else host and path."""
    if m := _GITHUB.search(url):
        repo = m.group(1).lower().removesuffix(".git")
        return f"{repo}#{m.group(2)}" if m.group(2) else repo
    return re.sub(r"^https?://(www\.)?|[?#].*$", "", url).rstrip("/").lower()


def _origins(row: dict) -> set[str]:
    """The row's page and every page its notes name (a transcription names its original)."""
    urls = [row["source_url"], *_ANY_URL.findall(row["notes"])]
    return {_origin(u) for u in urls if u}


def _rank(row: dict, order: dict[str, int]) -> tuple[int, int, int, int, int]:
    # The first calibration's tables are earlier copies of the same sources: a staging row
    # read for this dataset, with its page and caveats, is the primary one.
    return (
        1 if row["input_file"].startswith("repo_") else 0,
        _QUALITY_RANK.get(row["source_quality"], 3),
        _KIND_RANK.get(row["source_kind"], 3),
        order[row["input_file"]],
        row["_index"],
    )


def _mark_duplicates(rows: list[dict]) -> None:
    """Keep the best-sourced row of each copied number; the copies point at it.

    Candidates share chip, kind, model and quant, and the runtime (or one source did not
    state it). Within one input file only a double entry (same page, test, depth, notes and
    rate) is a copy: one gatherer read each page once. Across files the rates must be equal once
    the finer is rounded like the coarser (1200.92 printed as 1201), and either the rows
    cite the same page (or the page a transcription names) or both print at least two
    decimals, which two different runs rarely share.
    """
    order = {t.file: t.rank for t in INPUT_TABLES}

    def is_copy(head: dict, row: dict) -> bool:
        if not _same_runtime(head["runtime"], row["runtime"]):
            return False
        if head["gpu_cores"] and row["gpu_cores"] and head["gpu_cores"] != row["gpu_cores"]:
            return False  # two bins of one chip can print the same rate (#4167's M1 Pro F16)
        a, b = head["_tps_raw"], row["_tps_raw"]
        if head["input_file"] == row["input_file"]:
            # Repeated runs that happen to print the same rate differ in their notes.
            return (
                head["source_url"] == row["source_url"]
                and head["test"] == row["test"]
                and head["depth"] == row["depth"]
                and head["notes"] == row["notes"]
                and float(a) == float(b)
            )
        if not _same_rate(a, b):
            return False
        return bool(_origins(head) & _origins(row)) or min(_decimals(a), _decimals(b)) >= 2

    groups: dict[tuple[str, ...], list[dict]] = defaultdict(list)
    for row in rows:
        if row["tokens_per_s"] and row["chip"]:
            groups[_dedupe_key(row)].append(row)
    for members in groups.values():
        if len(members) < 2:
            continue
        members.sort(key=lambda r: _rank(r, order))
        clusters: list[list[dict]] = []
        for row in members:
            for cluster in clusters:
                if is_copy(cluster[0], row):
                    cluster.append(row)
                    break
            else:
                clusters.append([row])
        for cluster in clusters:
            primary, copies = cluster[0], cluster[1:]
            if not copies:
                continue
            primary["copies"] = "; ".join(
                f"{c['row_id']} ({c['source_url'] or c['input_file']})" for c in copies
            )
            for copy in copies:
                copy["_reasons"].insert(0, f"duplicate of {primary['row_id']}")


def build_dataset(sources_dir: Path = SOURCES_DIR, lookups_dir: Path = LOOKUPS_DIR) -> pd.DataFrame:
    raw = read_inputs(sources_dir)
    lookups = load_lookups(lookups_dir)
    matcher = ModelMatcher(lookups)
    used_flags: set[int] = set()
    rows = []
    for index, rec in enumerate(raw.to_dict("records")):
        row = _normalise_row(rec, lookups, matcher)
        row["_index"] = index
        for number, flag in enumerate(lookups.row_flags):
            if flag.matches(rec["input_file"], rec["input_row_id"], row["chip"], row["runtime"]):
                row["_reasons"].append(f"{flag.exclude_reason} ({flag.note})")
                used_flags.add(number)
        if not row["source_url"]:
            raise DataError(rec["input_file"], "source_url", rec["input_row_id"], "row has no URL")
        rows.append(row)
    for number, flag in enumerate(lookups.row_flags):
        if number not in used_flags:
            raise DataError("row_flags.csv", "input_row_id", flag.input_row_id, "matches no row")
    ids = [r["row_id"] for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise DataError("published_runs.csv", "row_id", dup, "row id is not unique")
    _mark_duplicates(rows)
    for row in rows:
        # "; " separates reasons, so a reason never contains it.
        row["exclude_reason"] = "; ".join(r.replace("; ", ", ") for r in row.pop("_reasons"))
        row.pop("_index")
        row.pop("_tps_raw")
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.sort_values("row_id", kind="stable", key=_row_sort_key).reset_index(drop=True)


def _row_sort_key(ids: pd.Series) -> pd.Series:
    """Natural order: 'lc4167-9' before 'lc4167-10'."""
    return ids.map(lambda s: tuple((int(p) if p.isdigit() else p) for p in re.split(r"(\d+)", s)))


def render_csv(frame: pd.DataFrame) -> str:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue()
