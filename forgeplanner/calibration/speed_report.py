"""Fit the speed model on every published run, cross-validate it, and write the results.

    python -m forgeplanner.calibration.speed_report [--check] [--skip-cv]

Writes (each file says it is generated):
  forgeplanner/engine/speed_constants.py        the coefficients per runtime and era, the likely
                                                 ranges (bands) and the cross-validated errors
  forgeplanner/calibration/data/published_index.json
                                                 the usable runs, compact, for the "published
                                                 runs beside the estimate" look-up
  docs/speed-validation.md                       what was fitted on what, and the errors on runs
                                                 the fit never saw, by source and by generation
`--check` exits 1 when the constants in the repository differ from a fresh fit (no CV run).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from forgeplanner.calibration import observations as obs_mod
from forgeplanner.calibration.fit import fit_all
from forgeplanner.calibration.generated import ruff_format
from forgeplanner.calibration.observations import Observation
from forgeplanner.calibration.validate import (
    Held,
    bands,
    by,
    cross_validate,
    in_sample,
    summarise,
)
from forgeplanner.engine.speed import RuntimeConstants

REPO = Path(__file__).resolve().parents[2]
CONSTANTS_PY = REPO / "forgeplanner" / "engine" / "speed_constants.py"
INDEX_JSON = obs_mod.DATA / "published_index.json"
DOC_MD = REPO / "docs" / "speed-validation.md"


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _pystr(text: str, indent: int) -> str:
    """A string literal that fits in 100 columns: implicit concatenation in parentheses."""
    lit = repr(text)
    if len(lit) + indent < 90:
        return lit
    import textwrap

    pad = " " * (indent + 4)
    parts = textwrap.wrap(text, 100 - len(pad) - 4, drop_whitespace=False)
    body = "\n".join(f"{pad}{p!r}" for p in parts)
    return "(\n" + body + "\n" + " " * indent + ")"


def _fmt_table(name: str, c: RuntimeConstants) -> str:
    def mapping(m) -> str:
        items = ",\n".join(f"            {k!r}: {float(v)!r}" for k, v in sorted(m.items()))
        return "{\n" + items + ",\n        }" if m else "{}"

    return (
        f"    {name!r}: RuntimeConstants(\n"
        f"        decode={mapping(c.decode)},\n"
        f"        prefill={mapping(c.prefill)},\n"
        f"        uses_neural_accelerators={c.uses_neural_accelerators!r},\n"
        f"        note={_pystr(c.note, 8)},\n"
        f"        passive_cooling={dict(sorted(c.passive_cooling.items()))!r},\n"
        f"    ),\n"
    )


def constants_source(
    runtimes: dict[str, RuntimeConstants],
    fit_date: str,
    basis: str,
    errors: dict[str, float],
    band_table: dict[str, tuple[float, float, int]],
) -> str:
    body = "".join(_fmt_table(k, runtimes[k]) for k in sorted(runtimes))
    errs = "".join(f"    {k!r}: {v!r},\n" for k, v in sorted(errors.items()))
    bnds = "".join(f"    {k!r}: {tuple(v)!r},\n" for k, v in sorted(band_table.items()))
    return (
        '"""Fitted speed constants. GENERATED FILE - do not edit by hand.\n\n'
        "Regenerate with:  .venv/bin/python -m forgeplanner.calibration.speed_report\n"
        f"{basis}\n"
        "Formulas: forgeplanner/engine/speed.py; fit: forgeplanner/calibration/fit.py; errors on\n"
        'runs the fit never saw: docs/speed-validation.md.\n"""\n\n'
        "from forgeplanner.engine.speed import RuntimeConstants, SpeedConstants\n\n"
        f"FIT_DATE = {fit_date!r}\n\n"
        f"FIT_ERRORS: dict[str, float] = {{\n{errs}}}\n\n"
        "# Likely ranges: tokens/s multipliers to the 10th and 90th percentile of what held-out\n"
        "# published runs of the group measured, and how many runs the group had.\n"
        f"BANDS: dict[str, tuple[float, float, int]] = {{\n{bnds}}}\n\n"
        f"RUNTIMES: dict[str, RuntimeConstants] = {{\n{body}}}\n\n"
        "CONSTANTS = SpeedConstants(\n"
        "    runtimes=RUNTIMES,\n"
        "    fit_date=FIT_DATE,\n"
        f"    basis={_pystr(basis.splitlines()[0], 4)},\n"
        "    errors=FIT_ERRORS,\n"
        "    bands=BANDS,\n"
        ")\n"
    )


