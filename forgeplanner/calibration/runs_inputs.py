"""Read the per-source input tables into one frame with the staging columns.

Six inputs were gathered in the staging schema (one row = one measured number, every row with
the URL that finds it again). Three older tables that shipped with the speed calibration (the
#4167 summary in wide form, the "other" calibration runs, the held-out runs) have their own
layouts; an adapter per table turns them into the same columns, so every published number
goes through one normalisation.

Each row keeps `input_file` and `input_row_id`, so a dataset row can be traced back to the
exact input line it came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from forgeplanner.errors import DataError

# The staging schema, in order.
STAGING_COLUMNS: tuple[str, ...] = (
    "row_id",
    "machine",
    "chip",
    "gpu_cores",
    "memory_gb",
    "runtime",
    "runtime_version",
    "engine",
    "flash_attention",
    "model_name",
    "hf_repo",
    "params_b",
    "model_size_gib",
    "quant",
    "test",
    "kind",
    "depth",
    "prompt_tokens",
    "gen_tokens",
    "batch",
    "threads",
    "tokens_per_s",
    "tps_stddev",
    "date",
    "source_url",
    "source_title",
    "source_kind",
    "source_quality",
    "notes",
)

# Columns an adapter may add on top of the staging schema.
HINT_COLUMNS: tuple[str, ...] = ("model_id_hint", "exclude_hint")

RAW_COLUMNS: tuple[str, ...] = ("input_file", "input_row_id", *STAGING_COLUMNS, *HINT_COLUMNS)


def read_table(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    """A CSV as strings (empty cells stay ''), with its required columns checked."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataError(path.name, "(file)", str(path.name), f"cannot be read: {exc}") from exc
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise DataError(path.name, missing[0], "", "required column is missing")
    return frame


def _staging(path: Path) -> pd.DataFrame:
    frame = read_table(path, STAGING_COLUMNS)
    out = frame[list(STAGING_COLUMNS)].copy()
    out.insert(0, "input_row_id", frame["row_id"])
    for col in HINT_COLUMNS:
        out[col] = ""
    return out


_URL = re.compile(r"https?://[^\s,;)]+")
# "owner/repo README.md @sha" (no URL printed): the file at that commit on GitHub.
_REPO_FILE_AT = re.compile(r"^([\w.-]+/[\w.-]+) ([\w./-]+) @([0-9a-f]{7,40})\b")


# llama.cpp's own M2 Ultra benchmark file, added in PR #19359 (the commit the file was read at).
_MAC_M2_ULTRA_BENCH = (
    "https://github.com/ggml-org/llama.cpp/blob/3795cc1e89e16fbc145f8a5457ea30abd86e0d1d/"
    "benches/mac-m2-ultra/mac-m2-ultra.md"
)

# mlx-lm's benchmark table (added in mlx-lm PR #552), at the commit the table was read at.
_MLX_LM_BENCHMARKS = (
    "https://github.com/ml-explore/mlx-lm/blob/a4c64703906f709a493341508ac31af4085d2638/"
    "mlx_lm/BENCHMARKS.md"
)


def _url_of(source: str) -> str:
    """The URL a legacy `source` text names, or the page or repo file it cites."""
    found = _URL.search(source)
    if found:
        return found.group(0).rstrip(".")
    at = _REPO_FILE_AT.match(source)
    if at:
        repo, path, commit = at.groups()
        return f"https://github.com/{repo}/blob/{commit}/{path}"
    if "benches/mac-m2-ultra" in source or "quoting llama.cpp benches/" in source:
        return _MAC_M2_ULTRA_BENCH
    if "mlx_lm/BENCHMARKS.md" in source:
        return _MLX_LM_BENCHMARKS
    if m := re.search(r"ggml-org/llama\.cpp discussion #(\d+)", source):
        return f"https://github.com/ggml-org/llama.cpp/discussions/{m.group(1)}"
    if m := re.search(r"\b(medium\.com/[^\s,;]+)", source):
        return f"https://{m.group(1)}"
    return ""


def _quality(text: str) -> str:
    """'medium-high: ...' -> 'medium': the staging grades are high | medium | low."""
    head = text.strip().lower()
    for grade in ("high", "medium", "low"):
        if head.startswith(grade):
            return grade
    return ""


