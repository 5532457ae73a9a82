"""CSV listing import: column mapping, locale-aware numbers and dates, currency conversion,
title matching, duplicates, preview, line-numbered errors and all-or-nothing commits."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from catalog import load_catalog
from forgeplanner.cli.main import main
from forgeplanner.prices_import import (
    ImportError_,
    match_title,
    match_title_details,
    parse_amount,
    parse_condition,
    parse_date,
    read_listings,
)

TODAY = dt.date(2026, 11, 26)

GERMAN = """Titel;Verkauft für;Währung;Datum;Zustand;Quelle
Mac mini M4 16GB 256GB;529,00;USD;02.10.2026;Gebraucht;ebay.com
Apple Mac mini M4 Pro 14-core 20-core GPU 64GB 1TB;1.899,00;EUR;12.10.2026;Pre-owned;ebay.de
Mac Studio M2 Ultra 76-core GPU 192GB;4.450,00;EUR;01.11.2026;Refurbished;ebay.de
Mac mini 2018 i7 32GB;450;USD;30.09.2026;used;ebay.com
Mac mini M4 16GB 256GB;529,00;USD;02.10.2026;Gebraucht;ebay.com
Mac mini M2;300,00;USD;01.09.2026;used;ebay.com
"""
GERMAN_MAP = [
    "--map",
    "title=Titel",
    "--map",
    "price=Verkauft für",
    "--map",
    "currency=Währung",
    "--map",
    "date=Datum",
    "--map",
    "condition=Zustand",
    "--map",
    "source=Quelle",
]


@pytest.mark.parametrize(
    ("text", "decimal", "value", "code"),
    [
        ("1299", ".", 1299.0, None),
        ("$1,299.00", ".", 1299.0, "USD"),
        ("1.299,00 €", ".", 1299.0, "EUR"),
        ("1 299,50", ",", 1299.5, None),
        ("899,99", ".", 899.99, None),  # two decimals after a lone comma are cents
        ("1,299", ".", 1299.0, None),
        ("1,299", ",", 1.299, None),
        ("GBP 450", ".", 450.0, "GBP"),
        ("£450", ".", 450.0, "GBP"),
        ("2.549", ",", 2549.0, None),
    ],
)
def test_parse_amount(text, decimal, value, code):
    assert parse_amount(text, decimal) == (pytest.approx(value), code)


@pytest.mark.parametrize("bad", ["", "abc", "12-34", "1.2.3,4.5"])
def test_parse_amount_rejects(bad):
    with pytest.raises(ValueError):
        parse_amount(bad)


@given(st.integers(min_value=1, max_value=99_999_99))
def test_amounts_round_trip_in_both_locales(cents):
    value = cents / 100
    en = f"{value:,.2f}"
    de = en.replace(",", "_").replace(".", ",").replace("_", ".")
    assert parse_amount(en, ".")[0] == pytest.approx(value)
    assert parse_amount(de, ",")[0] == pytest.approx(value)


def test_parse_date_and_condition():
    assert parse_date("2026-02-18", False, TODAY) == dt.date(2026, 2, 18)
    assert parse_date("02/03/2026", False, TODAY) == dt.date(2026, 2, 3)
    assert parse_date("02/03/2026", True, TODAY) == dt.date(2026, 3, 2)
    with pytest.raises(ValueError, match="future"):
        parse_date("2027-01-01", False, TODAY)
    with pytest.raises(ValueError, match="not a date"):
        parse_date("yesterday-ish", False, TODAY)
    assert parse_condition("Pre-owned") == "used"
    assert parse_condition("Certified Refurbished") == "refurbished"
    assert parse_condition("Neu") == "new"
    with pytest.raises(ValueError, match="not a working machine"):
        parse_condition("For parts or not working")


def test_match_title_never_guesses():
    cat = load_catalog()
    assert match_title("Mac mini M4 Pro 20-core GPU 64GB", cat) == "mac-mini-m4-pro-20c-64gb"
    assert match_title("Mac Studio M3 Ultra 512GB 8TB", cat) == "mac-studio-m3-ultra-80c-512gb"
    assert match_title("Mac mini 2018 i7 32GB", cat) == "mac-mini-2018-i7-32gb"
    assert match_title("Mac mini M4 Pro 64GB", cat) is None  # 16c or 20c GPU? ambiguous
    assert match_title("Mac mini M2", cat) is None  # memory not given
    assert match_title("ThinkPad 32GB", cat) is None


@pytest.mark.parametrize(
    ("title", "config_id", "storage"),
    [
        ("M2 Ultra 76C 192GB", "mac-studio-m2-ultra-76c-192gb", None),
        ("Mac Studio M2 Ultra 24C/76C 192GB 2TB", "mac-studio-m2-ultra-76c-192gb", 2000),
        ("Apple Mac Studio M2 Ultra 76-core GPU 192GB", "mac-studio-m2-ultra-76c-192gb", None),
        ("Mac Studio M2 Ultra 76-core 128GB 1TB SSD", "mac-studio-m2-ultra-76c-128gb", 1000),
        # titles as listed on eBay (2026-06-19) and Apple's refurbished store
        (
            "Apple Mac Studio M1 Max Chip A2615 10C CPU 32C GPU 64GB RAM 1TB SSD 10GBE In BOX",
            "mac-studio-m1-max-32c-64gb",
            1000,
        ),
        (
            "Apple Mac Studio M3 Ultra, 512GB RAM, 2TB SSD, 32-Core 80-Core GPU",
            "mac-studio-m3-ultra-80c-512gb",
            2000,
        ),
        (
            "Mac Studio M3 Ultra, 96GB RAM, 28Core CPU, 1TB SSD",
            "mac-studio-m3-ultra-60c-96gb",
            1000,
        ),
        (
            "Apple Mac Studio M4 Max 32-Core 36GB RAM 512GB SSD 10GbE 2025",
            "mac-studio-m4-max-32c-36gb",
            512,
        ),
        (
            "Refurbished Mac mini Apple M4 Pro Chip with 12‑Core CPU and 16‑Core GPU, 24GB, 512GB",
            "mac-mini-m4-pro-16c-24gb",
            512,
        ),
        ("Refurbished Mac mini 3.2GHz 6-core Intel Core i7 32GB", "mac-mini-2018-i7-32gb", None),
        ("Mac Studio M5 Max 40-core GPU 128GB", "mac-studio-m5-max-40c-128gb", None),
    ],
)
def test_match_real_listing_titles(title, config_id, storage):
    m = match_title_details(title, load_catalog())
    assert (m.config_id, m.storage_gb) == (config_id, storage)


@pytest.mark.parametrize(
    ("title", "why"),
    [
        ("Mac Studio M2 Ultra 192GB", "ambiguous between"),  # 60- or 76-core GPU?
        ("APPLE MAC STUDIO | APPLE M2 MAX | 512GB | 32GB", "ambiguous between"),
        ("Mac Studio M2 Ultra 24C/60C 196GB 2TB", "no memory size"),  # 196GB: a typo, no guess
        ("Refurbished Mac mini Intel", "no CPU, clock or year"),
    ],
)
def test_unmatched_titles_say_why(title, why):
    m = match_title_details(title, load_catalog())
    assert m.config_id is None and why in m.reason


def test_read_listings_german_export(tmp_path):
    path = tmp_path / "sold.csv"
    path.write_text(GERMAN, encoding="utf-8")
    mapping = {k.split("=")[0]: k.split("=", 1)[1] for k in GERMAN_MAP[1::2]}
    imp = read_listings(
        path, mapping=mapping, fx={"EUR": 1.08}, decimal=",", dayfirst=True, today=TODAY
    )
    rows = {r.line: r for r in imp.rows}
    assert rows[3].config_id == "mac-mini-m4-pro-20c-64gb" and rows[3].currency == "EUR"
    assert rows[3].storage_gb == 1000  # "64GB 1TB": the storage is read from the title
    assert rows[7].match_reason.startswith("no memory size")
    assert rows[3].price_usd == pytest.approx(1899 * 1.08)
    assert "EUR 1,899.00 at 1.08 USD/EUR" in rows[3].source
    assert rows[2].date == dt.date(2026, 10, 2) and rows[2].condition == "used"
    assert rows[6].duplicate_of == "line 2"
    assert rows[7].config_id is None and rows[7].match == "unmatched"
    assert len(imp.new_rows) == 5


def test_every_bad_row_is_reported_with_its_line(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(
        "title,price,date,condition\n"
        "Mac mini M4 16GB,529,2026-10-02,used\n"
        "Mac mini M4 24GB,,2026-10-02,used\n"
        "Mac mini M4 32GB,abc,2026-10-02,used\n"
        "Mac mini M4 16GB,529,2031-01-01,used\n"
        "Mac mini M4 16GB,529 EUR,2026-10-02,used\n"
        "Mac mini M4 16GB,529,2026-10-02,for parts\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportError_) as err:
        read_listings(path, today=TODAY)
    lines = [p.split(":")[0] for p in err.value.problems]
    assert lines == ["line 3", "line 4", "line 5", "line 6", "line 7"]
    assert "no exchange rate for EUR" in str(err.value)


def test_missing_columns_and_bad_map(tmp_path):
    from forgeplanner.errors import DataError

    path = tmp_path / "x.csv"
    path.write_text("name,amount\nMac mini M4 16GB,529\n", encoding="utf-8")
    with pytest.raises(DataError, match="missing date, condition"):
        read_listings(path, today=TODAY)
    with pytest.raises(DataError, match="no such column"):
        read_listings(path, mapping={"date": "When"}, today=TODAY)


def _import(capsys, *argv):
    code = main(["prices", "import", *argv, "--json"])
    out = capsys.readouterr()
    return code, (json.loads(out.out) if code == 0 else out.err)


def test_cli_preview_commit_duplicates_and_all_or_nothing(tmp_path, capsys):
    path = tmp_path / "sold.csv"
    path.write_text(GERMAN, encoding="utf-8")
    args = [str(path), *GERMAN_MAP, "--decimal", ",", "--dayfirst"]
    # Without an EUR rate two rows are bad: nothing is written.
    code, err = _import(capsys, *args)
    assert code == 2 and "line 3: no exchange rate for EUR" in err and "nothing imported" in err
    assert main(["prices", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["observations"]
    assert not [o for o in listed if o["origin"] == "user"]
    code, preview = _import(capsys, *args, "--fx", "EUR=1.08", "--preview")
    assert code == 0 and preview["preview"] and preview["imported"] == 0 and preview["new"] == 5
    code, done = _import(capsys, *args, "--fx", "EUR=1.08")
    assert (done["imported"], done["duplicates"], done["unmatched"]) == (5, 1, 1)
    code, again = _import(capsys, *args, "--fx", "EUR=1.08")
    assert again["imported"] == 0 and again["duplicates"] == 6
    assert all(r["duplicate_of"] for r in again["rows"])
    assert main(["prices", "list", "--config", "mac-studio-m2-ultra-76c-192gb", "--json"]) == 0
    mine = json.loads(capsys.readouterr().out)["observations"]
    assert [o["price_usd"] for o in mine] == [pytest.approx(4450 * 1.08)]
    # The user's observation now prices the configuration for the recommender and `show`.
    assert (
        main(["prices", "show", "mac-studio-m2-ultra-76c-192gb", "--today", "2026-11-26", "--json"])
        == 0
    )
    shown = json.loads(capsys.readouterr().out)
    assert shown["used"]["basis"] == "observed" and shown["used"]["count"] == 1
    assert shown["used"]["price_usd"] == pytest.approx(4806.0)


def test_cli_table_output(tmp_path, capsys):
    path = tmp_path / "one.csv"
    path.write_text(
        "title,price,date,condition\nMac mini M4 16GB,529,2026-10-02,used\n", encoding="utf-8"
    )
    assert main(["prices", "import", str(path), "--preview"]) == 0
    out = capsys.readouterr().out
    assert "would import 1 row(s)" in out and "mac-mini-m4-10c-16gb" in out
    assert main(["prices", "show", "mac-mini-m4-10c-32gb"]) == 0
    assert "unknown" in capsys.readouterr().out
