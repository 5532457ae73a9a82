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

    def to_dict(self) -> dict[str, Any]:
        return {
            "line": self.line,
            "title": self.title,
            "config_id": self.config_id,
            "match": self.match,
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


_GB = re.compile(r"(\d{1,3})\s*gb\b(?!\s*(?:ssd|storage|hdd|fusion))", re.IGNORECASE)
_GPU = re.compile(r"(\d{1,2})\s*[- ]?(?:c|core)\s*gpu", re.IGNORECASE)
_CHIP = re.compile(r"\bm([1-5])(?:\s*(pro|max|ultra))?\b", re.IGNORECASE)
_INTEL = re.compile(
    r"\b(20(?:12|14|18|20))\b.*?\b(i[357])\b|\b(i[357])\b.*?\b(20(?:12|14|18|20))\b", re.IGNORECASE
)


def match_title(title: str, catalog: Any) -> str | None:
    """The one catalog configuration a listing title names (kind, chip, GPU bin, memory), or
    None when the title is ambiguous or names nothing. Never guesses between candidates."""
    t = title.lower()
    kinds = [k for k in ("mac-mini", "mac-studio") if k.replace("-", " ") in t or k in t]
    mems = {int(m) for m in _GB.findall(title)}
    cands = list(catalog.configs.values())
    if kinds:
        cands = [c for c in cands if c.kind in kinds]
    chip_m = _CHIP.search(title)
    intel_m = _INTEL.search(title)
    if chip_m:
        gen, tier = chip_m.group(1), (chip_m.group(2) or "").lower()
        name = f"m{gen}" + (f"-{tier}" if tier else "")
        cands = [c for c in cands if c.chip_id.rsplit("-", 1)[0] == name]
        gpu = _GPU.search(title)
        if gpu:
            cands = [c for c in cands if catalog.chips[c.chip_id].gpu_cores == int(gpu.group(1))]
    elif intel_m:
        year = intel_m.group(1) or intel_m.group(4)
        cpu = (intel_m.group(2) or intel_m.group(3)).lower()
        year = "2018" if year == "2020" else year  # the 2020 refresh is the 2018 model
        cands = [c for c in cands if c.chip_id.startswith(f"intel-{year}-{cpu}")]
    else:
        return None
    if mems:
        cands = [c for c in cands if c.memory_gb in mems]
    else:
        return None  # memory decides the configuration; without it the title is ambiguous
    ids = sorted({c.id for c in cands})
    return ids[0] if len(ids) == 1 else None


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
    if config_id is not None:
        if config_id not in catalog.configs:
            raise ValueError(f"config_id '{config_id}' is not a catalog configuration")
    elif title:
        config_id = match_title(title, catalog)
        match = "title" if config_id else "unmatched"
    else:
        raise ValueError("neither title nor config_id given")
    return ListingRow(
        line, title, config_id, match, usd, amount, currency, date, condition, source, ""
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
