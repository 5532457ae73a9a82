"""The committed published-runs dataset: current, sourced, and consistent with its inputs.

The dataset is rebuilt from the committed input tables and lookups; a change to any of them
without a rebuild (scripts/build_published_runs.py) fails here, and so does a row without a
URL that finds it again.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from forgeplanner.calibration.runs_dataset import (
    COLUMNS,
    DATA_DIR,
    DATASET_PATH,
    LOOKUPS_DIR,
    SOURCES_DIR,
    build_dataset,
    render_csv,
)
from forgeplanner.calibration.runs_inputs import INPUT_TABLES, read_inputs
from forgeplanner.calibration.runs_lookups import load_lookups
from forgeplanner.calibration.runs_runtime import RUNTIMES
from forgeplanner.calibration.runs_summary import BEGIN, END, replace_block, summary_markdown
from forgeplanner.errors import DataError

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "published-runs.md"

# Every exclusion reason starts with one of these.
REASON_PREFIXES = (
    "duplicate of ",
    "runtime other than the five",
    "unknown chip",
    "not Apple Silicon",
    "backend other than Metal",
    "batch>1",
    "speculative decoding",
    "end-to-end rate",
    "impossible value",
    "fork-only quantization",
    "anomaly",
    "derived value",
)


@pytest.fixture(scope="module")
def built() -> pd.DataFrame:
    return build_dataset()


@pytest.fixture(scope="module")
def committed() -> pd.DataFrame:
    return pd.read_csv(DATASET_PATH, dtype=str, keep_default_na=False)


def test_committed_dataset_is_the_rebuilt_one(built: pd.DataFrame) -> None:
    text = DATASET_PATH.read_text(encoding="utf-8")
    assert render_csv(built) == text, (
        "published_runs.csv is stale: run scripts/build_published_runs.py"
    )


def test_documented_counts_are_the_rebuilt_ones(built: pd.DataFrame) -> None:
    document = DOC.read_text(encoding="utf-8")
    assert BEGIN in document and END in document
    assert replace_block(document, summary_markdown(built)) == document, (
        "docs/published-runs.md counts are stale: run scripts/build_published_runs.py"
    )


def test_every_row_has_a_source_that_finds_it_again(committed: pd.DataFrame) -> None:
    assert list(committed.columns) == list(COLUMNS)
    assert committed["row_id"].is_unique
    bad_url = committed[~committed["source_url"].str.match(r"https?://[^\s]+\.[^\s]+")]
    assert bad_url.empty, bad_url[["row_id", "source_url"]].head().to_string()
    assert set(committed["source_quality"]) <= {"high", "medium", "low"}
    # Each row points at the input line it came from.
    raw = read_inputs(SOURCES_DIR)
    keys = set(zip(raw["input_file"], raw["input_row_id"], strict=True))
    rows = set(zip(committed["input_file"], committed["input_row_id"], strict=True))
    assert rows == keys, "every input row is in the dataset exactly once, and nothing else"


def test_fields_are_normalised(committed: pd.DataFrame) -> None:
    runtimes = set(committed["runtime"])
    assert all(r in RUNTIMES or r.startswith("other:") for r in runtimes)
    assert set(committed["kind"]) == {"prefill", "decode"}
    tps = pd.to_numeric(committed["tokens_per_s"])
    assert (tps > 0).all()
    for col in ("gpu_cores", "memory_gb", "depth", "prompt_tokens", "gen_tokens", "batch"):
        values = committed[col][committed[col] != ""]
        assert values.str.fullmatch(r"\d+").all(), col
    dates = committed["date"][committed["date"] != ""]
    assert dates.str.fullmatch(r"\d{4}(-(0[1-9]|1[0-2])(-\d\d)?)?").all()
    builds = committed["llamacpp_build"][committed["llamacpp_build"] != ""]
    versions = committed.loc[builds.index, "runtime_version"]
    assert all(v.startswith(f"b{b}") for b, v in zip(builds, versions, strict=True))
    assert set(committed["moe"]) <= {"moe", "dense", ""}
    # A GPU core count is stated or follows from chip, product and memory; never a guess.
    filled = committed[committed["gpu_cores"] != ""]
    assert filled["gpu_cores_basis"].str.match(r"stated|only bin sold as ").all()


def test_every_exclusion_has_a_known_reason(committed: pd.DataFrame) -> None:
    reasons = committed["exclude_reason"][committed["exclude_reason"] != ""]
    for text in reasons:
        for reason in text.split("; "):
            assert reason.startswith(REASON_PREFIXES), reason


def test_fit_rows_are_apple_silicon_runs_of_the_five_runtimes(committed: pd.DataFrame) -> None:
    fit = committed[committed["exclude_reason"] == ""]
    assert len(fit) > 1000
    assert set(fit["runtime"]) <= set(RUNTIMES)
    assert fit["chip"].str.fullmatch(r"M[1-5]( Pro| Max| Ultra)?").all()
    assert not (pd.to_numeric(fit["batch"].replace("", "1")) > 1).any()


def test_every_copy_is_named_by_its_primary(committed: pd.DataFrame) -> None:
    copies = committed["exclude_reason"].str.startswith("duplicate of ").sum()
    named = committed["copies"].str.count(r" \(").sum()
    assert copies == named


def test_duplicates_point_at_a_primary_that_names_them(committed: pd.DataFrame) -> None:
    by_id = committed.set_index("row_id")
    copies = committed[committed["exclude_reason"].str.startswith("duplicate of ")]
    assert len(copies) > 100
    for _, row in copies.iterrows():
        primary_id = re.match(r"duplicate of ([^;\s]+)", row["exclude_reason"]).group(1)
        primary = by_id.loc[primary_id]
        assert not primary["exclude_reason"].startswith("duplicate of ")
        assert f"{row['row_id']} (" in primary["copies"]
        assert primary["chip"] == row["chip"] and primary["kind"] == row["kind"]
        # Equal, or one printed more coarsely (1200.92 copied as 1201).
        assert abs(float(primary["tokens_per_s"]) - float(row["tokens_per_s"])) <= 0.5


def test_mapped_models_are_database_ids_and_unmapped_ones_say_why(
    committed: pd.DataFrame,
) -> None:
    ids = {m.id for m in load_lookups(LOOKUPS_DIR).models}
    mapped = committed[committed["model_id"] != ""]
    assert set(mapped["model_id"]) <= ids
    unmapped = committed[committed["model_id"] == ""]
    assert unmapped["model_mapping"].str.startswith("unmapped: ").all()
    assert (committed["model_name"] != "").all()


def test_every_curated_lookup_entry_is_used(committed: pd.DataFrame) -> None:
    lookups = load_lookups(LOOKUPS_DIR)
    names = set(committed["model_name"].str.lower())
    unused = [n.model_name for n in lookups.model_names if n.model_name.lower() not in names]
    assert not unused, f"model_names.csv entries no row uses: {unused[:5]}"


def test_no_development_machine_path_in_the_data() -> None:
    pattern = re.compile(r"(?<![\w.])/(work|tmp|root|home)/")
    for path in DATA_DIR.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            found = pattern.search(text)
            assert found is None, f"{path.name}: {text[found.start() - 40 : found.end() + 40]}"


def _copy_inputs(tmp_path: Path) -> tuple[Path, Path]:
    sources = tmp_path / "sources"
    lookups = tmp_path / "lookups"
    shutil.copytree(SOURCES_DIR, sources)
    shutil.copytree(LOOKUPS_DIR, lookups)
    return sources, lookups


def test_a_changed_input_makes_the_committed_dataset_stale(tmp_path: Path) -> None:
    sources, lookups = _copy_inputs(tmp_path)
    table = sources / "lc4167.csv"
    frame = pd.read_csv(table, dtype=str, keep_default_na=False)
    frame.loc[0, "tokens_per_s"] = "999.99"
    frame.to_csv(table, index=False)
    rebuilt = render_csv(build_dataset(sources, lookups))
    assert rebuilt != DATASET_PATH.read_text(encoding="utf-8")
    assert ",999.99," in rebuilt


def test_a_row_without_a_url_is_refused_naming_file_field_and_row(tmp_path: Path) -> None:
    sources, lookups = _copy_inputs(tmp_path)
    table = sources / "mlx.csv"
    frame = pd.read_csv(table, dtype=str, keep_default_na=False)
    row_id = frame.loc[5, "row_id"]
    frame.loc[5, "source_url"] = ""
    frame.to_csv(table, index=False)
    with pytest.raises(DataError) as err:
        build_dataset(sources, lookups)
    assert str(err.value) == f"mlx.csv: field 'source_url' = '{row_id}': row has no URL"


def test_a_missing_input_file_or_column_is_one_clear_line(tmp_path: Path) -> None:
    sources, lookups = _copy_inputs(tmp_path)
    (sources / INPUT_TABLES[2].file).unlink()
    with pytest.raises(DataError, match=r"^mlx\.csv: field '\(file\)'"):
        build_dataset(sources, lookups)
    sources, lookups = _copy_inputs(tmp_path / "again")
    table = sources / "peer_projects.csv"
    frame = pd.read_csv(table, dtype=str, keep_default_na=False)
    frame.drop(columns=["tokens_per_s"]).to_csv(table, index=False)
    with pytest.raises(DataError, match=r"^peer_projects\.csv: field 'tokens_per_s'"):
        build_dataset(sources, lookups)


def test_a_row_flag_that_matches_no_row_is_refused(tmp_path: Path) -> None:
    sources, lookups = _copy_inputs(tmp_path)
    flags = lookups / "row_flags.csv"
    flags.write_text(
        flags.read_text(encoding="utf-8") + "mlx.csv,mlx-99999,,,anomaly,test\n", encoding="utf-8"
    )
    with pytest.raises(DataError, match=r"row_flags\.csv: field 'input_row_id' = 'mlx-99999'"):
        build_dataset(sources, lookups)


def test_a_curated_name_must_map_to_a_database_id(tmp_path: Path) -> None:
    sources, lookups = _copy_inputs(tmp_path)
    names = lookups / "model_names.csv"
    names.write_text(
        names.read_text(encoding="utf-8") + "made-up,,,no-such-model,exact,test\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"model_names\.csv: field 'model_id' = 'no-such-model'"):
        build_dataset(sources, lookups)
