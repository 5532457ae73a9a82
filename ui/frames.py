"""Prepared tables for the views: catalog and model database -> pandas DataFrames.

Qt-free on purpose: each frame is built once (in a worker thread when it is slow) and handed
to a `DataFrameTableModel`. Raw values only (bytes as ints, prices as floats, None when the
catalog says unknown); formatting is the table's job. Prices come from the purchase planner's
price engine (`forgeplanner.engine.prices`), never computed here.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import pandas as pd

from forgeplanner.domain.provenance import Figure


def today() -> str:
    return _dt.date.today().isoformat()


def _v(fig: Figure | None) -> Any:
    return None if fig is None else fig.value


def hardware_frame(cat: Any, day: str | None = None) -> pd.DataFrame:
    """One row per machine configuration of the catalog."""
    from forgeplanner.engine import prices as px

    day = day or today()
    obs = list(cat.price_observations)
    fit = px.fit_depreciation(cat.configs, obs, cat.chips)
    rows: list[dict[str, Any]] = []
    for cfg in cat.configs.values():
        chip = cat.chips.get(cfg.chip_id)
        new = px.new_price(cfg, day, obs, fit)
        used = px.used_price(cfg, obs, day, fit)
        bw = _v(chip.mem_bandwidth_gbps) if chip else None
        gpu = chip.gpu_cores if chip else None
        mem = cfg.memory_gb
        rows.append(
            {
                "id": cfg.id,
                "machine": cfg.machine,
                "kind": cfg.kind,
                "chip": _chip_label(chip),
                "apple_silicon": bool(chip and chip.is_apple_silicon),
                "year": cfg.year,
                "memory_gb": mem,
                "storage_gb": cfg.storage_gb,
                "gpu_cores": gpu or None,
                "bandwidth_gbps": bw,
                "price_new_usd": new.price_usd,
                "price_new_basis": new.label,
                "price_used_usd": used.price_usd,
                "price_used_basis": used.label,
                "price_used_detail": used.detail,
                "usd_per_gb_new": None if new.price_usd is None else new.price_usd / mem,
                "usd_per_gb_used": None if used.price_usd is None else used.price_usd / mem,
                "idle_w": _v(cfg.idle_w),
                "max_w": _v(cfg.max_w),
                "idle_btu_h": _v(cfg.idle_btu_h),
                "max_btu_h": _v(cfg.max_btu_h),
                "thunderbolt": f"{cfg.thunderbolt} x{cfg.thunderbolt_ports or '?'}",
                "ethernet": "/".join(f"{g}" for g in cfg.ethernet_gbps) + " GbE",
                "withdrawn": cfg.withdrawn,
            }
        )
    return pd.DataFrame(rows)


def _chip_label(chip: Any) -> str | None:
    if chip is None:
        return None
    if chip.gpu_cores:
        return f"{chip.name} {chip.gpu_cores}c GPU"
    return chip.name


def figure_rows(cat: Any, config_id: str, day: str | None = None) -> list[dict[str, Any]]:
    """Every figure behind one configuration, for the detail panel: name, value, unit,
    source, as-of, note (reason / caveat / derivation)."""
    from forgeplanner.engine import prices as px

    cfg = cat.configs[config_id]
    chip = cat.chips.get(cfg.chip_id)
    out: list[dict[str, Any]] = []

    def add(name: str, fig: Figure | None, unit: str = "") -> None:
        if fig is None:
            return
        note = "; ".join(x for x in (fig.derived and f"derived: {fig.derived}", fig.reason) if x)
        out.append(
            {
                "name": name,
                "value": fig.value,
                "unit": unit,
                "source": fig.source,
                "as_of": fig.as_of,
                "note": note,
            }
        )

    add("Launch price", cfg.launch_price_usd, "USD")
    add("Idle power", cfg.idle_w, "W")
    add("Max power", cfg.max_w, "W")
    add("Idle heat", cfg.idle_btu_h, "BTU/h")
    add("Max heat", cfg.max_btu_h, "BTU/h")
    for key, fig in sorted(cfg.extra.items()):
        add(key.replace("_", " "), fig)
    if chip is not None:
        add("Memory bandwidth", chip.mem_bandwidth_gbps, "GB/s")
        add("GPU FP32", chip.gpu_fp32_tflops, "TFLOPS")
        add("CPU cores", chip.cpu_cores)
        add("CPU performance cores", chip.cpu_p_cores)
        add("CPU efficiency cores", chip.cpu_e_cores)
        add("Neural Engine cores", chip.neural_engine_cores)
        add("Neural Engine", chip.neural_engine_tops, "TOPS")
    obs = list(cat.price_observations)
    fit = px.fit_depreciation(cat.configs, obs, cat.chips)
    for label, basis in (
        ("Price new", px.new_price(cfg, day or today(), obs, fit)),
        ("Price used", px.used_price(cfg, obs, day or today(), fit)),
    ):
        out.append(
            {
                "name": label,
                "value": basis.price_usd,
                "unit": "USD",
                "source": basis.label,
                "as_of": basis.date_to,
                "note": basis.detail if basis.price_usd is None or basis.basis != "list" else "",
            }
        )
    return out


def models_frame(models: list[Any]) -> pd.DataFrame:
    """One row per model (catalog and user-imported)."""
    rows = []
    for m in models:
        rows.append(
            {
                "id": m.id,
                "name": m.name,
                "family": m.family,
                "params_b": m.params_total / 1e9 if m.params_total else None,
                # Dense models read all but the input embedding per token (ModelSpec rule).
                "active_b": m.active_params / 1e9 if m.params_total else None,
                "moe": m.moe is not None,
                "experts": (
                    f"{m.moe.experts_per_token}/{m.moe.n_experts}" if m.moe is not None else ""
                ),
                "layers": m.n_layers,
                "max_context": m.max_context or None,
                "attention": m.attention.kind,
                "license": short_licence(m.license),
                "license_full": m.license or None,
                "origin": m.origin,
                "source": m.source,
                "formats": ", ".join(m.formats),
            }
        )
    return pd.DataFrame(rows)


def short_licence(text: str | None) -> str | None:
    """'Apache-2.0 (QwenLM README: ...)' -> 'Apache-2.0': the name without the citation."""
    if not text:
        return None
    return text.split(" (", 1)[0].strip() or None
