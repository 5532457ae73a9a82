"""Charts of a plan: memory breakdown, speed vs context, price vs speed.

Each chart is built once as a `Figure`: a few rectangles, lines, polylines, circles and text
elements at pixel coordinates (y down, as in SVG). `to_svg` writes a Figure as inline SVG for
the HTML export and the desktop app; the PDF export draws the same Figure with reportlab's
graphics (forgeplanner.export.pdf), so both show the same data by construction.

Hand-written because the exports must be self-contained (no script, no external asset, no
network) and the core must not import Qt or a plotting stack. Every piece of user text is
XML-escaped in the SVG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from forgeplanner.domain.plan import Plan, PlanEstimate
from forgeplanner.domain.units import GiB
from forgeplanner.export.tables import best_decode

SEGMENTS = (
    ("weights", "#4C78A8"),
    ("KV cache", "#F58518"),
    ("compute", "#54A24B"),
    ("runtime", "#B279A2"),
)
LINE_COLOURS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#9D755D")
TEXT_COLOUR = "#222"
FONT_FAMILY = "Helvetica, Arial, sans-serif"

# Memory chart geometry (pixels): label column, top margin, bar height and gap, bottom margin.
MEMORY_LABEL_W, MEMORY_TOP, MEMORY_BAR_H, MEMORY_GAP, MEMORY_BOTTOM = 250, 36, 18, 12, 50


# -- figure elements ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Text:
    x: float
    y: float  # baseline
    text: str
    size: int = 11
    anchor: str = "start"  # start | middle | end
    bold: bool = False
    rotate: float = 0.0  # degrees about (x, y), SVG sense (negative: counter-clockwise)


@dataclass(frozen=True, slots=True)
class Line:
    x1: float
    y1: float
    x2: float
    y2: float
    stroke: str
    width: float | None = None  # None: 1
    dash: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True)
class Rect:
    x: float
    y: float
    w: float
    h: float
    fill: str | None  # None: not filled
    stroke: str | None = None
    tip: str = ""  # tooltip (SVG <title>)


@dataclass(frozen=True, slots=True)
class PolyLine:
    points: tuple[tuple[float, float], ...]
    stroke: str
    width: float = 2.0


@dataclass(frozen=True, slots=True)
class Circle:
    cx: float
    cy: float
    r: float
    fill: str
    tip: str = ""


Shape = Text | Line | Rect | PolyLine | Circle


@dataclass(frozen=True, slots=True)
class Figure:
    width: int
    height: int
    title: str  # accessible name
    shapes: tuple[Shape, ...]


def nice_ticks(high: float, n: int = 5) -> list[float]:
    """Round tick values from 0 to at least `high`."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    count = math.ceil(high / step - 1e-9)
    return [i * step for i in range(count + 1)]


def _title(text: str) -> Text:
    return Text(10, 20, text, 13, bold=True)


# -- the charts -----------------------------------------------------------------------------


def memory_figure(
    plan: Plan, estimates: Sequence[PlanEstimate] | None = None, width: int = 760
) -> Figure | None:
    """Stacked bar per estimate (weights, KV cache, compute, runtime) against the GPU limit
    (dashed) and physical memory (solid). `estimates`: a part of the plan's (a page of the
    PDF), on the scale of all of them. None when there is nothing to draw."""
    every = list(plan.build.estimates)
    ests = every if estimates is None else list(estimates)
    if not ests:
        return None
    label_w, top, bar_h, gap = MEMORY_LABEL_W, MEMORY_TOP, MEMORY_BAR_H, MEMORY_GAP
    plot_w = width - label_w - 30
    height = top + len(ests) * (bar_h + gap) + MEMORY_BOTTOM
    scale_max = max(max(e.physical_bytes, e.memory.total_bytes) for e in every) / GiB
    ticks = nice_ticks(scale_max)
    scale_max = ticks[-1]

    def x(gib_value: float) -> float:
        return label_w + plot_w * gib_value / scale_max

    shapes: list[Shape] = [_title("Memory per model and machine (GiB)")]
    for tick in ticks:
        shapes.append(Line(x(tick), top - 4, x(tick), height - 40, "#ddd"))
        shapes.append(Text(x(tick), height - 26, f"{tick:g}", 10, "middle"))
    for i, e in enumerate(ests):
        y = top + i * (bar_h + gap)
        label = f"{e.model_id} {e.quant} on {e.target}"
        if len(label) > 40:
            label = label[:39] + "…"
        shapes.append(Text(label_w - 6, y + bar_h - 4, label, 10, "end"))
        start = 0.0
        parts = (
            e.memory.weights_bytes,
            e.memory.kv_cache_bytes,
            e.memory.compute_bytes,
            e.memory.runtime_bytes,
        )
        for (name, colour), value in zip(SEGMENTS, parts, strict=True):
            w = value / GiB
            shapes.append(
                Rect(
                    x(start),
                    y,
                    max(plot_w * w / scale_max, 0),
                    bar_h,
                    colour,
                    tip=f"{name}: {w:.2f} GiB",
                )
            )
            start += w
        gl = x(e.gpu_limit_bytes / GiB)
        ph = x(e.physical_bytes / GiB)
        shapes.append(Line(gl, y - 3, gl, y + bar_h + 3, "#d62728", 2, (4, 2)))
        shapes.append(Line(ph, y - 3, ph, y + bar_h + 3, "#333", 2))
    lx = 10
    for name, colour in SEGMENTS:
        shapes.append(Rect(lx, height - 16, 10, 10, colour))
        shapes.append(Text(lx + 14, height - 7, name, 10))
        lx += 90
    shapes.append(Line(lx, height - 11, lx + 14, height - 11, "#d62728", 2, (4, 2)))
    shapes.append(Text(lx + 18, height - 7, "GPU limit", 10))
    lx += 90
    shapes.append(Line(lx, height - 11, lx + 14, height - 11, "#333", 2))
    shapes.append(Text(lx + 18, height - 7, "physical memory", 10))
    return Figure(width, height, "Memory breakdown", tuple(shapes))


