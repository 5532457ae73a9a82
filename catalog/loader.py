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
from catalog.pricing import (
    GRADES,
    PriceList,
    Selector,
    Step,
    StorageSpec,
    build_options,
    parse_storage,
)
from catalog.types import MachineModel, MarketNote
from forgeplanner.domain.hardware import ChipSpec, MachineConfig, MemorySpec
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
    optional = {"vendor", "laptop_only", "notes", "memory", "bandwidth_by_memory"}
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
        memory = _memory_spec(f, where, row.get("memory"), sources, default_as_of)
        by_mem = _bandwidth_by_memory(
            f, where, row.get("bandwidth_by_memory", []), mem_opts, sources, default_as_of
        )
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
            memory=memory,
            bandwidth_by_memory=by_mem,
        )
    return chips


def _memory_spec(
    f: _File, where: str, mem: Any, sources: _Sources, default_as_of: str
) -> MemorySpec | None:
    """The `memory = {type, mts, channels, form?, src, note?}` table, if the chip has one."""
    if mem is None:
        return None
    mw = f"{where}.memory"
    if not isinstance(mem, dict):
        raise f.error(mw, mem, "expected {type, mts, channels, src}")
    _check_keys(f, mw, mem, {"type", "mts", "channels", "src"}, {"note", "form"})
    kind = _str(f, f"{mw}.type", mem["type"])
    if not kind.startswith(("DDR", "LPDDR")):
        raise f.error(f"{mw}.type", kind, "expected a DDR memory type")
    srcs = sources.resolve(f, f"{mw}.src", mem["src"])
    return MemorySpec(
        type=kind,
        mts=_int(f, f"{mw}.mts", mem["mts"], 100, 20000),
        channels=_int(f, f"{mw}.channels", mem["channels"], 1, 16),
        form=_str(f, f"{mw}.form", mem.get("form", ""), empty_ok=True),
        source="; ".join(_cites(srcs)),
        as_of=_latest(s.date for s in srcs) or default_as_of,
        note=_str(f, f"{mw}.note", mem.get("note", ""), empty_ok=True),
    )


