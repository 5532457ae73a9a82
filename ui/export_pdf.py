"""Plan -> PDF with Qt's own PDF writer (QPdfWriter + QTextDocument), no extra toolchain.

The report is the same HTML the HTML export writes, with each SVG chart rendered to an image
resource (Qt's rich text has no SVG element). Called by `forgeplanner export --format pdf`
through `forgeplanner.export.render` (imported by name: the core never imports Qt) and by the
plan view's export button.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from PySide6.QtCore import QByteArray, QMarginsF, QSizeF, QUrl
from PySide6.QtGui import (
    QGuiApplication,
    QImage,
    QPageLayout,
    QPageSize,
    QPainter,
    QPdfWriter,
    QTextDocument,
)
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import QApplication

from forgeplanner.domain.plan import Plan
from forgeplanner.export.charts import all_charts
from forgeplanner.export.html import render_html

_APP: QApplication | None = None


def _ensure_app() -> None:
    """Qt's text layout needs an application object; the CLI has none, so make one (offscreen
    without a display). A QApplication, not a QGuiApplication: whoever comes later in the same
    process (the GUI, pytest-qt) needs the widgets kind and Qt allows only one."""
    global _APP
    if QGuiApplication.instance() is not None:
        return
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    _APP = QApplication([sys.argv[0] if sys.argv else "forgeplanner"])


def _svg_image(svg: str, scale: float = 2.0) -> QImage:
    renderer = QSvgRenderer(QByteArray(svg.encode("utf-8")))
    size = renderer.defaultSize()
    image = QImage(int(size.width() * scale), int(size.height() * scale), QImage.Format_ARGB32)
    image.fill(0xFFFFFFFF)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    image.setDevicePixelRatio(scale)
    return image


def write_pdf(plan: Plan, path: str | Path) -> None:
    _ensure_app()
    doc = QTextDocument()
    for name, svg in all_charts(plan).items():
        doc.addResource(
            QTextDocument.ResourceType.ImageResource, QUrl(f"chart:{name}"), _svg_image(svg)
        )
    doc.setHtml(render_html(plan, charts="img"))
    writer = QPdfWriter(str(path))
    writer.setTitle(f"{plan.name} - ForgePlanner build plan")
    writer.setCreator("ForgePlanner")
    writer.setPageLayout(
        QPageLayout(
            QPageSize(QPageSize.PageSizeId.A4),
            QPageLayout.Orientation.Landscape,
            QMarginsF(12, 12, 12, 12),
            QPageLayout.Unit.Millimeter,
        )
    )
    writer.setResolution(96)
    doc.setPageSize(QSizeF(writer.width(), writer.height()))
    doc.print_(writer)
