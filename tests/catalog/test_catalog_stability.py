"""Ids are a contract: plans, price imports and other features store them. Adding is fine
(extend these sets); renaming or removing an id must be a deliberate, reviewed change.
And random damage to a data file only ever gives a DataError."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from catalog import DATA_DIR, load_catalog
from forgeplanner.errors import DataError

CONFIG_IDS = {
    *(
        f"mac-mini-2012-{cpu}-{m}gb"
        for cpu in ("i5", "i7-2300mhz", "i7-2600mhz")
        for m in (4, 8, 16)
    ),
    *(f"mac-mini-2014-i5-1400mhz-{m}gb" for m in (4, 8, 16)),
    *(f"mac-mini-2014-{cpu}-{m}gb" for cpu in ("i5-2600mhz", "i5-2800mhz", "i7") for m in (8, 16)),
    *(f"mac-mini-2018-{cpu}-{m}gb" for cpu in ("i3", "i5", "i7") for m in (8, 16, 32, 64)),
    "mac-mini-m1-8c-8gb",
    "mac-mini-m1-8c-16gb",
    *(f"mac-mini-m2-10c-{m}gb" for m in (8, 16, 24)),
    *(f"mac-mini-m2-pro-{g}c-{m}gb" for g in (16, 19) for m in (16, 32)),
    *(f"mac-mini-m4-10c-{m}gb" for m in (16, 24, 32)),
    *(f"mac-mini-m4-pro-{g}c-{m}gb" for g in (16, 20) for m in (24, 48, 64)),
    *(f"mac-studio-m1-max-{g}c-{m}gb" for g in (24, 32) for m in (32, 64)),
    *(f"mac-studio-m1-ultra-{g}c-{m}gb" for g in (48, 64) for m in (64, 128)),
    # mac-studio-m2-max-30c-96gb was removed deliberately: Apple never sold 96GB with the
    # 30-core GPU (96GB needs the 38-core bin), so no plan can have a real machine of that id.
    *(f"mac-studio-m2-max-{g}c-{m}gb" for g in (30, 38) for m in (32, 64)),
    "mac-studio-m2-max-38c-96gb",
    *(f"mac-studio-m2-ultra-{g}c-{m}gb" for g in (60, 76) for m in (64, 128, 192)),
    "mac-studio-m4-max-32c-36gb",
    *(f"mac-studio-m4-max-40c-{m}gb" for m in (48, 64, 128)),
    "mac-studio-m3-ultra-60c-96gb",
    "mac-studio-m3-ultra-60c-256gb",
    *(f"mac-studio-m3-ultra-80c-{m}gb" for m in (96, 256, 512)),
    *(f"mac-mini-m6-12c-{m}gb" for m in (16, 24, 32)),
    *(f"mac-mini-m5-pro-16c-{m}gb" for m in (24, 48, 64)),
    "mac-studio-m5-max-32c-36gb",
    *(f"mac-studio-m5-max-40c-{m}gb" for m in (48, 64, 128)),
    "mac-studio-m5-ultra-64c-96gb",
    "mac-studio-m5-ultra-80c-256gb",
}

CHIP_IDS = {
    "m1-7c",
    "m1-8c",
    "m1-pro-14c",
    "m1-pro-16c",
    "m1-max-24c",
    "m1-max-32c",
    "m1-ultra-48c",
    "m1-ultra-64c",
    "m2-8c",
    "m2-10c",
    "m2-pro-16c",
    "m2-pro-19c",
    "m2-max-30c",
    "m2-max-38c",
    "m2-ultra-60c",
    "m2-ultra-76c",
    "m3-8c",
    "m3-10c",
    "m3-pro-14c",
    "m3-pro-18c",
    "m3-max-30c",
    "m3-max-40c",
    "m3-ultra-60c",
    "m3-ultra-80c",
    "m4-8c",
    "m4-10c",
    "m4-pro-16c",
    "m4-pro-20c",
    "m4-max-32c",
    "m4-max-40c",
    "m5-10c",
    "m5-pro-16c",
    "m5-pro-20c",
    "m5-max-32c",
    "m5-max-40c",
    "m5-ultra-64c",
    "m5-ultra-80c",
    "m6-12c",
    "intel-2012-i5",
    "intel-2012-i7-2300mhz",
    "intel-2012-i7-2600mhz",
    "intel-2014-i5-1400mhz",
    "intel-2014-i5-2600mhz",
    "intel-2014-i5-2800mhz",
    "intel-2014-i7",
    "intel-2018-i3",
    "intel-2018-i5",
    "intel-2018-i7",
}


def test_no_id_was_renamed_or_removed():
    cat = load_catalog()
    assert CONFIG_IDS <= set(cat.configs), sorted(CONFIG_IDS - set(cat.configs))
    assert CHIP_IDS <= set(cat.chips), sorted(CHIP_IDS - set(cat.chips))


_VALUE = re.compile(r"(?<=value = )[-0-9.]+")
_TEXTS = {
    name: (DATA_DIR / name).read_text(encoding="utf-8") for name in ("chips.toml", "machines.toml")
}
_SPOTS = [
    (name, m.start(), m.end()) for name, text in _TEXTS.items() for m in _VALUE.finditer(text)
]
JUNK = ['"12"', "-1", "0", "1e12", "true", "[1, 2]", "{}", "nan", "inf", "-inf", "1_000_000"]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spot=st.sampled_from(_SPOTS), junk=st.sampled_from(JUNK))
def test_damaged_numbers_give_a_data_error_or_load(tmp_path_factory, spot, junk):
    name, start, end = spot
    data = tmp_path_factory.mktemp("damaged") / "data"
    shutil.copytree(DATA_DIR, data)
    text = _TEXTS[name]
    Path(data / name).write_text(text[:start] + junk + text[end:], encoding="utf-8")
    try:
        cat = load_catalog(data)
    except DataError as err:
        assert err.file.endswith(name)
        assert "\n" not in str(err)
    else:  # the junk happened to be a sane value for that field
        assert cat.configs
