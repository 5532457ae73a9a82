"""The view registry: one entry per sidebar page.

Each view lives in its own module `ui.views.<module_name>` and exposes

    create_view(ctx: ui.context.AppContext) -> QWidget

The shell imports a view module only when its page is first shown (fast start). A module that
does not exist yet shows a "coming" placeholder page, so a developer adds a view by creating its
module; nobody edits this file or the shell for that. See docs/gui.md, "Adding a view".
"""

from __future__ import annotations

from typing import NamedTuple


class ViewEntry(NamedTuple):
    key: str  # stable id: CLI `gui --view KEY`, QSettings "last view"
    title: str  # sidebar label
    module_name: str  # module under ui.views


VIEWS: list[ViewEntry] = [
    ViewEntry("hardware", "Hardware", "hardware_view"),
    ViewEntry("models", "Models", "models_view"),
    ViewEntry("fit", "Fit", "fit_view"),
    ViewEntry("formac", "Models for my Mac", "formac_view"),
    ViewEntry("recommend", "Recommend", "recommend_view"),
    ViewEntry("cluster", "Cluster", "cluster_view"),
    ViewEntry("platform", "Platform (K3s)", "platform_view"),
    ViewEntry("bench", "Benchmarks", "bench_view"),
    ViewEntry("plan", "Plan", "plan_view"),
]

VIEW_KEYS: tuple[str, ...] = tuple(v.key for v in VIEWS)


def view_entry(key: str) -> ViewEntry:
    for entry in VIEWS:
        if entry.key == key:
            return entry
    raise KeyError(f"unknown view '{key}'; valid: {', '.join(VIEW_KEYS)}")
