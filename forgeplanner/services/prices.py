"""Price observations: the shipped ones and the user's own (list, import from a CSV, delete),
and the day that price recency is measured from.

`forgeplanner prices`, `forgeplanner recommend`, the Recommend view and plans all read prices
here, so they use the same observations. The CSV reading and validation itself is
`forgeplanner.prices_import`; this module adds the user database around it (one transaction per
import: every row or none).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forgeplanner.errors import ForgePlannerError

if TYPE_CHECKING:
    from forgeplanner.domain.prices import PriceObservation
    from forgeplanner.prices_import import ListingImport
    from forgeplanner.store.db import Store
    from forgeplanner.store.repos import PriceRecord


class PriceInputError(ForgePlannerError):
    """A price request that cannot be answered as asked (bad date, unknown observation)."""


@dataclass(frozen=True, slots=True)
class ListingFormat:
    """How to read a listings CSV: column mapping (FIELD -> column), the currency of prices
    without one, USD per unit of other currencies (none shipped), decimal separator, day-first
    dates, and the source of rows without one."""

    mapping: Mapping[str, str] = field(default_factory=dict)
    default_currency: str = "USD"
    fx: Mapping[str, float] = field(default_factory=dict)
    decimal: str = "."
    dayfirst: bool = False
    default_source: str | None = None


def price_day(text: str | None) -> str:
    """The ISO date prices are for (`--as-of`: list prices in force, recency of
    observations): `text` (YYYY-MM-DD) or today."""
    if text is None:
        return _dt.date.today().isoformat()
    try:
        return _dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise PriceInputError(f"--as-of '{text}': expected YYYY-MM-DD") from None


@contextmanager
def _store(store: Store | None) -> Iterator[Store]:
    """The caller's store, or the user database opened (and closed) for this call."""
    if store is not None:
        yield store
        return
    from forgeplanner.store.db import open_store

    with open_store() as opened:
        yield opened


def user_price_observations(
    store: Store | None = None,
) -> tuple[tuple[PriceObservation, ...], list[str]]:
    """The user's own price observations from the user database, as domain values, and notes.
    Only USD rows naming a catalog configuration can price a configuration; the rest are
    counted in a note."""
    from forgeplanner.domain.prices import PriceObservation
    from forgeplanner.store.repos import PriceRepo

    notes: list[str] = []
    out = []
    skipped = 0
    with _store(store) as st, st.session() as s:
        for rec in PriceRepo(s).list():
            cond = rec.condition if rec.condition in ("new", "used", "refurbished") else "unknown"
            if rec.config_id is None or rec.currency != "USD" or rec.price <= 0:
                skipped += 1
                continue
            out.append(
                PriceObservation(
                    id=f"user-{rec.id}",
                    item=rec.title or rec.config_id,
                    price_usd=rec.price,
                    condition=cond,
                    price_type="listing",
                    date=rec.observed_on.isoformat(),
                    source=rec.source,
                    config_id=rec.config_id,
                    origin="user",
                )
            )
    if skipped:
        notes.append(
            f"{skipped} of your price observations name no catalog configuration or "
            "are not in USD; they are listed but not used for prices"
        )
    return tuple(out), notes


def all_observations(catalog: Any = None, store: Store | None = None) -> tuple[Any, ...]:
    """The shipped price observations, then the user's own."""
    if catalog is None:
        from catalog import load_catalog

        catalog = load_catalog()
    user, _ = user_price_observations(store)
    return tuple(catalog.price_observations) + user


def _existing_keys(repo: Any) -> dict[str, int]:
    return {r.dedupe_key: r.id for r in repo.list()}


def read_listings_file(
    path: str | Path,
    fmt: ListingFormat = ListingFormat(),
    *,
    store: Store | None = None,
    catalog: Any = None,
) -> ListingImport:
    """Parse and validate a listings CSV against the catalog and the observations already
    saved (duplicates are marked). Writes nothing: a preview, or the input of
    `commit_listings`."""
    from forgeplanner.prices_import import read_listings
    from forgeplanner.store.repos import PriceRepo

    with _store(store) as st, st.session() as s:
        existing = _existing_keys(PriceRepo(s))
    return _read(path, fmt, existing, catalog, read_listings)


def _read(path, fmt: ListingFormat, existing, catalog, read_listings) -> ListingImport:
    return read_listings(
        path,
        mapping=dict(fmt.mapping),
        default_currency=fmt.default_currency,
        fx=dict(fmt.fx),
        decimal=fmt.decimal,
        dayfirst=fmt.dayfirst,
        default_source=fmt.default_source,
        catalog=catalog,
        existing_keys=existing,
    )


def commit_listings(imp: ListingImport, store: Store | None = None) -> list[PriceRecord]:
    """Save every new row of a read import in one transaction; returns the rows added."""
    from forgeplanner.prices_import import commit
    from forgeplanner.store.repos import PriceRepo

    with _store(store) as st, st.session() as s:
        return commit(imp, PriceRepo(s))


def import_listings(
    path: str | Path,
    fmt: ListingFormat = ListingFormat(),
    *,
    preview: bool = False,
    store: Store | None = None,
    catalog: Any = None,
) -> tuple[ListingImport, list[PriceRecord]]:
    """Read a listings CSV and (unless `preview`) save its new rows, all in one transaction:
    a bad row anywhere imports nothing."""
    from forgeplanner.prices_import import commit, read_listings
    from forgeplanner.store.repos import PriceRepo

    with _store(store) as st, st.session() as s:
        repo = PriceRepo(s)
        imp = _read(path, fmt, _existing_keys(repo), catalog, read_listings)
        added = [] if preview else commit(imp, repo)
    return imp, added


def delete_observations(obs_ids: Sequence[int], store: Store | None = None) -> list[PriceRecord]:
    """Remove some of the user's price observations (shipped ones are catalog data, not the
    user's), all or none: an unknown id raises NotFoundError (listing the ids there are) and
    nothing is deleted. Returns what was removed."""
    from forgeplanner.store.repos import PriceRepo

    with _store(store) as st, st.session() as s:
        return PriceRepo(s).delete(list(dict.fromkeys(obs_ids)))