def _axes(
    shapes: list[Shape],
    left: int,
    top: int,
    w: int,
    h: int,
    xt: list[float],
    yt: list[float],
    xlabel: str,
    ylabel: str,
    xfmt=lambda v: f"{v:g}",
) -> None:
    for v in yt:
        y = top + h - h * v / yt[-1]
        shapes.append(Line(left, y, left + w, y, "#ddd"))
        shapes.append(Text(left - 6, y + 4, f"{v:g}", 10, "end"))
    for v in xt:
        x = left + w * v / xt[-1]
        shapes.append(Line(x, top, x, top + h, "#eee"))
        shapes.append(Text(x, top + h + 14, xfmt(v), 10, "middle"))
    shapes.append(Rect(left, top, w, h, None, "#888"))
    shapes.append(Text(left + w / 2, top + h + 32, xlabel, 11, "middle"))
    shapes.append(Text(14, top + h / 2, ylabel, 11, "middle", rotate=-90))


def speed_series(plan: Plan) -> list[PlanEstimate]:
    """The estimates the speed chart draws: every one that fits and has a speed curve."""
    return [e for e in plan.build.estimates if e.speed_by_depth and e.verdict != "does-not-fit"]


def speed_figure(
    plan: Plan,
    series: Sequence[PlanEstimate] | None = None,
    width: int = 760,
    height: int = 340,
) -> Figure | None:
    """Decode tokens/s against context depth for every estimate that fits (`series`: a part
    of them, on the axes of all of them)."""
    every = speed_series(plan)
    shown = every if series is None else list(series)
    if not shown:
        return None
    left, top, right, legend_h = 60, 34, 20, 18 * len(shown)
    w, h = width - left - right, height - top - 56 - legend_h
    xt = nice_ticks(max(p.depth for e in every for p in e.speed_by_depth))
    yt = nice_ticks(max(p.decode_tps for e in every for p in e.speed_by_depth))
    shapes: list[Shape] = [_title("Decode speed vs context depth")]
    _axes(
        shapes,
        left,
        top,
        w,
        h,
        xt,
        yt,
        "tokens already in context",
        "decode tokens/s",
        xfmt=lambda v: f"{v / 1000:g}k" if v >= 1000 else f"{v:g}",
    )
    for i, e in enumerate(shown):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        pts = tuple(
            (left + w * p.depth / xt[-1], top + h - h * p.decode_tps / yt[-1])
            for p in e.speed_by_depth
        )
        shapes.append(PolyLine(pts, colour, 2))
        ly = top + h + 44 + i * 18
        shapes.append(Rect(left, ly - 9, 10, 10, colour))
        shapes.append(Text(left + 14, ly, f"{e.model_id} {e.quant} on {e.target}", 10))
    return Figure(width, height, "Decode speed vs context", tuple(shapes))