def _bandwidth_by_memory(
    f: _File,
    where: str,
    raw: Any,
    options: tuple[int, ...],
    sources: _Sources,
    default_as_of: str,
) -> tuple[tuple[int, Figure], ...]:
    """`bandwidth_by_memory = [{memory_gb, value, src, note?}]`: bins whose bandwidth depends
    on the memory fitted."""
    bw = f"{where}.bandwidth_by_memory"
    if not isinstance(raw, list):
        raise f.error(bw, raw, "expected a list of {memory_gb, value, src}")
    out: list[tuple[int, Figure]] = []
    for k, item in enumerate(raw):
        w = f"{bw}[{k}]"
        if not isinstance(item, dict) or "memory_gb" not in item:
            raise f.error(w, item, "expected {memory_gb, value, src}")
        mem = _int(f, f"{w}.memory_gb", item["memory_gb"], 1, 1024)
        if mem not in options:
            raise f.error(f"{w}.memory_gb", mem, f"not a memory option {options}")
        fig_raw = {k2: v for k2, v in item.items() if k2 != "memory_gb"}
        out.append((mem, _figure(f, w, fig_raw, sources, default_as_of, 1, 2000)))
    return tuple(out)


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
    _check_keys(f, mw, mem, {"type", "mts", "channels", "src"}, {"note", "form"})
    kind = _str(f, f"{mw}.type", mem["type"])
    if not kind.startswith(("DDR", "LPDDR")):
        raise f.error(f"{mw}.type", kind, "expected a DDR memory type")
    mts = _int(f, f"{mw}.mts", mem["mts"], 100, 20000)
    channels = _int(f, f"{mw}.channels", mem["channels"], 1, 16)
    srcs = sources.resolve(f, f"{mw}.src", mem["src"])
    # Peak DRAM bandwidth: each 64-bit channel moves 8 bytes per transfer (JEDEC DDR: one
    # transfer per clock edge; "DDR4-2666" is 2666 MT/s), so GB/s = channels x 8 x MT/s / 1000.
    # A theoretical peak, labelled derived; sustained reads on these CPUs are lower.
    gbps = channels * 8 * mts / 1000.0
    form = mem.get("form") or "memory fitting not stated"
    return Figure(
        value=gbps,
        source="; ".join(_cites(srcs)),
        as_of=_latest(s.date for s in srcs) or default_as_of,
        reason=mem.get("note"),
        derived=(
            f"peak = channels x 8 B x MT/s = {channels} x 8 B x {mts} MT/s = {gbps:g} GB/s "
            f"({kind}-{mts}, {channels} x 64-bit channels; {form})"
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
    "ram_upgradeable",
    "src",
    "idle_w",
    "max_w",
    "idle_btu_h",
    "max_btu_h",
    "configs",
    "price",
}
_MACHINE_OPTIONAL = {
    "notes",
    "discontinued",
    "storage",
    "storage_by_chip",
    "price_list",
    "ten_gbe",
    # unknown when omitted (the newest models' port counts are not in the sources read)
    "thunderbolt_ports",
    "ethernet_gbps",
}


def _load_machines(
    f: _File, sources: _Sources, chips: dict[str, ChipSpec]
) -> tuple[dict[str, MachineModel], dict[str, MachineConfig], dict[str, str]]:
    machines: dict[str, MachineModel] = {}
    configs: dict[str, MachineConfig] = {}
    machine_of: dict[str, str] = {}
    for i, row in enumerate(f.table_list("machine")):
        where = f"machine[{row.get('id', i)}]"
        _check_keys(f, where, row, _MACHINE_REQUIRED, _MACHINE_OPTIONAL)
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
        tb_ports = _int(f, f"{where}.thunderbolt_ports", row.get("thunderbolt_ports", 0), 0, 8)
        eth = row.get("ethernet_gbps", [])
        if not isinstance(eth, list) or (not eth and "ethernet_gbps" in row):
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
        discontinued = None
        if "discontinued" in row:
            d = row["discontinued"]
            if not isinstance(d, dict):
                raise f.error(f"{where}.discontinued", d, "expected {date, src}")
            _check_keys(f, f"{where}.discontinued", d, {"date", "src"}, {"note"})
            dcite = "; ".join(_cites(sources.resolve(f, f"{where}.discontinued.src", d["src"])))
            discontinued = (_date(f, f"{where}.discontinued.date", d["date"]), dcite)
            if discontinued[0] < release:
                raise f.error(f"{where}.discontinued.date", d["date"], "before release_date")
        storage = (
            parse_storage(f.error, f"{where}.storage", row["storage"]) if "storage" in row else None
        )
        by_chip: dict[str, list[StorageSpec]] = {}
        for chip_id, raw in (row.get("storage_by_chip") or {}).items():
            if chip_id not in chips:
                raise f.error(f"{where}.storage_by_chip", chip_id, "unknown chip id")
            by_chip[chip_id] = parse_storage(f.error, f"{where}.storage_by_chip.{chip_id}", raw)
        lists = _price_lists(f, f"{where}.price_list", row.get("price_list", []), sources, release)
        for pl in lists:
            for key in pl.steps:
                if key not in prices:
                    raise f.error(f"{where}.price_list[{pl.date}].steps", key, "no launch step")
        pricing = _Pricing(prices, lists, discontinued, storage, by_chip)
        extra: dict[str, Figure] = {}
        if "ten_gbe" in row:
            extra["ten_gbe_usd"] = _step(
                f, f"{where}.ten_gbe", row["ten_gbe"], sources, release
            ).figure
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
                pricing,
                sources,
                year=year,
                kind=kind,
                release=release,
                tb=tb,
                tb_ports=tb_ports,
                ethernet=ethernet,
                upgradeable=upgradeable,
                figures={**watts, **btu},
                extra=extra,
                base_cites=_cites(msrc) + [c for c in fig_cites if c not in _cites(msrc)],
                notes=notes,
            )
            if cfg.id in configs:
                raise f.error(f"{where}.configs[{j}]", cfg.id, "duplicate configuration id")
            configs[cfg.id] = cfg
            machine_of[cfg.id] = mid
            ids.append(cfg.id)
        for pl in lists:
            for sel in (*pl.withdraw, *pl.relist):
                if sel.config is not None and sel.config not in ids:
                    raise f.error(f"{where}.price_list[{pl.date}]", sel.config, "no such config")
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
class _Pricing:
    steps: dict[str, Step]
    lists: list[PriceList]
    discontinued: tuple[str, str] | None
    storage: list[StorageSpec] | None
    storage_by_chip: dict[str, list[StorageSpec]]


