"""Chart helpers shared by the views: pyqtgraph imported when the first plot is built, hover
tooltips, axes with units, legends outside the data.

pyqtgraph (with numpy) costs a few hundred milliseconds to import, so no view imports it at
module level: `pg()` imports it when a plot is first built (after the page's first paint), or
the shell's warm-up already did.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QPointF
from PySide6.QtGui import QCursor
from PySide6.QtWidgets import QToolTip

from ui import theme


def pg() -> Any:
    import pyqtgraph

    return pyqtgraph


def make_plot(
    object_name: str,
    *,
    left: tuple[str, str],
    bottom: tuple[str, str] | None = None,
    title: str = "",
    interactive: bool = False,
) -> Any:
    """A PlotWidget styled from the palette, with labelled axes ("label", "unit"): the unit is
    shown in brackets, e.g. "Decode (tokens/s)"."""
    plot = pg().PlotWidget()
    plot.setObjectName(object_name)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    if not interactive:
        plot.setMouseEnabled(False, False)
    item = plot.getPlotItem()
    if title:
        item.setTitle(title)
    item.setLabel("left", left[0], units=None)
    item.getAxis("left").setLabel(f"{left[0]} ({left[1]})" if left[1] else left[0])
    if bottom is not None:
        item.getAxis("bottom").setLabel(f"{bottom[0]} ({bottom[1]})" if bottom[1] else bottom[0])
    item.showGrid(x=bottom is not None, y=True, alpha=0.25)
    for name in ("left", "bottom"):
        # Major ticks and grid lines only: the minor grid doubles the lines pyqtgraph redraws
        # on every show of the page.
        item.getAxis(name).setStyle(maxTickLevel=0)
    theme.style_plot(plot)
    return plot


class HoverTips:
    """A tooltip that follows the mouse over a plot: `describe(x, y)` (data coordinates)
    returns the text for that spot, or None for no tooltip."""

    def __init__(self, plot: Any, describe: Callable[[float, float], str | None]) -> None:
        self.plot = plot
        self.describe = describe
        self.last: str | None = None
        plot.scene().sigMouseMoved.connect(self._moved)

    def _moved(self, pos: QPointF) -> None:
        vb = self.plot.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(pos):
            QToolTip.hideText()
            self.last = None
            return
        p = vb.mapSceneToView(pos)
        text = self.describe(p.x(), p.y())
        self.last = text
        if text:
            QToolTip.showText(QCursor.pos(), text, self.plot)
        else:
            QToolTip.hideText()

    def text_at(self, x: float, y: float) -> str | None:
        """What the tooltip says at data coordinates (x, y) (tests and keyboard users)."""
        return self.describe(x, y)


def nearest(points: list[tuple[float, float]], x: float, y: float, view: Any) -> int | None:
    """Index of the point nearest (x, y) in screen distance, if within 12 pixels."""
    if not points:
        return None
    vb = view.getPlotItem().vb
    (sx, sy) = vb.viewPixelSize()
    best, best_d = None, 12.0**2
    for i, (px, py) in enumerate(points):
        dx = (px - x) / (sx or 1.0)
        dy = (py - y) / (sy or 1.0)
        d = dx * dx + dy * dy
        if d <= best_d:
            best, best_d = i, d
    return best


__all__ = ["HoverTips", "make_plot", "nearest", "pg"]
