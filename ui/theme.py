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


# -- appearance: system, light or dark -----------------------------------------------------------
APPEARANCES = ("system", "light", "dark")
_system_style: str | None = None
_system_palette: QPalette | None = None


def _dark_palette() -> QPalette:
    """Fusion's dark palette (the colours Qt's own examples use for a dark Fusion theme),
    with disabled text dimmed so "unknown" cells and hints stay readable but quiet."""
    from PySide6.QtGui import QColor as C

    p = QPalette()
    window, base, text = C(45, 45, 48), C(30, 30, 32), C(230, 230, 230)
    roles = {
        QPalette.ColorRole.Window: window,
        QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base,
        QPalette.ColorRole.AlternateBase: C(40, 40, 43),
        QPalette.ColorRole.ToolTipBase: C(60, 60, 64),
        QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: C(140, 140, 140),
        QPalette.ColorRole.Text: text,
        QPalette.ColorRole.Button: window,
        QPalette.ColorRole.ButtonText: text,
        QPalette.ColorRole.BrightText: C(255, 90, 90),
        QPalette.ColorRole.Link: C(100, 170, 255),
        QPalette.ColorRole.Highlight: C(42, 110, 190),
        QPalette.ColorRole.HighlightedText: C(255, 255, 255),
        QPalette.ColorRole.Light: C(70, 70, 74),
        QPalette.ColorRole.Midlight: C(60, 60, 64),
        QPalette.ColorRole.Mid: C(50, 50, 54),
        QPalette.ColorRole.Dark: C(25, 25, 27),
        QPalette.ColorRole.Shadow: C(10, 10, 10),
    }
    for role, colour in roles.items():
        p.setColor(role, colour)
    dim = C(130, 130, 130)
    for role in (QPalette.ColorRole.Text, QPalette.ColorRole.WindowText,
                 QPalette.ColorRole.ButtonText):  # fmt: skip
        p.setColor(QPalette.ColorGroup.Disabled, role, dim)
    return p


def apply_appearance(mode: str) -> str:
    """Switch the whole app to "light", "dark" or back to the "system" look. Explicit light and
    dark use the Fusion style with a full palette, so they look the same on every platform
    (and offscreen, where there is no system theme); "system" restores what the app started
    with. Every view re-derives its colours on the palette change."""
    global _system_style, _system_palette
    from PySide6.QtWidgets import QApplication, QStyleFactory

    app = QApplication.instance()
    if app is None:
        return mode
    if mode not in APPEARANCES:
        mode = "system"
    if _system_style is None:
        _system_style = app.style().name()
        _system_palette = QPalette(app.palette())
    hints = app.styleHints()
    scheme = getattr(hints, "setColorScheme", None)  # Qt >= 6.8
    if mode == "system":
        app.setStyle(QStyleFactory.create(_system_style) or app.style())
        if scheme is not None:
            from PySide6.QtCore import Qt

            hints.setColorScheme(Qt.ColorScheme.Unknown)
        app.setPalette(_system_palette or app.style().standardPalette())
        return mode
    app.setStyle(QStyleFactory.create("Fusion"))
    if scheme is not None:
        from PySide6.QtCore import Qt

        hints.setColorScheme(Qt.ColorScheme.Dark if mode == "dark" else Qt.ColorScheme.Light)
    app.setPalette(_dark_palette() if mode == "dark" else app.style().standardPalette())
    return mode
