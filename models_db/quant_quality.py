"""What a quantization costs in quality, from published measurements (data/quant_quality.toml).

`quality_of("Q4_K_M")` gives the published perplexity and KL-divergence deltas against the
16-bit model with their source; a type without published figures (the MLX quantizations)
gives a `QuantQuality` whose figures are None, shown as unknown, never guessed.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from pathlib import Path

DATA = Path(__file__).with_name("data") / "quant_quality.toml"


@dataclass(frozen=True, slots=True)
class QuantQuality:
    quant: str
    ppl_delta: float | None  # mean perplexity increase over FP16 (absolute)
    ppl_delta_pct: float | None  # the same, in percent of FP16's perplexity
    kld: float | None  # mean KL divergence from FP16's token distribution
    note: str
    source: str
    as_of: str
    measured_on: str

    @property
    def known(self) -> bool:
        return self.ppl_delta is not None

    def summary(self) -> str:
        """ "+2.8 % perplexity, KLD 0.031" or "unknown (no published figures)"."""
        if self.ppl_delta is None or self.ppl_delta_pct is None or self.kld is None:
            return "unknown (no published figures for this type)"
        if self.ppl_delta == 0 and self.kld == 0:
            return "none (reference precision)"
        return f"+{self.ppl_delta_pct:.1f} % perplexity, KLD {self.kld:.3f}"


@functools.cache
def _table() -> tuple[dict[str, object], dict[str, dict[str, object]]]:
    with DATA.open("rb") as f:
        doc = tomllib.load(f)
    return doc["meta"], {k.upper(): v for k, v in doc["quant"].items()}


def low_bits_threshold() -> float:
    """Bits per weight below which a quantization gets a quality warning."""
    return float(_table()[0]["low_bits_warning"])  # type: ignore[arg-type]


def quality_of(quant: str) -> QuantQuality:
    meta, rows = _table()
    row = rows.get(quant.upper())
    source, as_of, on = str(meta["source"]), str(meta["as_of"]), str(meta["measured_on"])
    if row is None:
        return QuantQuality(quant, None, None, None, "", source, as_of, on)
    ppl = float(row["ppl_delta"])  # type: ignore[arg-type]
    base = float(meta["fp16_ppl"])  # type: ignore[arg-type]
    return QuantQuality(
        quant,
        ppl,
        100.0 * ppl / base,
        float(row["kld"]),  # type: ignore[arg-type]
        str(row.get("note", "")),
        source,
        as_of,
        on,
    )


def low_bits_warning(quant: str, bits_per_weight: float) -> str | None:
    """One line when a quantization has fewer bits per weight than the warning threshold."""
    limit = low_bits_threshold()
    if bits_per_weight >= limit:
        return None
    q = quality_of(quant)
    cost = f" (published cost on an 8B model: {q.summary()})" if q.known else ""
    return (
        f"{quant} keeps {bits_per_weight:g} bits per weight, below {limit:g}: answers get "
        f"noticeably worse{cost}"
    )


__all__ = ["QuantQuality", "low_bits_threshold", "low_bits_warning", "quality_of"]