def index_rows(obs: Sequence[Observation], rows: dict[str, dict[str, str]]) -> list[dict]:
    out = []
    for o in obs:
        r = rows.get(o.row_id, {})
        out.append(
            {
                "id": o.row_id,
                "chip": o.chip,
                "gpu_cores": r.get("gpu_cores") or None,
                "generation": o.generation,
                "machine": r.get("machine") or None,
                "runtime": o.runtime,
                "version": r.get("runtime_version") or None,
                "kind": o.kind,
                "model": o.model_id,
                "params_b": round(o.params_b, 3),
                "moe": o.moe,
                "quant": o.quant,
                "test": r.get("test") or None,
                "depth": o.depth,
                "prompt": o.prompt_tokens,
                "tps": o.measured_tps,
                "date": o.date or None,
                "url": o.url,
                "title": r.get("source_title") or None,
            }
        )
    return out


def _pct(x: float) -> str:
    return f"{x:.1f}"


def _table(title: str, summaries: dict[str, object], head: str) -> list[str]:
    lines = [f"### {title}", "", f"| {head} | runs | MAPE % | median % | bias % |"]
    lines.append("|---|---|---|---|---|")
    for k, s in summaries.items():
        lines.append(f"| {k} | {s.row()} |")  # type: ignore[attr-defined]
    lines.append("")
    return lines


def report_md(
    obs: Sequence[Observation],
    unused: Sequence[tuple[str, str]],
    loso: Sequence[Held],
    logo: Sequence[Held],
    insample: Sequence[Held],
    fit_date: str,
    n_rows: int,
) -> str:
    rt_kind = lambda o: f"{o.runtime} {o.kind}"  # noqa: E731
    L: list[str] = []
    L += [
        "# Speed estimates against published runs",
        "",
        "GENERATED by `.venv/bin/python -m forgeplanner.calibration.speed_report` "
        f"(fit {fit_date}); do not edit by hand.",
        "",
        "The speed model (forgeplanner/engine/speed.py) is fitted on every usable run in",
        "[published-runs.md](published-runs.md)'s dataset. Every error on this page is on runs",
        "the fit did not see: **leave one source out** holds out all runs of a page or",
        "repository at once (a source is one person's machines, settings and builds), **leave",
        "one generation out** all runs of a chip generation. Error = estimate / measured - 1;",
        "MAPE = mean |error|, bias > 0 = the estimate is too fast. In-sample errors are shown",
        "last, for comparison only.",
        "",
        "## What was fitted",
        "",
        f"{n_rows} rows in the dataset; {len(obs)} usable by the model, {len(unused)} not. Why "
        "rows were not used (counts):",
        "",
        "| reason | rows |",
        "|---|---|",
    ]
    reasons = Counter(_reason_class(r) for _, r in unused)
    for k, v in reasons.most_common():
        L.append(f"| {k} | {v} |")
    L += ["", "Usable runs by runtime and kind:", "", "| runtime, kind | runs |", "|---|---|"]
    for k, v in sorted(Counter(rt_kind(o) for o in obs).items()):
        L.append(f"| {k} | {v} |")
    L += [""]
    L += ["## Leave one source out", ""]
    L += _table("By runtime and kind", by(loso, rt_kind), "runtime, kind")
    L += _table(
        "By runtime, kind and dense/MoE",
        by(loso, lambda o: f"{o.runtime} {o.kind} {'MoE' if o.moe else 'dense'}"),
        "group",
    )
    L += _table(
        "By kind and context depth (short < 2K <= mid < 16K <= long)",
        by(loso, lambda o: f"{o.kind} {o.depth_band}"),
        "kind, depth",
    )
    L += _table("By kind and chip generation", by(loso, lambda o: f"{o.kind} {o.generation}"),
                "kind, generation")  # fmt: skip
    L += _table(
        "By kind and runtime era",
        by(loso, lambda o: f"{o.runtime} {o.kind} era {o.era or '-'}"),
        "runtime, kind, era",
    )
    L += _table(
        "Recent hardware (M3, M4, M5; runs dated 2024 or later)",
        by([h for h in loso if h.obs.generation in ("M3", "M4", "M5") and h.obs.date >= "2024"],
           rt_kind),
        "runtime, kind",
    )  # fmt: skip
    L += _table(
        "By source (each held out in turn)",
        dict(sorted(by(loso, lambda o: f"{o.source} ({o.kind})").items(), key=lambda kv: -kv[1].n)),
        "source",
    )  # fmt: skip
    L += ["## Leave one chip generation out", ""]
    by_gen = by(logo, lambda o: f"{o.generation} {o.runtime} {o.kind}")
    L += _table("By runtime, kind and held-out generation", by_gen, "generation, group")
    L += ["## In sample (for comparison only)", ""]
    L += _table("By runtime and kind", by(insample, rt_kind), "runtime, kind")
    L += [
        "## Likely ranges",
        "",
        "Every estimate shows a likely range: the 10th to 90th percentile of measured / estimated",
        "over the leave-one-source-out runs of the most specific group with at least 25 runs",
        "(runtime, kind, dense/MoE, depth band; then coarser). The groups and their factors are in",
        "forgeplanner/engine/speed_constants.py (`BANDS`).",
        "",
    ]
    return "\n".join(L)


