"""`forgeplanner gui --view KEY --screenshot PATH` renders each view offscreen and exits; bare
`forgeplanner` starts the GUI through `start_gui(None)`. The timing goal (3 s from process
start) is measured by benchmarks/bench_ui_startup.py, not asserted here."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from PySide6.QtGui import QImage

from forgeplanner.cli import gui_cmd, main
from ui.views import VIEW_KEYS


@pytest.mark.parametrize("key", VIEW_KEYS)
def test_screenshot_of_every_view(key, tmp_path, _isolated_home):
    out = tmp_path / f"{key}.png"
    env = dict(os.environ, FORGEPLANNER_HOME=str(_isolated_home))
    env.pop("QT_QPA_PLATFORM", None)  # the command must choose offscreen by itself
    proc = subprocess.run(
        [sys.executable, "-m", "forgeplanner", "gui", "--view", key, "--screenshot", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    image = QImage(str(out))
    assert (image.width(), image.height()) == (1280, 800)
    # not a blank image: the sidebar, tables and plots give many distinct colours
    colours = {image.pixel(x, y) for x in range(0, 1280, 16) for y in range(0, 800, 16)}
    assert len(colours) > 5


def test_screenshot_into_missing_directory_is_one_line_error(tmp_path, capsys):
    code = main.main(["gui", "--screenshot", str(tmp_path / "nope" / "x.png")])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("forgeplanner: error: screenshot directory does not exist")


def test_unknown_view_is_refused(capsys):
    assert main.main(["gui", "--view", "nope"]) == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_bare_forgeplanner_starts_the_gui(monkeypatch):
    import ui.app

    calls: list = []
    monkeypatch.setattr(ui.app, "run", lambda view=None, screenshot=None: calls.append(view) or 0)
    assert main.main([]) == 0
    assert calls == [None]
    assert gui_cmd.start_gui("fit") == 0
    assert calls == [None, "fit"]