def price_speed_figure(plan: Plan, width: int = 760, height: int = 340) -> Figure | None:
    """One point per build (the plan and its alternatives): price against the best decode
    speed of the build's first model."""
    points = []
    for name, build in [("this plan", plan.build)] + [(a.name, a.build) for a in plan.alternatives]:
        speed = best_decode(build)
        price = build.total_price_usd
        if speed is not None and price is not None and price > 0:
            points.append((name, price, speed))
    if not points:
        return None
    left, top, right = 60, 34, 30
    w, h = width - left - right, height - top - 56
    xt = nice_ticks(max(p[1] for p in points) * 1.1)
    yt = nice_ticks(max(p[2] for p in points) * 1.15)
    shapes: list[Shape] = [_title("Price vs decode speed")]
    _axes(
        shapes,
        left,
        top,
        w,
        h,
        xt,
        yt,
        "total price (USD)",
        "decode tokens/s",
        xfmt=lambda v: f"${v / 1000:g}k" if v >= 1000 else f"${v:g}",
    )
    for i, (name, price, speed) in enumerate(points):
        cx = left + w * price / xt[-1]
        cy = top + h - h * speed / yt[-1]
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        shapes.append(Circle(cx, cy, 6, colour, tip=f"{name}: ${price:,.0f}, {speed:.1f} tok/s"))
        anchor = "end" if cx > left + w * 0.7 else "start"
        dx = -9 if anchor == "end" else 9
        dy = -8 if i % 2 == 0 else 16  # alternate above/below so close points stay legible
        shapes.append(Text(cx + dx, cy + dy, name, 10, anchor))
    return Figure(width, height, "Price vs speed", tuple(shapes))


FIGURES = {
    "memory": memory_figure,
    "speed": speed_figure,
    "price_speed": price_speed_figure,
}


# -- SVG ----------------------------------------------------------------------------------------


def _n(v: float) -> str:
    """A coordinate: one decimal, without a trailing .0."""
    text = f"{v:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _svg_shape(s: Shape) -> str:
    if isinstance(s, Text):
        extra = ' font-weight="bold"' if s.bold else ""
        if s.rotate:
            extra += f' transform="rotate({s.rotate:g} {_n(s.x)} {_n(s.y)})"'
        return (
            f'<text x="{_n(s.x)}" y="{_n(s.y)}" font-size="{s.size}" text-anchor="{s.anchor}" '
            f'font-family="{FONT_FAMILY}" fill="{TEXT_COLOUR}"{extra}>{escape(s.text)}</text>'
        )
    if isinstance(s, Line):
        width = "" if s.width is None else f' stroke-width="{s.width:g}"'
        dash = f' stroke-dasharray="{" ".join(f"{d:g}" for d in s.dash)}"' if s.dash else ""
        return (
            f'<line x1="{_n(s.x1)}" y1="{_n(s.y1)}" x2="{_n(s.x2)}" y2="{_n(s.y2)}" '
            f'stroke="{s.stroke}"{width}{dash}/>'
        )
    if isinstance(s, Rect):
        paint = f' fill="{s.fill or "none"}"' + (f' stroke="{s.stroke}"' if s.stroke else "")
        head = f'<rect x="{_n(s.x)}" y="{_n(s.y)}" width="{_n(s.w)}" height="{_n(s.h)}"{paint}'
        return f"{head}><title>{escape(s.tip)}</title></rect>" if s.tip else f"{head}/>"
    if isinstance(s, PolyLine):
        pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in s.points)
        return (
            f'<polyline points="{pts}" fill="none" stroke="{s.stroke}" stroke-width="{s.width:g}"/>'
        )
    head = f'<circle cx="{_n(s.cx)}" cy="{_n(s.cy)}" r="{_n(s.r)}" fill="{s.fill}"'
    return f"{head}><title>{escape(s.tip)}</title></circle>" if s.tip else f"{head}/>"


def to_svg(fig: Figure) -> str:
    w, h = fig.width, fig.height
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img" aria-label="{escape(fig.title)}">'
        f"<title>{escape(fig.title)}</title>"
        f'<rect width="{w}" height="{h}" fill="#ffffff"/>'
        + "".join(_svg_shape(s) for s in fig.shapes)
        + "</svg>"
    )


def memory_chart(plan: Plan, width: int = 760) -> str | None:
    fig = memory_figure(plan, width=width)
    return None if fig is None else to_svg(fig)


def speed_chart(plan: Plan, width: int = 760, height: int = 340) -> str | None:
    fig = speed_figure(plan, width=width, height=height)
    return None if fig is None else to_svg(fig)


def price_speed_chart(plan: Plan, width: int = 760, height: int = 340) -> str | None:
    fig = price_speed_figure(plan, width=width, height=height)
    return None if fig is None else to_svg(fig)


def all_charts(plan: Plan) -> dict[str, str]:
    """name -> SVG for the charts this plan has data for."""
    out = {}
    for name, build in FIGURES.items():
        fig = build(plan)
        if fig is not None:
            out[name] = to_svg(fig)
    return out
