"""Labs in the app: answers typed in the Labs tab, the lab run with them, answers saved into
the record later (progress), the record exported."""

from __future__ import annotations

import pytest

from forgeplanner.bench.builtin import BuiltinConfig
from forgeplanner.domain.units import MiB
from tests.ui.conftest import wait_idle
from ui.views.bench_view import create_view

SMALL = BuiltinConfig(array_bytes=16 * MiB, repetitions=2, matmul_n=256,
                      decode_weight_bytes=8 * MiB, decode_tokens=2)  # fmt: skip

OBSERVATIONS = """
[observations]
gpu-share = "Three quarters."
bandwidth-fraction = "Well below the advertised figure."
largest-fit = "qwen2.5-14b."
raised-limit = "qwen2.5-32b."
decode-bound = "A few tokens per second."
"""


@pytest.fixture
def view(qtbot, ctx):
    v = create_view(ctx)
    qtbot.addWidget(v)
    v.builtin_config = SMALL
    yield v
    v.shutdown()
    wait_idle(qtbot, ctx, 60000)


def test_answer_in_the_app_save_progress_and_export(qtbot, ctx, view, tmp_path) -> None:
    view.tabs.setCurrentIndex(view.tabs.count() - 1)
    view.lab_combo.setCurrentText("L-003")
    assert "[signoff]" in view.lab_prompts.toPlainText()
    view.lab_combo.setCurrentText("L-001")
    assert "[steps.raise-limit]" in view.lab_prompts.toPlainText()
    # a typo in the answers is one line in the status, and nothing runs
    view.lab_prompts.setPlainText('[observations]\nnope = "x"\n')
    view.start_lab()
    assert "observations.nope" in view.status_label.text() and view.worker is None
    view.lab_prompts.setPlainText(OBSERVATIONS)
    view.start_lab()
    wait_idle(qtbot, ctx, 120000)
    assert view.last_error is None, view.last_error
    assert view.last_result.body["status"] == "incomplete"
    assert "steps.raise-limit.done" in view.status_label.text()
    view.lab_prompts.setPlainText(
        '[steps.raise-limit]\ndone = false\nnote = "Not a Mac."\n' + OBSERVATIONS
    )
    view.save_lab_answers()
    wait_idle(qtbot, ctx, 60000)
    assert view.last_error is None, view.last_error
    assert view.last_result.body["status"] == "complete"
    assert "[skipped]" in view.lab_steps.item(4).text()
    out = view.export_lab_record(str(tmp_path / "l001.md"))
    assert "Three quarters." in out.read_text()
