"""Load and validate the hardware catalog from the reviewed TOML files in `catalog/data/`.

Read with the standard library's `tomllib` (no dependency, and TOML keeps the data diffable
and commentable). Everything is validated on load: ids unique and well-formed, references
(chips, sources, price steps, configurations) exist, units in sane ranges, every known figure
has a source and an as-of date and every unknown one a reason. A bad file raises one
`DataError` naming the file, the field and the value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog.catalog import Catalog
from catalog.types import MachineModel, MarketNote
from forgeplanner.domain.hardware import ChipSpec, MachineConfig
from forgeplanner.domain.network import LinkSpec
from forgeplanner.domain.prices import PowerMeasurement, PriceObservation
from forgeplanner.domain.provenance import Figure
from forgeplanner.errors import DataError

DATA_DIR = Path(__file__).resolve().parent / "data"

FILES = {
    "sources": "sources.toml",
    "chips": "chips.toml",
    "machines": "machines.toml",
    "network": "network.toml",
    "prices": "price_observations.toml",
    "power": "power_measurements.toml",
}

REQUIRED_LINKS = ("1gbe", "2.5gbe", "10gbe", "tb3", "tb4", "tb5", "tb5-rdma")

# 1 W = 3.412 BTU/h (the factor Apple's power pages use: 270 W -> 921 BTU/h).
BTU_PER_WATT = 3.412

_ID = re.compile(r"^[a-z0-9][a-z0-9.]*(-[a-z0-9.]+)*$")
_DATE = re.compile(r"^(19|20)\d\d(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")
_TIERS = {"base", "pro", "max", "ultra", "intel"}
_KINDS = {"mac-mini", "mac-studio"}
_THUNDERBOLT = {"TB1", "TB2", "TB3", "TB4", "TB5", "USB4"}


@dataclass(frozen=True, slots=True)
class _Source:
    cite: str
    date: str | None
    quality: str


class _File:
    """One data file being read: its path for error messages and its parsed content."""

    def __init__(self, path: Path) -> None:
        import tomllib  # here: a run served by the data cache never parses TOML

        self.path = path
        self.name = str(path)
        try:
            with path.open("rb") as fh:
                self.data: dict[str, Any] = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise DataError(self.name, "(file)", str(path), "file is missing") from exc
        except tomllib.TOMLDecodeError as exc:
            raise DataError(self.name, "(syntax)", str(exc), "not valid TOML") from exc
        except UnicodeDecodeError as exc:
            raise DataError(self.name, "(encoding)", str(exc), "not UTF-8 text") from exc

    def error(self, field: str, value: object, problem: str) -> DataError:
        return DataError(self.name, field, value, problem)

    def table_list(self, key: str) -> list[dict[str, Any]]:
        rows = self.data.get(key)
        if not isinstance(rows, list) or not rows:
            raise self.error(key, rows, f"expected a non-empty list of [[{key}]] tables")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise self.error(f"{key}[{i}]", row, "expected a table")
        return rows


# ----------------------------------------------------------------------------------- helpers


def _check_keys(f: _File, where: str, row: dict[str, Any], required: set[str], optional: set[str]):
    for key in required:
        if key not in row:
            raise f.error(f"{where}.{key}", None, "required field is missing")
    for key in row:
        if key not in required and key not in optional:
            raise f.error(f"{where}.{key}", row[key], "unexpected field (typo?)")


def _str(f: _File, where: str, value: Any, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise f.error(where, value, "expected a non-empty string")
    return value


def _int(f: _File, where: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise f.error(where, value, "expected an integer")
    if not lo <= value <= hi:
        raise f.error(where, value, f"out of range [{lo}, {hi}]")
    return value


def _num(f: _File, where: str, value: Any, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise f.error(where, value, "expected a number")
    if not lo <= float(value) <= hi:
        raise f.error(where, value, f"out of range [{lo:g}, {hi:g}]")
    return float(value)


def _date(f: _File, where: str, value: Any) -> str:
    if not isinstance(value, str) or not _DATE.match(value):
        raise f.error(where, value, "expected a date YYYY, YYYY-MM or YYYY-MM-DD")
    return value


def _slug(f: _File, where: str, value: Any) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise f.error(where, value, "expected a lowercase slug id (a-z, 0-9, '-', '.')")
    return value


def _bool(f: _File, where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise f.error(where, value, "expected true or false")
    return value


def _unique(f: _File, where: str, ids: Iterable[str]) -> None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            raise f.error(where, i, "duplicate id")
        seen.add(i)


def _latest(dates: Iterable[str | None]) -> str | None:
    # ISO-style partial dates sort correctly as strings ("2024" < "2024-10" < "2024-10-29").
    known = [d for d in dates if d]
    return max(known) if known else None


class _Sources:
    def __init__(self, f: _File) -> None:
        self.file = f
        self.by_key: dict[str, _Source] = {}
        for key, row in f.data.items():
            where = key
            _slug(f, where, key)
            if not isinstance(row, dict):
                raise f.error(where, row, "expected a [key] table with cite/date/quality")
            _check_keys(f, where, row, {"cite"}, {"date", "quality"})
            self.by_key[key] = _Source(
                cite=_str(f, f"{where}.cite", row["cite"]),
                date=_date(f, f"{where}.date", row["date"]) if "date" in row else None,
                quality=_str(f, f"{where}.quality", row.get("quality", ""), empty_ok=True),
            )

    def resolve(self, f: _File, where: str, keys: Any) -> list[_Source]:
        if not isinstance(keys, list) or not keys:
            raise f.error(where, keys, "expected a non-empty list of source keys")
        out = []
        for key in keys:
            if key not in self.by_key:
                raise f.error(where, key, f"unknown source key (not in {FILES['sources']})")
            out.append(self.by_key[key])
        return out


def _cites(sources: Iterable[_Source]) -> list[str]:
    out: list[str] = []
    for s in sources:
        if s.cite not in out:
            out.append(s.cite)
    return out


def _figure(
    f: _File,
    where: str,
    raw: Any,
    sources: _Sources,
    default_as_of: str,
    lo: float,
    hi: float,
    *,
    integer: bool = False,
    collected: list[str] | None = None,
) -> Figure:
    """A known figure `{value, src, as_of?, note?}` or an unknown one `{unknown = reason}`."""
    if not isinstance(raw, dict):
        raise f.error(where, raw, "expected a figure table {value, src} or {unknown}")
    if "unknown" in raw:
        _check_keys(f, where, raw, {"unknown"}, set())
        return Figure.unknown(_str(f, f"{where}.unknown", raw["unknown"]))
    _check_keys(f, where, raw, {"value", "src"}, {"as_of", "note"})
    if integer:
        value: float | int = _int(f, f"{where}.value", raw["value"], int(lo), int(hi))
    else:
        value = _num(f, f"{where}.value", raw["value"], lo, hi)
    srcs = sources.resolve(f, f"{where}.src", raw["src"])
    if "as_of" in raw:
        as_of = _date(f, f"{where}.as_of", raw["as_of"])
    else:
        as_of = _latest(s.date for s in srcs) or default_as_of
    if collected is not None:
        collected.extend(c for c in _cites(srcs) if c not in collected)
    note = raw.get("note")
    return Figure(
        value=value,
        source="; ".join(_cites(srcs)),
        as_of=as_of,
        reason=_str(f, f"{where}.note", note) if note is not None else None,
    )


# ------------------------------------------------------------------------------------- chips

_CHIP_FIGURES: dict[str, tuple[float, float, bool]] = {
    # field: (lo, hi, integer) - sanity ranges, not claims
    "cpu_cores": (1, 64, True),
    "cpu_p_cores": (1, 64, True),
    "cpu_e_cores": (0, 64, True),
    "mem_bandwidth_gbps": (1, 2000, False),
    "gpu_fp32_tflops": (0.1, 200, False),
    "neural_engine_cores": (1, 64, True),
    "neural_engine_tops": (1, 500, False),
}


def _load_chips(f: _File, sources: _Sources) -> dict[str, ChipSpec]:
    chips: dict[str, ChipSpec] = {}
    rows = f.table_list("chip")
    required = {
        "id",
        "name",
        "generation",
        "tier",
        "gpu_cores",
        "year",
        "ships_in",
        "memory_options_gb",
        "src",
        *_CHIP_FIGURES,
    }
    optional = {"vendor", "laptop_only", "notes", "memory"}
    for i, row in enumerate(rows):
        where = f"chip[{row.get('id', i)}]"
        _check_keys(f, where, row, required, optional)
        cid = _slug(f, f"{where}.id", row["id"])
        vendor = row.get("vendor", "apple")
        if vendor not in ("apple", "intel"):
            raise f.error(f"{where}.vendor", vendor, "expected 'apple' or 'intel'")
        tier = row["tier"]
        if tier not in _TIERS:
            raise f.error(f"{where}.tier", tier, f"expected one of {sorted(_TIERS)}")
        name = _str(f, f"{where}.name", row["name"])
        year = _int(f, f"{where}.year", row["year"], 2010, 2030)
        gpu_cores = _int(f, f"{where}.gpu_cores", row["gpu_cores"], 0, 256)
        if vendor == "apple":
            if gpu_cores == 0:
                raise f.error(f"{where}.gpu_cores", gpu_cores, "an Apple chip bin has GPU cores")
            expected = f"{name.lower().replace(' ', '-')}-{gpu_cores}c"
            if cid != expected:
                raise f.error(f"{where}.id", cid, f"Apple chip ids are name-gpucores: {expected}")
        elif not cid.startswith(f"intel-{year}-"):
            raise f.error(f"{where}.id", cid, f"Intel CPU ids start with intel-{year}-")
        mem = row["memory_options_gb"]
        if not isinstance(mem, list) or not mem:
            raise f.error(f"{where}.memory_options_gb", mem, "expected a list of GB sizes")
        mem_opts = tuple(_int(f, f"{where}.memory_options_gb", m, 1, 1024) for m in mem)
        if list(mem_opts) != sorted(set(mem_opts)):
            raise f.error(f"{where}.memory_options_gb", mem, "expected ascending, no repeats")
        row_sources = sources.resolve(f, f"{where}.src", row["src"])
        default_as_of = str(year)
        figs: dict[str, Figure] = {}
        for field, (lo, hi, integer) in _CHIP_FIGURES.items():
            raw = row[field]
            if isinstance(raw, dict) and "derive" in raw:
                figs[field] = _derived_chip_figure(
                    f, where, field, raw, row, sources, default_as_of
                )
            else:
                figs[field] = _figure(
                    f, f"{where}.{field}", raw, sources, default_as_of, lo, hi, integer=integer
                )
        _check_core_split(f, where, figs)
        if cid in chips:
            raise f.error(f"{where}.id", cid, "duplicate chip id")
        chips[cid] = ChipSpec(
            id=cid,
            name=name,
            vendor=vendor,
            generation=_str(f, f"{where}.generation", row["generation"]),
            tier=tier,
            gpu_cores=gpu_cores,
            cpu_cores=figs["cpu_cores"],
            cpu_p_cores=figs["cpu_p_cores"],
            cpu_e_cores=figs["cpu_e_cores"],
            mem_bandwidth_gbps=figs["mem_bandwidth_gbps"],
            gpu_fp32_tflops=figs["gpu_fp32_tflops"],
            memory_options_gb=mem_opts,
            neural_engine_cores=figs["neural_engine_cores"],
            neural_engine_tops=figs["neural_engine_tops"],
            year=year,
            ships_in=_str(f, f"{where}.ships_in", row["ships_in"]),
            sources=tuple(_cites(row_sources)),
            notes=_str(f, f"{where}.notes", row.get("notes", ""), empty_ok=True),
            laptop_only=_bool(f, f"{where}.laptop_only", row.get("laptop_only", False)),
        )
    return chips


def _check_core_split(f: _File, where: str, figs: dict[str, Figure]) -> None:
    total, p, e = (figs[k].value for k in ("cpu_cores", "cpu_p_cores", "cpu_e_cores"))
    if total is not None and p is not None and e is not None and p + e != total:
        raise f.error(f"{where}.cpu_cores", total, f"P ({p}) + E ({e}) cores do not add up")


def _derived_chip_figure(
    f: _File,
    where: str,
    field: str,
    raw: dict[str, Any],
    row: dict[str, Any],
    sources: _Sources,
    default_as_of: str,
) -> Figure:
    _check_keys(f, f"{where}.{field}", raw, {"derive"}, set())
    if field != "mem_bandwidth_gbps" or raw["derive"] != "ddr":
        raise f.error(f"{where}.{field}.derive", raw["derive"], "only mem_bandwidth_gbps = ddr")
    mem = row.get("memory")
    if not isinstance(mem, dict):
        raise f.error(f"{where}.memory", mem, "derive = 'ddr' needs a memory table")
    mw = f"{where}.memory"
    _check_keys(f, mw, mem, {"type", "mts", "channels", "src"}, {"note"})
    kind = _str(f, f"{mw}.type", mem["type"])
    if not kind.startswith(("DDR", "LPDDR")):
        raise f.error(f"{mw}.type", kind, "expected a DDR memory type")
    mts = _int(f, f"{mw}.mts", mem["mts"], 100, 20000)
    channels = _int(f, f"{mw}.channels", mem["channels"], 1, 16)
    srcs = sources.resolve(f, f"{mw}.src", mem["src"])
    # Peak DRAM bandwidth: each 64-bit channel moves 8 bytes per transfer.
    gbps = channels * 8 * mts / 1000.0
    return Figure(
        value=gbps,
        source="; ".join(_cites(srcs)),
        as_of=_latest(s.date for s in srcs) or default_as_of,
        reason=mem.get("note"),
        derived=(
            f"{channels} channels x 8 B x {mts} MT/s = {gbps:g} GB/s "
            f"({kind}; channels = SO-DIMM slots)"
        ),
    )


# ---------------------------------------------------------------------------------- machines

_MACHINE_REQUIRED = {
    "id",
    "name",
    "kind",
    "year",
    "release_date",
    "thunderbolt",
    "thunderbolt_ports",
    "ethernet_gbps",
    "ram_upgradeable",
    "src",
    "idle_w",
    "max_w",
    "idle_btu_h",
    "max_btu_h",
    "configs",
    "price",
}


def _load_machines(
    f: _File, sources: _Sources, chips: dict[str, ChipSpec]
) -> tuple[dict[str, MachineModel], dict[str, MachineConfig], dict[str, str]]:
    machines: dict[str, MachineModel] = {}
    configs: dict[str, MachineConfig] = {}
    machine_of: dict[str, str] = {}
    for i, row in enumerate(f.table_list("machine")):
        where = f"machine[{row.get('id', i)}]"
        _check_keys(f, where, row, _MACHINE_REQUIRED, {"notes"})
        mid = _slug(f, f"{where}.id", row["id"])
        if mid in machines:
            raise f.error(f"{where}.id", mid, "duplicate machine id")
        kind = row["kind"]
        if kind not in _KINDS:
            raise f.error(f"{where}.kind", kind, f"expected one of {sorted(_KINDS)}")
        year = _int(f, f"{where}.year", row["year"], 2005, 2030)
        release = _date(f, f"{where}.release_date", row["release_date"])
        tb = row["thunderbolt"]
        if tb not in _THUNDERBOLT:
            raise f.error(f"{where}.thunderbolt", tb, f"expected one of {sorted(_THUNDERBOLT)}")
        tb_ports = _int(f, f"{where}.thunderbolt_ports", row["thunderbolt_ports"], 0, 8)
        eth = row["ethernet_gbps"]
        if not isinstance(eth, list) or not eth:
            raise f.error(f"{where}.ethernet_gbps", eth, "expected a list like [1, 10]")
        ethernet = tuple(_int(f, f"{where}.ethernet_gbps", e, 1, 100) for e in eth)
        if any(e not in (1, 10) for e in ethernet):
            raise f.error(f"{where}.ethernet_gbps", eth, "Macs ship 1 or 10 GbE")
        upgradeable = _bool(f, f"{where}.ram_upgradeable", row["ram_upgradeable"])
        msrc = sources.resolve(f, f"{where}.src", row["src"])
        notes = _str(f, f"{where}.notes", row.get("notes", ""), empty_ok=True)
        fig_cites: list[str] = []
        idle_w = _figure(
            f, f"{where}.idle_w", row["idle_w"], sources, release, 0.5, 1000, collected=fig_cites
        )
        max_w = _figure(
            f, f"{where}.max_w", row["max_w"], sources, release, 1, 2000, collected=fig_cites
        )
        if idle_w.value is not None and max_w.value is not None and idle_w.value > max_w.value:
            raise f.error(f"{where}.idle_w", idle_w.value, f"above max_w ({max_w.value})")
        watts = {"idle_w": idle_w, "max_w": max_w}
        btu = {}
        for field in ("idle_btu_h", "max_btu_h"):
            btu[field] = _btu(f, f"{where}.{field}", row[field], watts, sources, release, fig_cites)
        prices = _price_steps(f, f"{where}.price", row["price"], sources, release)
        rows = row["configs"]
        if not isinstance(rows, list) or not rows:
            raise f.error(f"{where}.configs", rows, "expected a non-empty list of configs")
        ids: list[str] = []
        for j, crow in enumerate(rows):
            cfg = _config(
                f,
                f"{where}.configs[{j}]",
                crow,
                row,
                chips,
                prices,
                sources,
                year=year,
                kind=kind,
                release=release,
                tb=tb,
                tb_ports=tb_ports,
                ethernet=ethernet,
                upgradeable=upgradeable,
                figures={**watts, **btu},
                base_cites=_cites(msrc) + [c for c in fig_cites if c not in _cites(msrc)],
                notes=notes,
            )
            if cfg.id in configs:
                raise f.error(f"{where}.configs[{j}]", cfg.id, "duplicate configuration id")
            configs[cfg.id] = cfg
            machine_of[cfg.id] = mid
            ids.append(cfg.id)
        machines[mid] = MachineModel(
            id=mid,
            name=_str(f, f"{where}.name", row["name"]),
            kind=kind,
            year=year,
            release_date=release,
            config_ids=tuple(ids),
            sources=tuple(_cites(msrc)),
            notes=notes,
        )
    return machines, configs, machine_of


def _btu(
    f: _File,
    where: str,
    raw: Any,
    watts: dict[str, Figure],
    sources: _Sources,
    default: str,
    collected: list[str],
) -> Figure:
    if isinstance(raw, dict) and "derive" in raw:
        _check_keys(f, where, raw, {"derive", "from"}, {"note"})
        if raw["derive"] != "btu" or raw["from"] not in watts:
            raise f.error(where, raw, "expected derive = 'btu' from 'idle_w' or 'max_w'")
        w = watts[raw["from"]]
        if w.value is None:
            return Figure.unknown(f"derived from {raw['from']}, which is unknown: {w.reason}")
        value = round(float(w.value) * BTU_PER_WATT, 1)
        return Figure(
            value=value,
            source=w.source,
            as_of=w.as_of,
            reason=raw.get("note"),
            derived=f"{w.value:g} W x {BTU_PER_WATT} BTU/h per W = {value:g} BTU/h",
        )
    fig = _figure(f, where, raw, sources, default, 1, 7000, collected=collected)
    w = watts["idle_w" if where.endswith("idle_btu_h") else "max_w"]
    if fig.value is not None and w.value is not None:
        # Apple's BTU/h figures are its watts x 3.412; a large mismatch is a typo or wrong unit.
        expected = float(w.value) * BTU_PER_WATT
        if abs(float(fig.value) - expected) > 0.12 * expected + 2:
            raise f.error(where, fig.value, f"does not match {w.value} W x {BTU_PER_WATT}")
    return fig


@dataclass(frozen=True, slots=True)
class _Step:
    figure: Figure
    cites: tuple[str, ...]


def _price_steps(
    f: _File, where: str, raw: Any, sources: _Sources, default: str
) -> dict[str, _Step]:
    if not isinstance(raw, dict) or not raw:
        raise f.error(where, raw, "expected a [machine.price] table of steps")
    steps = {}
    for key, fig_raw in raw.items():
        cites: list[str] = []
        fig = _figure(f, f"{where}.{key}", fig_raw, sources, default, 1, 100_000, collected=cites)
        steps[key] = _Step(fig, tuple(cites))
    return steps


def _launch_price(path: list[str], steps: dict[str, _Step]) -> tuple[Figure, list[str]]:
    chosen = [(k, steps[k]) for k in path]
    for key, step in chosen:
        if step.figure.value is None:
            return Figure.unknown(f"price step '{key}' unknown: {step.figure.reason}"), []
    cites: list[str] = []
    for _, step in chosen:
        cites.extend(c for c in step.cites if c not in cites)
    if len(chosen) == 1:
        return chosen[0][1].figure, cites
    total = float(sum(float(s.figure.value) for _, s in chosen))  # type: ignore[arg-type]
    formula = " + ".join(f"{k} {s.figure.value:g}" for k, s in chosen) + f" = {total:g} USD"
    caveats = [f"{k}: {s.figure.reason}" for k, s in chosen if s.figure.reason]
    return (
        Figure(
            value=total,
            source="; ".join(cites),
            as_of=_latest(s.figure.as_of for _, s in chosen),
            reason=" | ".join(caveats) or None,
            derived=formula,
        ),
        cites,
    )


def _config(
    f: _File,
    where: str,
    crow: Any,
    mrow: dict[str, Any],
    chips: dict[str, ChipSpec],
    prices: dict[str, _Step],
    sources: _Sources,
    *,
    year: int,
    kind: str,
    release: str,
    tb: str,
    tb_ports: int,
    ethernet: tuple[int, ...],
    upgradeable: bool,
    figures: dict[str, Figure],
    base_cites: list[str],
    notes: str,
) -> MachineConfig:
    if not isinstance(crow, dict):
        raise f.error(where, crow, "expected an inline table {chip, memory_gb, ...}")
    _check_keys(f, where, crow, {"chip", "memory_gb", "storage_gb", "price"}, {"note", "withdrawn"})
    chip_id = crow["chip"]
    if chip_id not in chips:
        raise f.error(f"{where}.chip", chip_id, "unknown chip id (not in chips.toml)")
    chip = chips[chip_id]
    mem = _int(f, f"{where}.memory_gb", crow["memory_gb"], 1, 1024)
    if mem not in chip.memory_options_gb:
        raise f.error(
            f"{where}.memory_gb", mem, f"not a memory option of {chip_id} {chip.memory_options_gb}"
        )
    storage = _int(f, f"{where}.storage_gb", crow["storage_gb"], 64, 16_000)
    path = crow["price"]
    if not isinstance(path, list) or not path or not all(isinstance(p, str) for p in path):
        raise f.error(f"{where}.price", path, "expected a list of price step names")
    for p in path:
        if p not in prices:
            raise f.error(f"{where}.price", p, f"no such step in {mrow['id']}'s [machine.price]")
    price, price_cites = _launch_price(path, prices)
    if chip.vendor == "apple":
        cid = f"{kind}-{chip_id}-{mem}gb"
    else:
        cid = f"mac-mini-{year}-{chip_id.removeprefix(f'intel-{year}-')}-{mem}gb"
    cites = list(base_cites)
    cites.extend(c for c in price_cites if c not in cites)
    cfg_notes = [notes] if notes else []
    if "note" in crow:
        cfg_notes.append(_str(f, f"{where}.note", crow["note"]))
    withdrawn = None
    if "withdrawn" in crow:
        w = crow["withdrawn"]
        if not isinstance(w, dict):
            raise f.error(f"{where}.withdrawn", w, "expected {date, src}")
        _check_keys(f, f"{where}.withdrawn", w, {"date", "src"}, set())
        withdrawn = _date(f, f"{where}.withdrawn.date", w["date"])
        wc = _cites(sources.resolve(f, f"{where}.withdrawn.src", w["src"]))
        cfg_notes.append(f"Withdrawn by Apple {withdrawn} ({'; '.join(wc)}).")
        cites.extend(c for c in wc if c not in cites)
    return MachineConfig(
        id=cid,
        machine=mrow["name"],
        kind=kind,
        year=year,
        chip_id=chip_id,
        memory_gb=mem,
        storage_gb=storage,
        launch_price_usd=price,
        idle_w=figures["idle_w"],
        max_w=figures["max_w"],
        idle_btu_h=figures["idle_btu_h"],
        max_btu_h=figures["max_btu_h"],
        thunderbolt=tb,
        thunderbolt_ports=tb_ports,
        ethernet_gbps=ethernet,
        release_date=release,
        ram_upgradeable=upgradeable,
        sources=tuple(cites),
        notes=" ".join(cfg_notes),
        withdrawn=withdrawn,
    )


# ----------------------------------------------------------------------------------- network

_RATE_UNITS: dict[str, tuple[float, str]] = {
    "Gb/s": (1e9 / 8, "x 10^9 / 8"),
    "Mbit/s": (1e6 / 8, "x 10^6 / 8"),
    "MiB/s": (float(2**20), "x 2^20"),
}
_TIME_UNITS: dict[str, tuple[float, str]] = {"us": (1e-6, "x 10^-6"), "ms": (1e-3, "x 10^-3")}


def _unit_figure(
    f: _File,
    where: str,
    raw: Any,
    sources: _Sources,
    units: dict[str, tuple[float, str]],
    out_unit: str,
    lo: float,
    hi: float,
) -> Figure:
    if isinstance(raw, dict) and "unknown" in raw:
        return _figure(f, where, raw, sources, "", 0, 0)
    if not isinstance(raw, dict):
        raise f.error(where, raw, "expected a figure table {value, unit, src} or {unknown}")
    _check_keys(f, where, raw, {"value", "unit", "src"}, {"note", "as_of"})
    unit = raw["unit"]
    if unit not in units:
        raise f.error(f"{where}.unit", unit, f"expected one of {sorted(units)}")
    factor, how = units[unit]
    v = _num(f, f"{where}.value", raw["value"], 1e-9, 1e12)
    converted = v * factor
    if not lo <= converted <= hi:
        raise f.error(f"{where}.value", raw["value"], f"{converted:g} {out_unit} is not sane")
    srcs = sources.resolve(f, f"{where}.src", raw["src"])
    as_of = raw.get("as_of") or _latest(s.date for s in srcs)
    note = raw.get("note")
    if as_of is None:
        # Never invent a date: an undated source stays undated, and says so.
        note = "source undated" + (f"; {note}" if note else "")
    else:
        as_of = _date(f, f"{where}.as_of", as_of)
    return Figure(
        value=converted,
        source="; ".join(_cites(srcs)),
        as_of=as_of,
        reason=note,
        derived=f"{v:g} {unit} {how} = {converted:g} {out_unit}",
    )


def _load_links(f: _File, sources: _Sources) -> dict[str, LinkSpec]:
    links: dict[str, LinkSpec] = {}
    req = {
        "id",
        "name",
        "medium",
        "transport",
        "topology",
        "os_requirement",
        "macs",
        "src",
        "nominal_bandwidth",
        "measured_bandwidth",
        "latency",
    }
    for i, row in enumerate(f.table_list("link")):
        where = f"link[{row.get('id', i)}]"
        _check_keys(f, where, row, req, {"notes"})
        lid = _slug(f, f"{where}.id", row["id"])
        if lid in links:
            raise f.error(f"{where}.id", lid, "duplicate link id")
        if row["medium"] not in ("ethernet", "thunderbolt"):
            raise f.error(f"{where}.medium", row["medium"], "expected ethernet or thunderbolt")
        if row["transport"] not in ("tcp", "rdma"):
            raise f.error(f"{where}.transport", row["transport"], "expected tcp or rdma")
        links[lid] = LinkSpec(
            id=lid,
            name=_str(f, f"{where}.name", row["name"]),
            medium=row["medium"],
            transport=row["transport"],
            nominal_bandwidth_bytes_per_s=_unit_figure(
                f,
                f"{where}.nominal_bandwidth",
                row["nominal_bandwidth"],
                sources,
                _RATE_UNITS,
                "B/s",
                1e6,
                1e11,
            ),
            measured_bandwidth_bytes_per_s=_unit_figure(
                f,
                f"{where}.measured_bandwidth",
                row["measured_bandwidth"],
                sources,
                _RATE_UNITS,
                "B/s",
                1e6,
                1e11,
            ),
            latency_s=_unit_figure(
                f, f"{where}.latency", row["latency"], sources, _TIME_UNITS, "s", 1e-7, 1.0
            ),
            topology=_str(f, f"{where}.topology", row["topology"]),
            os_requirement=_str(f, f"{where}.os_requirement", row["os_requirement"]),
            macs=_str(f, f"{where}.macs", row["macs"]),
            sources=tuple(_cites(sources.resolve(f, f"{where}.src", row["src"]))),
            notes=_str(f, f"{where}.notes", row.get("notes", ""), empty_ok=True),
        )
    missing = [lid for lid in REQUIRED_LINKS if lid not in links]
    if missing:
        raise f.error("link", ", ".join(missing), "required link ids are missing")
    return links


# ------------------------------------------------------------------------ prices and power


def _refs(
    f: _File,
    where: str,
    row: dict[str, Any],
    machines: dict[str, MachineModel],
    chips: dict[str, ChipSpec],
    configs: dict[str, MachineConfig],
    machine_of: dict[str, str],
) -> tuple[str | None, str | None, str | None]:
    machine = row.get("machine")
    chip = row.get("chip")
    config = row.get("config")
    if machine is not None and machine not in machines:
        raise f.error(f"{where}.machine", machine, "unknown machine id")
    if chip is not None and chip not in chips:
        raise f.error(f"{where}.chip", chip, "unknown chip id")
    if config is not None:
        if config not in configs:
            raise f.error(f"{where}.config", config, "unknown configuration id")
        if machine is not None and machine_of[config] != machine:
            raise f.error(f"{where}.config", config, f"belongs to {machine_of[config]}")
        if chip is not None and configs[config].chip_id != chip:
            raise f.error(f"{where}.chip", chip, f"{config} has chip {configs[config].chip_id}")
        machine = machine or machine_of[config]
        chip = chip or configs[config].chip_id
    return machine, chip, config


def _domain(f: _File, where: str, build: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return build(**kwargs)
    except ValueError as exc:  # the domain type's own invariant
        raise f.error(where, None, str(exc)) from exc


def _load_prices(
    f: _File,
    machines: dict[str, MachineModel],
    chips: dict[str, ChipSpec],
    configs: dict[str, MachineConfig],
    machine_of: dict[str, str],
) -> tuple[tuple[PriceObservation, ...], tuple[MarketNote, ...]]:
    obs: list[PriceObservation] = []
    req = {"id", "item", "price_usd", "price_type", "condition", "date", "source", "quality"}
    opt = {"machine", "chip", "config", "storage_gb", "price_max_usd", "notes"}
    for i, row in enumerate(f.table_list("observation")):
        where = f"observation[{row.get('id', i)}]"
        _check_keys(f, where, row, req, opt)
        machine, chip, config = _refs(f, where, row, machines, chips, configs, machine_of)
        price = _num(f, f"{where}.price_usd", row["price_usd"], 1, 100_000)
        pmax = row.get("price_max_usd")
        obs.append(
            _domain(
                f,
                where,
                PriceObservation,
                id=_slug(f, f"{where}.id", row["id"]),
                item=_str(f, f"{where}.item", row["item"]),
                price_usd=price,
                price_max_usd=None
                if pmax is None
                else _num(f, f"{where}.price_max_usd", pmax, 1, 100_000),
                condition=row["condition"],
                price_type=row["price_type"],
                date=_date(f, f"{where}.date", row["date"]),
                source=_str(f, f"{where}.source", row["source"]),
                quality=_str(f, f"{where}.quality", row["quality"]),
                machine_id=machine,
                chip_id=chip,
                config_id=config,
                storage_gb=(
                    None
                    if "storage_gb" not in row
                    else _int(f, f"{where}.storage_gb", row["storage_gb"], 64, 16_000)
                ),
                original_price=price,
                notes=_str(f, f"{where}.notes", row.get("notes", ""), empty_ok=True),
            )
        )
    _unique(f, "observation.id", (o.id for o in obs))
    notes: list[MarketNote] = []
    for i, row in enumerate(f.data.get("note", [])):
        where = f"note[{i}]"
        if not isinstance(row, dict):
            raise f.error(where, row, "expected a table")
        _check_keys(f, where, row, {"date", "text", "source"}, {"quality"})
        notes.append(
            MarketNote(
                date=_date(f, f"{where}.date", row["date"]),
                text=_str(f, f"{where}.text", row["text"]),
                source=_str(f, f"{where}.source", row["source"]),
                quality=_str(f, f"{where}.quality", row.get("quality", ""), empty_ok=True),
            )
        )
    return tuple(obs), tuple(notes)


def _watts(f: _File, where: str, row: dict[str, Any], key: str):
    if key in row and f"{key}_max" in row:
        raise f.error(f"{where}.{key}", row[key], f"give either {key} or {key}_max")
    if f"{key}_max" in row:
        return (None, _num(f, f"{where}.{key}_max", row[f"{key}_max"], 0.1, 5000))
    if key not in row:
        return None
    raw = row[key]
    if isinstance(raw, list):
        if len(raw) != 2:
            raise f.error(f"{where}.{key}", raw, "expected [low, high]")
        lo = _num(f, f"{where}.{key}", raw[0], 0.1, 5000)
        hi = _num(f, f"{where}.{key}", raw[1], 0.1, 5000)
        if lo > hi:
            raise f.error(f"{where}.{key}", raw, "low is above high")
        return (lo, hi)
    v = _num(f, f"{where}.{key}", raw, 0.1, 5000)
    return (v, v)


def _load_power(
    f: _File,
    machines: dict[str, MachineModel],
    chips: dict[str, ChipSpec],
    configs: dict[str, MachineConfig],
    machine_of: dict[str, str],
) -> tuple[PowerMeasurement, ...]:
    out: list[PowerMeasurement] = []
    req = {"id", "machine", "config_label", "kind", "date", "source", "quality"}
    opt = {
        "config",
        "idle_w",
        "idle_w_max",
        "load_w",
        "load_w_max",
        "workload",
        "model",
        "quant",
        "runtime",
        "tokens_per_s",
        "notes",
    }
    for i, row in enumerate(f.table_list("measurement")):
        where = f"measurement[{row.get('id', i)}]"
        _check_keys(f, where, row, req, opt)
        machine, _chip, config = _refs(f, where, row, machines, chips, configs, machine_of)
        idle = _watts(f, where, row, "idle_w")
        load = _watts(f, where, row, "load_w")
        if idle is None and load is None:
            raise f.error(where, row["id"], "a measurement needs idle_w or load_w")
        tps = row.get("tokens_per_s")
        out.append(
            _domain(
                f,
                where,
                PowerMeasurement,
                id=_slug(f, f"{where}.id", row["id"]),
                machine_id=machine,
                config_id=config,
                config_label=_str(f, f"{where}.config_label", row["config_label"]),
                kind=row["kind"],
                date=_date(f, f"{where}.date", row["date"]),
                source=_str(f, f"{where}.source", row["source"]),
                quality=_str(f, f"{where}.quality", row["quality"]),
                idle_w=idle,
                load_w=load,
                workload=row.get("workload", ""),
                model=row.get("model", ""),
                quant=row.get("quant", ""),
                runtime=row.get("runtime", ""),
                tokens_per_s=None if tps is None else _num(f, f"{where}.tokens_per_s", tps, 0, 1e6),
                notes=row.get("notes", ""),
            )
        )
    _unique(f, "measurement.id", (m.id for m in out))
    return tuple(out)


# -------------------------------------------------------------------------------------- entry


def _load(data_dir: Path) -> Catalog:
    files = {key: _File(data_dir / name) for key, name in FILES.items()}
    sources = _Sources(files["sources"])
    chips = _load_chips(files["chips"], sources)
    machines, configs, machine_of = _load_machines(files["machines"], sources, chips)
    links = _load_links(files["network"], sources)
    observations, notes = _load_prices(files["prices"], machines, chips, configs, machine_of)
    power = _load_power(files["power"], machines, chips, configs, machine_of)
    return Catalog(
        chips=chips,
        configs=configs,
        links=links,
        machines=machines,
        machine_of=machine_of,
        price_observations=observations,
        power_measurements=power,
        market_notes=notes,
    )


# Between runs the application may keep the validated catalog (forgeplanner.services.datacache
# installs one): a callable (name, data files, build) -> the value build() makes from them. The
# catalog itself knows no directories.
_persistent: Callable[[str, list[Path], Callable[[], Catalog]], Catalog] | None = None


def set_persistent_cache(cache: Callable[..., Catalog] | None) -> None:
    global _persistent
    _persistent = cache


@functools.lru_cache(maxsize=8)
def _load_cached(data_dir: str) -> Catalog:
    path = Path(data_dir)
    if _persistent is None:
        return _load(path)
    return _persistent("catalog", [path / name for name in FILES.values()], lambda: _load(path))


def load_catalog(data_dir: str | Path | None = None) -> Catalog:
    """The hardware catalog, validated and cached per process (per data directory)."""
    if data_dir is None:  # the common call: no path to resolve
        return _load_cached(str(DATA_DIR))
    return _load_cached(str(Path(data_dir).resolve()))
