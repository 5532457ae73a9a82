"""The three labs as protocols: listed, shown with their answer keys, answers files checked."""

from __future__ import annotations

import json

import pytest

from forgeplanner.cli.main import main
from forgeplanner.errors import DataError
from forgeplanner.labs import LABS, get_lab
from forgeplanner.labs.answers import parse_answers, template


def test_lab_list_json_lists_all_three(capsys):
    assert main(["lab", "list", "--json"]) == 0
    labs = json.loads(capsys.readouterr().out)["labs"]
    assert [lab["id"] for lab in labs] == ["L-001", "L-002", "L-003"]
    for lab in labs:
        assert lab["answer_keys"] and lab["observations"][0]["key"]
        assert all(s["commands"] or not s["command"] for s in lab["steps"])


@pytest.mark.parametrize("lab_id", ["L-001", "L-002", "L-003"])
def test_lab_show_lists_the_keys_and_the_template_parses(lab_id, capsys):
    lab = get_lab(lab_id)
    assert main(["lab", "show", lab_id]) == 0
    text = capsys.readouterr().out
    for k in lab.answer_keys():
        assert k["key"] in text
    for step_ in lab.steps:
        for cmd in step_.commands:
            assert f"$ {cmd.text}" in text
    assert main(["lab", "show", lab_id, "--template"]) == 0
    tmpl = capsys.readouterr().out
    answers = parse_answers(tmpl.encode(), lab, "template.toml")  # an unfilled template is valid
    assert answers.observations == {} and answers.signoff == {}
    assert lab.signoff == (lab_id == "L-003")


@pytest.mark.parametrize(
    ("text", "field", "problem"),
    [
        ('[observatons]\nx = "y"\n', "observatons", "unknown table"),
        ('[observations]\nnope = "y"\n', "observations.nope", "no such prompt"),
        ("[observations]\ngpu-share = 3\n", "observations.gpu-share", "must be a text"),
        ("[steps.bandwidth]\ndone = true\n", "steps.bandwidth", "not a manual step of L-001"),
        ('[steps.raise-limit]\ndone = "yes"\n', "steps.raise-limit.done", "true or false"),
        ("[steps.raise-limit]\ndone = false\n", "steps.raise-limit.note", "say why"),
        ("[sheet]\ncopy_gbps = 5\n", "sheet.copy_gbps", "not a field you fill"),
        ('[signoff]\nwho = "a"\n', "signoff", "unknown table"),
        ("[observations\n", "(syntax)", "not valid TOML"),
    ],
)
def test_bad_answers_are_one_line_naming_file_key_value(text, field, problem):
    with pytest.raises(DataError) as exc:
        parse_answers(text.encode(), LABS["L-001"], "answers.toml")
    msg = str(exc.value)
    assert msg.startswith(f"answers.toml: field '{field}'") and problem in msg
    assert "\n" not in msg


def test_signoff_needs_who_and_why():
    with pytest.raises(DataError, match=r"signoff\.why"):
        parse_answers(b'[signoff]\nwho = "Ada"\n', LABS["L-003"], "a.toml")
    a = parse_answers(b'[signoff]\nwho = "Ada"\nwhy = "ok"\n', LABS["L-003"], "a.toml")
    assert a.signoff == {"who": "Ada", "why": "ok"}
    assert "[signoff]" in template(LABS["L-003"])


def test_table_valued_sheet_fields_render_as_tables_in_reading_order():
    from forgeplanner.export.lab_report import sheet_cell, sheet_tables

    # as stored: canonical JSON sorts the keys of every row
    ladder = [
        {"decode_tps": 41.5, "error_decode_pct": -3.2, "estimate_decode_tps": 40.2,
         "model": "qwen2.5-0.5b", "quant": "Q4_0", "run_id": 7},
    ]  # fmt: skip
    assert sheet_cell(ladder) == "1 rows (table below)"
    assert sheet_cell({"Q4_K_M": 39.591}) == "Q4_K_M: 39.59"
    [(label, table)] = sheet_tables({"ladder": ladder, "chip": "M2"}, {"ladder": "Ladder"})
    assert label == "Ladder"
    assert table.headers == (
        "model", "quant", "run_id", "decode_tps", "estimate_decode_tps", "error_decode_pct",
    )  # fmt: skip
    assert table.rows == (("qwen2.5-0.5b", "Q4_0", "7", "41.5", "40.2", "-3.2"),)
