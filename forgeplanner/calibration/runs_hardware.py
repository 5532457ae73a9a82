"""Chip, GPU cores, memory and machine of a published run, normalised.

The GPU-core bin is filled only when it is unambiguous: stated by the source, or the only bin
of that chip sold in that machine or with that memory size (chip_bins.csv, which lists every
bin with the products and memory sizes it was sold with). It is never guessed between bins;
`gpu_cores_basis` says which of these applied.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from forgeplanner.calibration.runs_lookups import Lookups

GENERATIONS = ("M1", "M2", "M3", "M4", "M5")
TIERS = ("", "Pro", "Max", "Ultra")
APPLE_CHIPS = tuple(f"{g} {t}".strip() for g in GENERATIONS for t in TIERS)

# Product families, longest first so "MacBook Pro" wins over "MacBook".
PRODUCTS = ("MacBook Air", "MacBook Pro", "Mac mini", "Mac Studio", "Mac Pro", "iMac", "MacBook")


@dataclass(frozen=True)
class Hardware:
    chip: str
    chip_generation: str
    chip_tier: str
    gpu_cores: int | None
    gpu_cores_basis: str
    memory_gb: int | None
    machine: str
    product: str
    # Peak memory bandwidth of the bin, or the highest of the chip's bins when the bin is
    # unknown: an upper bound for the plausibility check of decode rates.
    bandwidth_max_gbps: float | None
    chip_announced: str


def chip_name(raw: str) -> str:
    """'Apple M3 Max' / 'm3 max' -> 'M3 Max'; Intel CPUs keep their name; unknown -> ''."""
    text = re.sub(r"\s+", " ", raw.replace("Apple", "")).strip()
    if text.lower().startswith("intel"):
        return text
    m = re.fullmatch(r"(?i)(m[1-5])(?: (pro|max|ultra))?", text)
    if not m:
        return ""
    gen = m.group(1).upper()
    tier = (m.group(2) or "").capitalize()
    return f"{gen} {tier}".strip()


def product_of(machine: str) -> str:
    for product in PRODUCTS:
        if product.lower() in machine.lower():
            return product
    return ""


def _int(text: str) -> int | None:
    return int(text) if text.strip().isdigit() else None


def normalise_hardware(raw: dict[str, str], lookups: Lookups) -> Hardware:
    chip = chip_name(raw["chip"])
    apple = chip in APPLE_CHIPS
    gen, _, tier = chip.partition(" ") if apple else ("Intel" if chip else "", "", "")
    machine = raw["machine"].strip()
    product = product_of(machine)
    memory = _int(raw["memory_gb"])
    stated = _int(raw["gpu_cores"])
    bins = lookups.bins_of(chip) if apple else []
    cores: int | None = None
    basis = ""
    if stated is not None and apple:
        known = {b.gpu_cores for b in bins}
        cores = stated
        basis = "stated" if stated in known else f"stated ({stated} is not a known bin of {chip})"
    elif apple and bins:
        candidates = bins
        why = []
        if product:
            by_product = [b for b in candidates if b.product == product]
            if by_product:
                candidates = by_product
                why.append(f"{chip} {product}")
        if memory is not None:
            by_memory = [b for b in candidates if memory in b.memory_gb | b.memory_gb_unconfirmed]
            if by_memory:
                candidates = by_memory
                why.append(f"{memory} GB")
        core_set = sorted({b.gpu_cores for b in candidates})
        if len(core_set) == 1 and why:
            cores = core_set[0]
            basis = "only bin sold as " + ", ".join(why)
        else:
            basis = "unknown (bins " + "/".join(str(c) for c in core_set) + ")"
    speeds = [
        b.bandwidth_gbps
        for b in bins
        if b.bandwidth_gbps is not None and (cores is None or b.gpu_cores == cores)
    ]
    bandwidth = max(speeds) if speeds else None
    return Hardware(
        chip=chip,
        chip_generation=gen,
        chip_tier=tier,
        gpu_cores=cores,
        gpu_cores_basis=basis,
        memory_gb=memory,
        machine=machine,
        product=product,
        bandwidth_max_gbps=bandwidth,
        chip_announced=min((b.chip_announced for b in bins if b.chip_announced), default=""),
    )