def _legacy_4167_wide(path: Path) -> pd.DataFrame:
    """The #4167 summary table, one line per chip bin with six numbers, as six rows."""
    value_cols = {
        "f16_pp512_tps": ("F16", "pp512"),
        "f16_tg128_tps": ("F16", "tg128"),
        "q8_0_pp512_tps": ("Q8_0", "pp512"),
        "q8_0_tg128_tps": ("Q8_0", "tg128"),
        "q4_0_pp512_tps": ("Q4_0", "pp512"),
        "q4_0_tg128_tps": ("Q4_0", "tg128"),
    }
    frame = read_table(path, ("chip", "gpu_cores", "backend", "model", "source", *value_cols))
    rows = []
    for line, rec in enumerate(frame.to_dict("records"), start=2):
        for col, (quant, test) in value_cols.items():
            if not rec[col]:
                continue
            kind = "prefill" if test.startswith("pp") else "decode"
            rows.append(
                {
                    "input_row_id": f"line{line}:{col}",
                    "row_id": "",
                    "chip": rec["chip"],
                    "gpu_cores": rec["gpu_cores"],
                    "runtime": "llama.cpp",
                    # The table header names this reference build; later rows may be newer.
                    "runtime_version": "8e672ef",
                    "engine": rec["backend"],
                    "model_name": f"{rec['model']} {quant}",
                    "quant": quant,
                    "test": test,
                    "kind": kind,
                    "depth": "0",
                    "prompt_tokens": "512" if kind == "prefill" else "",
                    "gen_tokens": "128" if kind == "decode" else "",
                    "tokens_per_s": rec[col],
                    "source_url": _url_of(rec["source"]),
                    "source_title": "Performance of llama.cpp on Apple Silicon M-series (summary)",
                    "source_kind": "github-discussion",
                    "source_quality": _quality(rec.get("source_quality", "")),
                    "notes": "; ".join(
                        x for x in (rec.get("build_note", ""), rec.get("notes", "")) if x
                    ),
                }
            )
    return pd.DataFrame(rows)


# Legacy "framework" labels -> runtime, engine and flash attention.
_FRAMEWORKS: dict[str, tuple[str, str, str]] = {
    "llama.cpp (Metal)": ("llama.cpp", "Metal", ""),
    "llama.cpp (Metal) fa=1": ("llama.cpp", "Metal", "1"),
    "llama.cpp batched-bench": ("llama.cpp", "Metal", ""),
    "Ollama": ("ollama", "", ""),
    "MLX": ("mlx", "", ""),
    "ds4 (Metal)": ("other:ds4", "Metal", ""),
    "LM Studio / MLX": ("lmstudio-mlx", "", ""),
    "LM Studio / llama.cpp": ("lmstudio-gguf", "", ""),
    "oMLX (MLX + SSD KV cache)": ("other:omlx", "", ""),
}

# A legacy test label that names its kind; anything else is read from pp/tg prefixes.
_LEGACY_KIND = re.compile(r"\b(tg|decode|eval rate|avg eval|gen(eration)?)\b|\btg\d|\bQ4 tg|F16 tg")


def _legacy_kind(test: str) -> str:
    low = test.lower()
    if "prompt eval" in low or "prefill" in low or re.search(r"\bpp\d*\b|\bpp$| pp\b", low):
        return "prefill"
    if _LEGACY_KIND.search(low) or low.startswith("tg"):
        return "decode"
    return ""


def _legacy_other(path: Path) -> pd.DataFrame:
    frame = read_table(
        path,
        ("machine", "chip", "gpu_cores", "memory_gb", "framework", "model", "quant", "test"),
    )
    rows = []
    for line, rec in enumerate(frame.to_dict("records"), start=2):
        framework = rec["framework"]
        if framework not in _FRAMEWORKS:
            raise DataError(path.name, "framework", framework, "unknown framework label")
        runtime, engine, fa = _FRAMEWORKS[framework]
        values = [v.strip() for v in rec["tokens_per_s"].split("/")]
        # "prefill/gen, N-token prompt" rows print both numbers as "P / G".
        kinds = ["prefill", "decode"] if len(values) == 2 else [_legacy_kind(rec["test"])]
        if len(values) > 2:
            raise DataError(path.name, "tokens_per_s", rec["tokens_per_s"], "more than two values")
        for part, (value, kind) in enumerate(zip(values, kinds, strict=True)):
            test = rec["test"]
            depth = ""
            prompt = ""
            if m := re.fullmatch(r"(pp|tg)(\d+)", test):
                depth = "0"
                if m.group(1) == "pp":
                    prompt = m.group(2)
            if m := re.search(r"(\d+)-token prompt", test):
                prompt = m.group(1)
                depth = "0" if kind == "prefill" else m.group(1)
            if m := re.search(r"@(\d+) ctx", test):
                depth = m.group(1)
            batch = ""
            if m := re.search(r"batch (\d+) aggregate", test):
                batch = m.group(1)
            rows.append(
                {
                    "input_row_id": f"line{line}" + (f":{kind}" if len(values) == 2 else ""),
                    "row_id": "",
                    "machine": rec["machine"],
                    "chip": re.sub(r"\s*\(.*\)$", "", rec["chip"]).strip(),
                    "gpu_cores": rec["gpu_cores"],
                    "memory_gb": rec["memory_gb"],
                    "runtime": runtime,
                    "engine": engine,
                    "flash_attention": fa,
                    "model_name": rec["model"],
                    "quant": rec["quant"],
                    "test": test if len(values) == 1 else f"{test} ({kind}, value {part + 1})",
                    "kind": kind,
                    "depth": depth,
                    "prompt_tokens": prompt,
                    "batch": batch,
                    "tokens_per_s": value,
                    "date": rec.get("date", "").rstrip("?"),
                    "source_url": _url_of(rec.get("source", "")),
                    "source_title": rec.get("source", "")[:120],
                    "source_kind": "",
                    "source_quality": _quality(rec.get("source_quality", "")),
                    "notes": "; ".join(
                        x
                        for x in (
                            rec.get("notes", ""),
                            f"framework '{framework}'",
                            f"as cited: {rec.get('source', '')}",
                        )
                        if x
                    ),
                }
            )
    return pd.DataFrame(rows)


