"""`forgeplanner gui [--view KEY] [--screenshot PATH]`: the desktop app.

The command line is the top layer: it starts the desktop app, so it may import `ui`, but only
inside the handlers, so that every other command (and `--help`) runs without Qt.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

# Kept in sync with ui.views.VIEWS (tests check it); duplicated here so `--help` needs no Qt.
VIEW_CHOICES: tuple[str, ...] = (
    "hardware",
    "models",
    "fit",
    "recommend",
    "cluster",
    "platform",
    "bench",
    "plan",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "gui",
        help="start the desktop app",
        description="Start the desktop app, or render one view to a PNG and exit.",
    )
    p.add_argument("--view", choices=VIEW_CHOICES, help="view to open (default: the last one)")
    p.add_argument(
        "--screenshot",
        metavar="PATH",
        help="render the view offscreen to this PNG and exit (no window on screen)",
    )
    p.set_defaults(func=_handle)


def _handle(args: argparse.Namespace) -> int:
    if args.screenshot:
        return screenshot(args.view, args.screenshot)
    return start_gui(args.view)


def start_gui(view: str | None) -> int:
    from ui import app

    return int(app.run(view=view))


def screenshot(view: str | None, path: str) -> int:
    # Offscreen unless the caller chose a platform (xvfb-run with QT_QPA_PLATFORM=xcb renders
    # through a real X server for README screenshots).
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    out = Path(path)
    if out.parent and not out.parent.exists():
        from forgeplanner.errors import ForgePlannerError

        raise ForgePlannerError(f"screenshot directory does not exist: {out.parent}")
    from ui import app

    return int(app.run(view=view or "hardware", screenshot=str(out)))