def _step(f: _File, where: str, raw: Any, sources: _Sources, default: str) -> Step:
    grade = ""
    if isinstance(raw, dict) and "grade" in raw:
        grade = raw["grade"]
        if grade not in GRADES:
            raise f.error(f"{where}.grade", grade, f"expected one of {GRADES}")
        raw = {k: v for k, v in raw.items() if k != "grade"}
    cites: list[str] = []
    fig = _figure(f, where, raw, sources, default, 0, 100_000, collected=cites)
    return Step(fig, tuple(cites), grade)


def _price_steps(
    f: _File, where: str, raw: Any, sources: _Sources, default: str
) -> dict[str, Step]:
    if not isinstance(raw, dict) or not raw:
        raise f.error(where, raw, "expected a [machine.price] table of steps")
    return {key: _step(f, f"{where}.{key}", v, sources, default) for key, v in raw.items()}


def _selectors(f: _File, where: str, raw: Any) -> tuple[Selector, ...]:
    if not isinstance(raw, list):
        raise f.error(where, raw, "expected a list of {config?, storage_gb?}")
    out = []
    for k, item in enumerate(raw):
        w = f"{where}[{k}]"
        if not isinstance(item, dict) or not item:
            raise f.error(w, item, "expected {config?, storage_gb?}")
        _check_keys(f, w, item, set(), {"config", "chip", "storage_gb"})
        storage = item.get("storage_gb")
        if storage is not None:
            storage = _int(f, f"{w}.storage_gb", storage, 64, 16_000)
        out.append(Selector(item.get("config"), storage, item.get("chip")))
    return tuple(out)


def _price_lists(
    f: _File, where: str, raw: Any, sources: _Sources, release: str
) -> list[PriceList]:
    if not isinstance(raw, list):
        raise f.error(where, raw, "expected [[machine.price_list]] tables")
    out: list[PriceList] = []
    for k, item in enumerate(raw):
        w = f"{where}[{k}]"
        if not isinstance(item, dict):
            raise f.error(w, item, "expected a table")
        _check_keys(
            f, w, item, {"date", "label", "src"}, {"steps", "withdraw", "relist", "rescale", "note"}
        )
        date = _date(f, f"{w}.date", item["date"])
        if date <= release:
            raise f.error(f"{w}.date", date, f"not after the launch ({release})")
        cites = _cites(sources.resolve(f, f"{w}.src", item["src"]))
        steps_raw = item.get("steps", {})
        if not isinstance(steps_raw, dict):
            raise f.error(f"{w}.steps", steps_raw, "expected a table of steps")
        steps = {
            key: _step(f, f"{w}.steps.{key}", v, sources, date) for key, v in steps_raw.items()
        }
        rescale = None
        if "rescale" in item:
            rescale = _figure(f, f"{w}.rescale", item["rescale"], sources, date, 0.2, 5)
            if rescale.value is None:
                raise f.error(f"{w}.rescale", item["rescale"], "a rescale ratio must be known")
        out.append(
            PriceList(
                date=date,
                label=_str(f, f"{w}.label", item["label"]),
                steps=steps,
                withdraw=_selectors(f, f"{w}.withdraw", item.get("withdraw", [])),
                relist=_selectors(f, f"{w}.relist", item.get("relist", [])),
                rescale=rescale,
                cites=tuple(cites),
            )
        )
    dates = [pl.date for pl in out]
    if dates != sorted(dates) or len(set(dates)) != len(dates):
        raise f.error(where, dates, "price lists must be in date order, one per date")
    return out


def _family(kind: str, chip: ChipSpec) -> str:
    """Depreciation family: the machine line and the chip tier (Intel minis one family)."""
    if chip.vendor == "intel":
        return f"{kind}-intel"
    return kind if chip.tier == "base" else f"{kind}-{chip.tier}"