def _reason_class(reason: str) -> str:
    r = reason.lower()
    for key, label in (
        ("dataset: duplicate of", "dataset: duplicate of another row (kept once)"),
        (
            "dataset: impossible value",
            "dataset: impossible value (beyond bandwidth, or before the chip)",
        ),
        ("dataset:", None),
        ("not mapped", "model not mapped to the database"),
        ("unknown model", "model not in the database"),
        ("quantization not stated", "quantization not stated"),
        ("unknown quantization", "quantization not modelled"),
        ("is not a", "quantization of another runtime's format"),
        ("gpu bin unknown", "GPU bin unknown"),
        ("not modelled", "runtime not modelled"),
        ("prompt length", "prefill row without a prompt length"),
        ("not in the catalog", "chip not in the catalog"),
    ):
        if key in r:
            return label or "dataset: " + reason.split(":", 1)[1].strip().split(";")[0][:60]
    return reason[:70]


def run(check: bool = False, skip_cv: bool = False) -> int:
    rows = obs_mod.read_rows()
    mapping = obs_mod.build(rows)
    obs = mapping.observations
    fit_date = _dt.date.today().isoformat()
    runtimes = fit_all(obs)
    if check:
        from forgeplanner.engine.speed_constants import RUNTIMES

        ok = set(RUNTIMES) == set(runtimes) and all(
            _close(RUNTIMES[k].decode, runtimes[k].decode)
            and _close(RUNTIMES[k].prefill, runtimes[k].prefill)
            for k in runtimes
        )
        print("speed constants are " + ("up to date" if ok else "STALE: regenerate"))
        return 0 if ok else 1
    insample = in_sample(obs)
    loso = [] if skip_cv else cross_validate(obs, lambda o: o.source)
    logo = [] if skip_cv else cross_validate(obs, lambda o: o.generation or "?")
    errors: dict[str, float] = {}
    for name, held in (("leave one source out", loso), ("leave one generation out", logo),
                       ("in sample", insample)):  # fmt: skip
        for k, s in by(held, lambda o: f"{o.runtime} {o.kind}").items():
            errors[f"{name}: {k} MAPE %"] = round(s.mape, 2)
            errors[f"{name}: {k} median %"] = round(s.median, 2)
    band_table = bands(loso) if loso else {}
    basis = (
        f"Fitted {fit_date} on {len(obs)} published runs "
        f"(forgeplanner/calibration/data/published_runs.csv)."
    )
    _atomic_write(CONSTANTS_PY, constants_source(runtimes, fit_date, basis, errors, band_table))
    ruff_format(CONSTANTS_PY)
    by_id = {r["row_id"]: r for r in rows}
    _atomic_write(INDEX_JSON, json.dumps(index_rows(obs, by_id), indent=0, sort_keys=True) + "\n")
    if not skip_cv:
        _atomic_write(DOC_MD, report_md(obs, mapping.unused, loso, logo, insample, fit_date,
                                        len(rows)))  # fmt: skip
    for k, s in by(loso or insample, lambda o: f"{o.runtime} {o.kind}").items():
        print(f"{k:24s} {s.row()}")
    return 0


def _close(a, b, rel: float = 1e-6) -> bool:
    if set(a) != set(b):
        return False
    return all(abs(a[k] - b[k]) <= rel * max(abs(a[k]), abs(b[k]), 1e-12) for k in a)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the constants are stale")
    ap.add_argument("--skip-cv", action="store_true", help="fit and write constants only")
    args = ap.parse_args(argv)
    return run(check=args.check, skip_cv=args.skip_cv)


if __name__ == "__main__":
    sys.exit(main())

__all__ = ["main", "run", "summarise"]
