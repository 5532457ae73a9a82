"""The price service (forgeplanner.services.prices) against the real user database (SQLite
with its Alembic migrations, in the test's own home): import (all or nothing), list, delete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from catalog import load_catalog
from forgeplanner.cli.main import main
from forgeplanner.errors import NotFoundError
from forgeplanner.prices_import import ImportError_
from forgeplanner.services.prices import (
    ListingFormat,
    PriceInputError,
    all_observations,
    commit_listings,
    delete_observations,
    import_listings,
    price_day,
    read_listings_file,
    user_price_observations,
)

CSV = """title,price,date,condition,source,config_id
Mac Studio,2899.00,2026-10-02,used,forum listing,mac-studio-m2-max-38c-96gb
Mac mini,1350,2026-10-05,used,local sale,mac-mini-m4-pro-20c-64gb
Odd one,400,2026-10-06,used,local sale,
"""


@pytest.fixture
def listings(tmp_path: Path) -> Path:
    path = tmp_path / "sold.csv"
    path.write_text(CSV, encoding="utf-8")
    return path


def test_price_day():
    assert price_day("2026-11-26") == "2026-11-26"
    assert len(price_day(None)) == 10
    with pytest.raises(PriceInputError, match=r"--as-of '26\.11\.2026': expected YYYY-MM-DD"):
        price_day("26.11.2026")


def test_preview_writes_nothing_then_commit_saves_and_lists(listings):
    imp = read_listings_file(listings)
    assert len(imp.new_rows) == 3
    assert user_price_observations() == ((), [])
    added = commit_listings(imp)
    assert len(added) == 3
    mine, notes = user_price_observations()
    # The row without a configuration is saved but cannot price one: counted in a note.
    assert [o.config_id for o in mine] == ["mac-studio-m2-max-38c-96gb", "mac-mini-m4-pro-20c-64gb"]
    assert all(o.origin == "user" and o.id.startswith("user-") for o in mine)
    assert notes == [
        "1 of your price observations name no catalog configuration or are not in USD; "
        "they are listed but not used for prices"
    ]
    shipped = load_catalog().price_observations
    assert all_observations() == tuple(shipped) + mine
    again, added_again = import_listings(listings)
    assert added_again == [] and len(again.duplicates) == 3


def test_a_bad_row_imports_nothing(listings):
    listings.write_text(CSV + "Broken,abc,2026-10-07,used,x,\n", encoding="utf-8")
    with pytest.raises(ImportError_, match="line 5"):
        import_listings(listings, ListingFormat())
    assert user_price_observations() == ((), [])


def test_delete_observations_all_or_none(listings, capsys):
    _, added = import_listings(listings)
    first, second, third = added
    # An unknown id anywhere: nothing is deleted.
    with pytest.raises(NotFoundError, match=f"unknown price observation '{third.id + 100}'"):
        delete_observations([first.id, third.id + 100])
    assert len(user_price_observations()[0]) == 2
    assert delete_observations([first.id, first.id]) == [first]  # a repeated id counts once
    assert [o.id for o in user_price_observations()[0]] == [f"user-{second.id}"]
    with pytest.raises(NotFoundError, match=f"unknown price observation '{first.id}'"):
        delete_observations([first.id])
    # The command takes the ids `prices list` shows.
    assert main(["prices", "delete", f"user-{second.id}", str(third.id), "--json"]) == 0
    deleted = json.loads(capsys.readouterr().out)["deleted"]
    assert [d["id"] for d in deleted] == [second.id, third.id]
    assert user_price_observations() == ((), [])
    assert main(["prices", "delete", "shipped-obs-1"]) == 2
    assert "is not one of your observations' ids" in capsys.readouterr().err