def _config(
    f: _File,
    where: str,
    crow: Any,
    mrow: dict[str, Any],
    chips: dict[str, ChipSpec],
    pricing: _Pricing,
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
    extra: dict[str, Figure],
) -> MachineConfig:
    if not isinstance(crow, dict):
        raise f.error(where, crow, "expected an inline table {chip, memory_gb, ...}")
    _check_keys(
        f,
        where,
        crow,
        {"chip", "memory_gb", "price"},
        {"storage_gb", "note", "withdrawn", "storage"},
    )
    chip_id = crow["chip"]
    if chip_id not in chips:
        raise f.error(f"{where}.chip", chip_id, "unknown chip id (not in chips.toml)")
    chip = chips[chip_id]
    mem = _int(f, f"{where}.memory_gb", crow["memory_gb"], 1, 1024)
    if mem not in chip.memory_options_gb:
        raise f.error(
            f"{where}.memory_gb", mem, f"not a memory option of {chip_id} {chip.memory_options_gb}"
        )
    storage = (
        _int(f, f"{where}.storage_gb", crow["storage_gb"], 64, 16_000)
        if "storage_gb" in crow
        else None
    )
    prices = pricing.steps
    path = crow["price"]
    if not isinstance(path, list) or not path or not all(isinstance(p, str) for p in path):
        raise f.error(f"{where}.price", path, "expected a list of price step names")
    for p in path:
        if p not in prices:
            raise f.error(f"{where}.price", p, f"no such step in {mrow['id']}'s [machine.price]")
    if "storage" in crow:
        specs = parse_storage(f.error, f"{where}.storage", crow["storage"])
    elif chip_id in pricing.storage_by_chip:
        specs = pricing.storage_by_chip[chip_id]
    elif pricing.storage is not None:
        specs = pricing.storage
    else:
        raise f.error(where, chip_id, "no storage options (machine.storage or config.storage)")
    for spec in specs:
        if spec.step is not None and spec.step not in prices:
            raise f.error(f"{where}.storage", spec.step, "no such step in [machine.price]")
    base_specs = [s for s in specs if s.gb == storage and s.step is None]
    if len(base_specs) != 1:
        raise f.error(
            f"{where}.storage_gb", storage, "not exactly one included (step-less) storage option"
        )
    if chip.vendor == "apple":
        cid = f"{kind}-{chip_id}-{mem}gb"
    else:
        cid = f"mac-mini-{year}-{chip_id.removeprefix(f'intel-{year}-')}-{mem}gb"
    cites = list(base_cites)
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
    options = build_options(
        cid,
        chip_id,
        path,
        specs,
        launch_date=release,
        launch_steps=prices,
        price_lists=pricing.lists,
        discontinued=pricing.discontinued,
        withdrawn=withdrawn,
    )
    base_option = options[specs.index(base_specs[0])]
    price = base_option.launch.price
    for step in path:
        cites.extend(c for c in prices[step].cites if c not in cites)
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
        extra=dict(extra),
        storage_options=options,
        discontinued=None if pricing.discontinued is None else pricing.discontinued[0],
        discontinued_source=None if pricing.discontinued is None else pricing.discontinued[1],
        family=_family(kind, chip),
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
    opt = {"machine", "chip", "config", "storage_gb", "price_max_usd", "notes", "seller", "ten_gbe"}
    for i, row in enumerate(f.table_list("observation")):
        where = f"observation[{row.get('id', i)}]"
        _check_keys(f, where, row, req, opt)
        machine, chip, config = _refs(f, where, row, machines, chips, configs, machine_of)
        if config is not None and "storage_gb" in row:
            sizes = {o.storage_gb for o in configs[config].storage_options}
            if row["storage_gb"] not in sizes:
                raise f.error(
                    f"{where}.storage_gb", row["storage_gb"], f"not a storage option of {config}"
                )
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
                seller=_str(f, f"{where}.seller", row.get("seller", ""), empty_ok=True),
                ten_gbe=_bool(f, f"{where}.ten_gbe", row.get("ten_gbe", False)),
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
