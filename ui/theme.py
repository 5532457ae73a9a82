"""Colours derived from the palette, so light and dark mode both read well.

Nothing here hard-codes a text or background colour. Verdict and series colours are hues mixed
with the palette's base colour at a fixed strength, so they stay readable on either background,
and plots take their background/foreground from the palette (and re-theme on palette change).
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QGuiApplication, QPalette

# Hues (0-359) for semantic colours; lightness comes from the palette.
VERDICT_HUES = {"fits": 120, "fits-with-raised-limit": 40, "does-not-fit": 0}
SERIES_HUES = {
    "weights": 210,
    "kv_cache": 150,
    "compute": 280,
    "runtime": 30,
    "os_reserve": 0,
}


def palette() -> QPalette:
    return QGuiApplication.palette()


def is_dark(pal: QPalette | None = None) -> bool:
    pal = pal or palette()
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


def mix(a: QColor, b: QColor, t: float) -> QColor:
    """a*(1-t) + b*t."""
    return QColor(
        round(a.red() * (1 - t) + b.red() * t),
        round(a.green() * (1 - t) + b.green() * t),
        round(a.blue() * (1 - t) + b.blue() * t),
    )


def tint(hue: int, strength: float = 0.35) -> QColor:
    """A background tint of `hue` over the palette base: keeps palette text readable."""
    base = palette().color(QPalette.ColorRole.Base)
    accent = QColor.fromHsl(hue, 200, 110 if is_dark() else 140)
    return mix(base, accent, strength)


def series_colour(hue: int) -> QColor:
    """A solid colour for plot series that contrasts with the plot background."""
    return QColor.fromHsl(hue, 170, 150 if is_dark() else 105)


def verdict_tint(verdict: str) -> QColor | None:
    hue = VERDICT_HUES.get(verdict)
    return None if hue is None else tint(hue)


def muted_text() -> QColor:
    return palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)


def text_colour() -> QColor:
    return palette().color(QPalette.ColorRole.Text)


def base_colour() -> QColor:
    return palette().color(QPalette.ColorRole.Base)


def style_plot(plot_widget: object) -> None:
    """Background and axes from the palette (pyqtgraph defaults to black/grey)."""
    import pyqtgraph as pg

    bg = base_colour()
    fg = text_colour()
    plot_widget.setBackground(bg)  # type: ignore[attr-defined]
    item = plot_widget.getPlotItem()  # type: ignore[attr-defined]
    pen = pg.mkPen(fg)
    for name in ("left", "bottom", "right", "top"):
        axis = item.getAxis(name)
        axis.setPen(pen)
        axis.setTextPen(pen)
    title = item.titleLabel
    if title is not None and title.text:
        title.setText(title.text, color=fg)