def _heldout_date(date: str, chip: str) -> str:
    """'2025-12 (M3 Ultra) / not stated (M4)' -> the date of the row's own chip."""
    m = re.fullmatch(r"(\S+) \(([^)]+)\) / not stated \(([^)]+)\)", date)
    if not m:
        return date
    return m.group(1) if chip == m.group(2) else ""


def _legacy_heldout(path: Path) -> pd.DataFrame:
    frame = read_table(
        path,
        ("row_id", "chip", "runtime", "model_name", "model_id", "quant", "test", "kind"),
    )
    rows = []
    for rec in frame.to_dict("records"):
        quant = rec["quant"]
        if "quantization = Ollama library default tag" in rec["notes"]:
            # The table's convention, not the source's statement.
            quant = "not stated (the first held-out table assumed the Ollama default tag)"
        rows.append(
            {
                "input_row_id": rec["row_id"],
                "row_id": "",
                "machine": rec["machine"],
                "chip": rec["chip"],
                "gpu_cores": rec["gpu_cores"],
                "memory_gb": rec["memory_gb"],
                "runtime": rec["runtime"],
                "runtime_version": rec["build"],
                "engine": "Metal" if "(Metal)" in rec["framework"] else "",
                "flash_attention": rec["flash_attention"],
                "model_name": rec["model_name"],
                "quant": quant,
                "test": rec["test"],
                "kind": rec["kind"],
                "depth": rec["depth"],
                "prompt_tokens": rec["prompt_tokens"],
                "tokens_per_s": rec["tokens_per_s"],
                "date": _heldout_date(rec["date"], rec["chip"]),
                "source_url": _url_of(rec["source"]),
                "source_title": rec["source"][:120],
                "source_kind": "",
                "source_quality": _quality(rec["source_quality"]),
                "notes": "; ".join(
                    x
                    for x in (
                        rec["notes"],
                        f"framework '{rec['framework']}'",
                        f"as cited: {rec['source']}",
                    )
                    if x
                ),
                "model_id_hint": rec["model_id"],
                "exclude_hint": rec["exclude_reason"],
            }
        )
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class InputTable:
    """One input file, how to read it, and its rank when copies of a number meet."""

    file: str
    reader: Callable[[Path], pd.DataFrame]
    # Lower wins when the same number appears in several inputs with equal quality.
    rank: int
    description: str


INPUT_TABLES: tuple[InputTable, ...] = (
    InputTable(
        "lc4167.csv",
        _staging,
        10,
        "llama.cpp discussion #4167 and other official llama.cpp Apple Silicon tables",
    ),
    InputTable("llamacpp_issues_prs.csv", _staging, 20, "llama.cpp issues and pull requests"),
    InputTable("mlx.csv", _staging, 30, "MLX (mlx-lm and MLX-based engines)"),
    InputTable("ollama_lmstudio_blogs.csv", _staging, 40, "Ollama, LM Studio and blog posts"),
    InputTable("peer_projects.csv", _staging, 50, "peer projects and community benchmark repos"),
    InputTable("intel_cpu.csv", _staging, 60, "Intel CPU runs (the CPUs of Intel Mac minis)"),
    InputTable(
        "repo_calibration_llamacpp_4167.csv",
        _legacy_4167_wide,
        70,
        "the first speed calibration's #4167 summary (wide)",
    ),
    InputTable(
        "repo_calibration_other.csv", _legacy_other, 80, "the first speed calibration's other runs"
    ),
    InputTable("repo_heldout.csv", _legacy_heldout, 90, "the first held-out speed validation set"),
)


def read_inputs(sources_dir: Path) -> pd.DataFrame:
    """Every input row, in input order, with the staging columns plus input_file/row ids."""
    frames = []
    for table in INPUT_TABLES:
        path = sources_dir / table.file
        if not path.is_file():
            raise DataError(table.file, "(file)", str(table.file), "input file is missing")
        frame = table.reader(path)
        if frame.empty:
            raise DataError(table.file, "(rows)", 0, "input file has no rows")
        frame.insert(0, "input_file", table.file)
        frames.append(frame.reindex(columns=list(RAW_COLUMNS), fill_value=""))
    # Plain Python strings: the rows are walked one by one afterwards.
    out = pd.concat(frames, ignore_index=True).fillna("").astype(object)
    key = out["input_file"] + "#" + out["input_row_id"]
    dup = key[key.duplicated()]
    if not dup.empty:
        file, row = dup.iloc[0].split("#", 1)
        raise DataError(file, "row_id", row, "row id is not unique in its file")
    return out
