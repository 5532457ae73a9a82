"""Import used-market price observations from a CSV export of (sold) listings.

    rows = read_listings("sold.csv", mapping={"price": "Sold For"}, fx={"EUR": 1.08})
    rows.preview()        # what would be imported, duplicates, unmatched titles
    commit(rows, repo)    # all rows or none

Columns (names matched case-insensitively; `mapping` overrides): title/config, price,
currency (optional: a symbol in the price or `default_currency`), date, condition, source
(optional: `default_source`), config_id (optional: a catalog id; else the title is matched).

Locale handling, stated so results are predictable:
- Delimiter: sniffed by pandas (`sep=None`), so ';'-separated European exports work.
- Numbers: currency symbols/codes and spaces (incl. non-breaking) are stripped. With both '.'
  and ',' present, the last one is the decimal separator ("1.299,00" and "1,299.00" are both
  1299). With only one kind: `decimal` decides ("." default: "1,299" is 1299; "," : "899,99"
  is 899.99); two digits after a lone ',' are always decimals ("899,99").
- Dates: ISO (YYYY-MM-DD) always; otherwise pandas with `dayfirst` (default False: 02/03/2026
  is 3 February). A date in the future is an error.
- Currency: a 3-letter code column, or a symbol in the price ($ = USD, EUR sign, GBP sign);
  converted to USD with the user's `fx` rates (USD per unit; no rates are shipped or fetched).
  The stored source names the original amount and the rate.

Duplicates (same configuration/title, price, date, condition and source; the user database's
dedupe key) within the file or already stored are skipped and reported, not errors. Any bad
row (with its line number) stops the import before anything is written.
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forgeplanner.errors import DataError, ForgePlannerError

FIELDS = ("title", "price", "currency", "date", "condition", "source", "config_id")
REQUIRED = ("price", "date", "condition")
ALIASES: dict[str, tuple[str, ...]] = {
    "title": ("title", "config", "configuration", "item", "listing", "name", "description"),
    "price": ("price", "sold price", "sale price", "amount", "sold for", "price_usd"),
    "currency": ("currency", "cur", "ccy"),
    "date": ("date", "sold date", "sold on", "sold_on", "observed_on", "end date"),
    "condition": ("condition", "state"),
    "source": ("source", "site", "marketplace", "url", "link"),
    "config_id": ("config_id", "config id", "catalog id"),
}
CONDITION_WORDS: dict[str, str] = {
    "new": "new",
    "neu": "new",
    "sealed": "new",
    "brand new": "new",
    "new (open box)": "used",
    "open box": "used",
    "used": "used",
    "pre-owned": "used",
    "preowned": "used",
    "gebraucht": "used",
    "second hand": "used",
    "refurbished": "refurbished",
    "refurb": "refurbished",
    "renewed": "refurbished",
    "certified refurbished": "refurbished",
    "apple refurbished": "refurbished",
    "seller refurbished": "refurbished",
}
NOT_WORKING = ("for parts", "not working", "defekt", "broken")
SYMBOLS = {"$": "USD", "US$": "USD", "€": "EUR", "£": "GBP"}
MAX_ROWS = 100_000


class ImportError_(ForgePlannerError):
    """Bad rows in an import; lists every problem with its line number. Nothing is written."""

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        shown = "; ".join(problems[:8]) + (
            f"; ... {len(problems) - 8} more" if len(problems) > 8 else ""
        )
        super().__init__(f"{file}: {len(problems)} bad row(s), nothing imported: {shown}")


@dataclass(frozen=True, slots=True)
class ListingRow:
    line: int
    title: str | None
    config_id: str | None
    match: str  # "config_id column" | "title" | "unmatched"
    price_usd: float
    original_price: float
    currency: str
    date: _dt.date
    condition: str
    source: str
    dedupe_key: str
    duplicate_of: str | None = None  # "line 7" | "database #12"
    storage_gb: int | None = None  # stated in the title (shown; the user database keeps none)
    match_reason: str = ""  # why a title matched no configuration

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "title": self.title,
            "config_id": self.config_id,
            "storage_gb": self.storage_gb,
            "match": self.match,
            "match_reason": self.match_reason,
            "price_usd": round(self.price_usd, 2),
            "original_price": self.original_price,
            "currency": self.currency,
            "date": self.date.isoformat(),
            "condition": self.condition,
            "source": self.source,
            "duplicate_of": self.duplicate_of,
        }


@dataclass
class ListingImport:
    file: str
    columns: dict[str, str]  # field -> CSV column used
    rows: list[ListingRow] = field(default_factory=list)

    @property
    def new_rows(self) -> list[ListingRow]:
        return [r for r in self.rows if r.duplicate_of is None]

    @property
    def duplicates(self) -> list[ListingRow]:
        return [r for r in self.rows if r.duplicate_of is not None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "columns": self.columns,
            "rows": [r.to_dict() for r in self.rows],
            "new": len(self.new_rows),
            "duplicates": len(self.duplicates),
            "unmatched": sum(1 for r in self.rows if r.config_id is None),
        }


# ------------------------------------------------------------------------------------ parsing


def parse_amount(text: str, decimal: str = ".") -> tuple[float, str | None]:
    """(amount, currency code found in the text or None). Raises ValueError."""
    raw = str(text).strip()
    code = None
    for sym, c in sorted(SYMBOLS.items(), key=lambda kv: -len(kv[0])):
        if sym in raw:
            code = c
            raw = raw.replace(sym, "")
            break
    m = re.search(r"\b([A-Z]{3})\b", raw)
    if m:
        code = m.group(1)
        raw = raw.replace(m.group(1), "")
    s = re.sub(r"[\s\u00a0\u202f']", "", raw)
    if not s or not re.fullmatch(r"[0-9.,]+", s):
        raise ValueError(f"'{text}' is not an amount")
    if "," in s and "." in s:
        dec = "," if s.rfind(",") > s.rfind(".") else "."
    elif "," in s:
        dec = "," if (decimal == "," or re.fullmatch(r"\d+,\d{1,2}", s)) else "."
    elif "." in s:
        dec = "." if (decimal == "." or re.fullmatch(r"\d+\.\d{1,2}", s)) else ","
    else:
        dec = "."
    thousands = "," if dec == "." else "."
    whole, sep, frac = s.partition(dec)
    if (
        not whole
        or (sep and not frac)
        or dec in frac
        or thousands in frac
        # Thousands separators group exactly three digits: "1.2.3,4" is not 123.40.
        or (
            thousands in whole
            and not re.fullmatch(rf"\d{{1,3}}(?:{re.escape(thousands)}\d{{3}})+", whole)
        )
    ):
        raise ValueError(f"'{text}' is not an amount")
    value = float(whole.replace(thousands, "") + (f".{frac}" if sep else ""))
    return value, code


def parse_date(text: str, dayfirst: bool, today: _dt.date) -> _dt.date:
    import pandas as pd

    t = str(text).strip()
    try:
        d = _dt.date.fromisoformat(t[:10]) if re.match(r"^\d{4}-\d\d-\d\d", t) else None
    except ValueError:
        d = None
    if d is None:
        try:
            ts = pd.to_datetime(t, dayfirst=dayfirst)
            if pd.isna(ts):  # "NaN", "NaT", "" parse to NaT, which has no date
                raise ValueError
            d = ts.date()
        except (ValueError, TypeError, OverflowError, NotImplementedError) as exc:
            # NotImplementedError: pandas parses "-026-02-01" to a Timestamp with no date.
            raise ValueError(f"'{text}' is not a date") from exc
    if d > today:
        raise ValueError(f"date {d.isoformat()} is in the future")
    if d.year < 2000:
        raise ValueError(f"date {d.isoformat()} is before 2000")
    return d


def parse_condition(text: str) -> str:
    t = " ".join(str(text).lower().replace("_", " ").split())
    if any(w in t for w in NOT_WORKING):
        raise ValueError(f"condition '{text}' is not a working machine; leave such rows out")
    if t in CONDITION_WORDS:
        return CONDITION_WORDS[t]
    for word, cond in sorted(CONDITION_WORDS.items(), key=lambda kv: -len(kv[0])):
        if word in t:
            return cond
    raise ValueError(f"condition '{text}' unknown; use new, used or refurbished")


# Listing titles, as sellers write them: "Mac Studio M2 Ultra 76C 192GB", "M2 Ultra 24C/76C
# 192GB 2TB", "M1 Max 10-core CPU 32-core GPU 64GB", "M4 Max 32-Core 36GB" (GPU cores),
# "APPLE M2 MAX | 512GB | 32GB" (which number is the memory is decided by the chip's memory
# options), "Mac mini 2018 i7 32GB", "Refurbished Mac mini 3.2GHz 6-core Intel Core i7".
_SIZE = re.compile(r"(\d{1,4}(?:\.\d)?)\s*(gb|tb)\b(\s*(?:ssd|storage|hdd|fusion|flash))?", re.I)
_RAM_HINT = re.compile(r"^\s*(?:of\s+)?(?:unified\s+)?(?:ram|memory|unified)", re.I)
_CORES = re.compile(
    r"(\d{1,2})\s*(?:-|\s)?\s*(?:c\b|cores?\b|‑core\b)(?:\s*(cpu|gpu))?", re.IGNORECASE
)
_PAIR = re.compile(r"\b(\d{1,2})\s*c?\s*/\s*(\d{1,2})\s*c?\b", re.IGNORECASE)
_CHIP = re.compile(r"\bm([1-9])(?:\s*(pro|max|ultra))?\b", re.IGNORECASE)
_INTEL_YEAR = re.compile(r"\b(2012|2014|2018|2020)\b")
_INTEL_CPU = re.compile(r"\b(i[357])\b", re.IGNORECASE)
_GHZ = re.compile(r"(\d\.\d)\s*ghz", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class TitleMatch:
    """What a listing title names: one configuration (and its storage, when stated), or the
    reason it names none."""

    config_id: str | None
    storage_gb: int | None = None
    reason: str = ""


def _sizes(title: str) -> tuple[list[int], list[int], list[int]]:
    """(GB numbers that may be memory, GB numbers that may be storage, storage said so)."""
    mem: list[int] = []
    maybe: list[int] = []
    storage: list[int] = []
    for m in _SIZE.finditer(title):
        value = float(m.group(1))
        gb = int(value * 1000) if m.group(2).lower() == "tb" else int(value)
        if m.group(3) or m.group(2).lower() == "tb":
            storage.append(gb)
        elif _RAM_HINT.match(title[m.end() :]):
            mem.append(gb)
        else:
            maybe.append(gb)
    return mem, maybe, storage


def _cores(title: str) -> tuple[set[int], set[int], set[int]]:
    """(GPU core counts, CPU core counts, untagged core counts) named in the title."""
    gpu: set[int] = set()
    cpu: set[int] = set()
    untagged: set[int] = set()
    for m in _PAIR.finditer(title):  # "24C/76C", "28/60": CPU / GPU
        cpu.add(int(m.group(1)))
        gpu.add(int(m.group(2)))
    for m in _CORES.finditer(title):
        n = int(m.group(1))
        tag = (m.group(2) or "").lower()
        if not tag:  # "12-core CPU and 38-core GPU": the tag may follow a few words later
            after = title[m.end() : m.end() + 12].lower()
            tag = "gpu" if after.lstrip(" ,").startswith("gpu") else tag
        (gpu if tag == "gpu" else cpu if tag == "cpu" else untagged).add(n)
    return gpu, cpu, untagged


def match_title_details(title: str, catalog: Any) -> TitleMatch:
    """The one catalog configuration a listing title names (kind, chip, bin, memory), and
    its storage when stated; never guesses between candidates."""
    t = title.lower()
    kinds = [k for k in ("mac-mini", "mac-studio") if k.replace("-", " ") in t or k in t]
    cands = list(catalog.configs.values())
    if kinds:
        cands = [c for c in cands if c.kind in kinds]
    chip_m = _CHIP.search(title)
    if chip_m:
        gen, tier = chip_m.group(1), (chip_m.group(2) or "").lower()
        name = f"m{gen}" + (f"-{tier}" if tier else "")
        cands = [c for c in cands if c.chip_id.rsplit("-", 1)[0] == name]
    elif "intel" in t or _INTEL_CPU.search(title):
        cpu = _INTEL_CPU.search(title)
        year = _INTEL_YEAR.search(title)
        ghz = _GHZ.search(title)
        chips = catalog.chips
        cands = [c for c in cands if chips[c.chip_id].vendor == "intel"]
        if cpu:
            cands = [
                c for c in cands if f"core {cpu.group(1).lower()}" in chips[c.chip_id].name.lower()
            ]
        if year:
            y = "2018" if year.group(1) == "2020" else year.group(1)  # the 2020 refresh is 2018
            cands = [c for c in cands if c.chip_id.startswith(f"intel-{y}-")]
        if ghz:
            cands = [c for c in cands if f"{ghz.group(1)}ghz" in chips[c.chip_id].name.lower()]
        if not (cpu or year or ghz):
            return TitleMatch(None, reason="an Intel Mac mini, but no CPU, clock or year")
    else:
        return TitleMatch(None, reason="names no Apple chip or Intel CPU")
    if not cands:
        return TitleMatch(None, reason="no catalog configuration has that chip")
    gpu, cpu, untagged = _cores(title)
    bins = {c.chip_id: catalog.chips[c.chip_id] for c in cands}
    gpu_bins = {b.gpu_cores for b in bins.values()}
    cpu_bins = {b.cpu_cores.value for b in bins.values() if b.cpu_cores.value is not None}
    for n in untagged:  # "76C", "76-core": the GPU when a bin has that many GPU cores
        if n in gpu_bins:
            gpu.add(n)
        elif n in cpu_bins:
            cpu.add(n)
    if gpu & gpu_bins:
        cands = [c for c in cands if bins[c.chip_id].gpu_cores in gpu]
    if cpu & cpu_bins and len({bins[c.chip_id].cpu_cores.value for c in cands}) > 1:
        cands = [c for c in cands if bins[c.chip_id].cpu_cores.value in cpu]
    mem, maybe, storage = _sizes(title)
    options = {c.memory_gb for c in cands}
    said = [m for m in mem if m in options] or [m for m in maybe if m in options]
    if len(set(said)) != 1:
        what = "no memory size" if not said else f"several memory sizes {sorted(set(said))}"
        return TitleMatch(None, reason=f"{what} of {sorted(options)} GB in the title")
    memory = said[0]
    cands = [c for c in cands if c.memory_gb == memory]
    ids = sorted({c.id for c in cands})
    if len(ids) != 1:
        return TitleMatch(None, reason=f"ambiguous between {', '.join(ids)}")
    cfg = catalog.configs[ids[0]]
    sizes = {o.storage_gb for o in cfg.storage_options}
    stated = [g for g in (*storage, *maybe) if g in sizes and g != memory]
    return TitleMatch(ids[0], stated[0] if len(set(stated)) == 1 else None)


def match_title(title: str, catalog: Any) -> str | None:
    """The one catalog configuration a listing title names, or None (see
    `match_title_details`)."""
    return match_title_details(title, catalog).config_id


def _pick_columns(columns: Iterable[str], mapping: Mapping[str, str], file: str) -> dict[str, str]:
    cols = list(columns)
    lower = {c.strip().lower(): c for c in cols}
    chosen: dict[str, str] = {}
    for key, col in mapping.items():
        if key not in FIELDS:
            raise DataError(file, f"--map {key}", col, f"unknown field; valid: {', '.join(FIELDS)}")
        if col not in cols and col.strip().lower() not in lower:
            raise DataError(
                file, f"--map {key}", col, f"no such column; columns: {', '.join(cols)}"
            )
        chosen[key] = col if col in cols else lower[col.strip().lower()]
    for key in FIELDS:
        if key in chosen:
            continue
        for alias in ALIASES[key]:
            if alias in lower and lower[alias] not in chosen.values():
                chosen[key] = lower[alias]
                break
    missing = [k for k in REQUIRED if k not in chosen]
    if "title" not in chosen and "config_id" not in chosen:
        missing.append("title or config_id")
    if missing:
        raise DataError(
            file,
            "columns",
            ", ".join(cols),
            f"missing {', '.join(missing)}; map them with --map FIELD=COLUMN",
        )
    return chosen


def read_listings(
    path: str | Path,
    *,
    mapping: Mapping[str, str] | None = None,
    default_currency: str = "USD",
    fx: Mapping[str, float] | None = None,
    decimal: str = ".",
    dayfirst: bool = False,
    default_source: str | None = None,
    today: _dt.date | None = None,
    catalog: Any = None,
    existing_keys: Mapping[str, int] | None = None,
) -> ListingImport:
    """Parse and validate a listings CSV. Raises DataError (unreadable file, columns) or
    ImportError_ (bad rows, every one with its line number). Writes nothing."""

    from forgeplanner.store.repos import price_dedupe_key

    file = str(path)
    if decimal not in (".", ","):
        raise DataError(file, "--decimal", decimal, "expected '.' or ','")
    rates = {k.upper(): float(v) for k, v in (fx or {}).items()}
    for code, rate in rates.items():
        if not re.fullmatch(r"[A-Z]{3}", code) or not (rate > 0 and math.isfinite(rate)):
            raise DataError(file, "--fx", f"{code}={rate}", "expected CODE=USD_PER_UNIT > 0")
    rates.setdefault("USD", 1.0)
    today = today or _dt.date.today()
    if catalog is None:
        from catalog import load_catalog

        catalog = load_catalog()
    header, records = read_csv_records(path)
    if not records:
        raise DataError(file, "(rows)", 0, "no data rows")
    if len(records) > MAX_ROWS:
        raise DataError(file, "(rows)", len(records), f"more than {MAX_ROWS} rows")
    cols = _pick_columns(header, mapping or {}, file)
    result = ListingImport(file=file, columns=cols)
    problems: list[str] = []
    seen: dict[str, int] = {}
    existing = existing_keys or {}
    for line, rec in records:
        try:
            row = _parse_row(
                rec,
                cols,
                line,
                catalog,
                default_currency,
                rates,
                decimal,
                dayfirst,
                default_source,
                today,
                file,
            )
        except ValueError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        key = price_dedupe_key(
            row.config_id, row.title, row.price_usd, "USD", row.date, row.condition, row.source
        )
        dup = None
        if key in seen:
            dup = f"line {seen[key]}"
        elif key in existing:
            dup = f"database #{existing[key]}"
        else:
            seen[key] = line
        result.rows.append(_replace(row, dedupe_key=key, duplicate_of=dup))
    if problems:
        raise ImportError_(file, problems)
    return result


MAX_CSV_BYTES = 64 << 20


def read_csv_records(path: str | Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(header, [(line, {column: text})]) of a CSV file, each record with the line it starts
    on, counted in the file: a quoted cell may span lines, so "row index + 2" is wrong after
    the first one. The delimiter is sniffed from the header (',', ';', tab or '|'), as pandas'
    `sep=None` did. Regular files only, at most MAX_CSV_BYTES (forgeplanner.fileio)."""
    import csv
    import io

    from forgeplanner.fileio import read_input

    file = str(path)
    data = read_input(path, MAX_CSV_BYTES, "CSV file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(
            file, "(encoding)", exc.object[exc.start : exc.end], "not UTF-8 text"
        ) from None
    if not text.strip():
        raise DataError(file, "(file)", 0, "empty file: no header and no rows")
    first = text.lstrip("\r\n").splitlines()[0]
    try:
        dialect: Any = csv.Sniffer().sniff(first, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel  # one column, or nothing to tell: the CSV default
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    header: list[str] | None = None
    records: list[tuple[int, dict[str, str]]] = []
    line = 1
    try:
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            line = start
            if not row or all(not c.strip() for c in row):
                continue  # blank line
            if header is None:
                header = [c.strip() for c in row]
                dup = sorted({c for c in header if header.count(c) > 1})
                if dup:
                    raise DataError(file, f"line {line}", dup[0], "column name appears twice")
                continue
            if len(row) != len(header):
                raise DataError(
                    file,
                    f"line {line}",
                    len(row),
                    f"expected {len(header)} fields (the header's), found {len(row)}",
                )
            records.append((line, dict(zip(header, row, strict=True))))
            if len(records) > MAX_ROWS:
                break
    except csv.Error as exc:
        raise DataError(
            file, f"line {reader.line_num or line}", str(exc)[:60], "not a readable CSV"
        ) from None
    if header is None:
        raise DataError(file, "(file)", 0, "empty file: no header and no rows")
    return header, records


def _replace(row: ListingRow, **kw: Any) -> ListingRow:
    from dataclasses import replace

    return replace(row, **kw)


def _parse_row(
    rec,
    cols,
    line,
    catalog,
    default_currency,
    rates,
    decimal,
    dayfirst,
    default_source,
    today,
    file,
) -> ListingRow:
    def get(key: str) -> str:
        return str(rec.get(cols[key], "")).strip() if key in cols else ""

    title = get("title") or None
    price_text = get("price")
    if not price_text:
        raise ValueError(f"price is empty (column '{cols['price']}')")
    amount, code = parse_amount(price_text, decimal)
    if amount <= 0 or amount > 1_000_000:
        raise ValueError(f"price {price_text!r} is not a plausible machine price")
    cur_col = get("currency").upper()
    if cur_col and code and cur_col != code:
        raise ValueError(f"price {price_text!r} is in {code} but currency says {cur_col}")
    currency = cur_col or code or default_currency.upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValueError(f"currency {currency!r} is not a 3-letter code")
    if currency not in rates:
        raise ValueError(
            f"no exchange rate for {currency}: pass --fx {currency}=<USD per {currency}>"
        )
    usd = amount * rates[currency]
    date_text = get("date")
    if not date_text:
        raise ValueError(f"date is empty (column '{cols['date']}')")
    date = parse_date(date_text, dayfirst, today)
    condition = parse_condition(get("condition") or "?")
    source = get("source") or default_source or f"CSV import {Path(file).name}"
    if currency != "USD":
        source += f" ({currency} {amount:,.2f} at {rates[currency]:g} USD/{currency}, user rate)"
    config_id = get("config_id") or None
    match = "config_id column"
    storage = None
    why = ""
    if config_id is not None:
        if config_id not in catalog.configs:
            raise ValueError(f"config_id '{config_id}' is not a catalog configuration")
    elif title:
        found = match_title_details(title, catalog)
        config_id, storage, why = found.config_id, found.storage_gb, found.reason
        match = "title" if config_id else "unmatched"
    else:
        raise ValueError("neither title nor config_id given")
    return ListingRow(
        line,
        title,
        config_id,
        match,
        usd,
        amount,
        currency,
        date,
        condition,
        source,
        "",
        storage_gb=storage,
        match_reason=why,
    )


def commit(imp: ListingImport, repo: Any) -> list[Any]:
    """Add every new row through the user database's PriceRepo, in the caller's session
    (one transaction: the caller's `store.session()` commits all or rolls back all)."""
    added = []
    for r in imp.new_rows:
        rec, created = repo.add(
            price=r.price_usd,
            currency="USD",
            observed_on=r.date,
            condition=r.condition,
            source=r.source,
            config_id=r.config_id,
            title=r.title,
            dedupe_key=r.dedupe_key,
        )
        if created:
            added.append(rec)
    return added
