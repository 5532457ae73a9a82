"""Charts as inline SVG text: memory breakdown, speed vs context, price vs speed.

Hand-written because the exports must be self-contained (no script, no external asset, no
network) and the core must not import Qt or a plotting stack; a few rectangles, lines and text
elements are all these charts need. Every piece of user text is XML-escaped.
"""

from __future__ import annotations

import math
from html import escape

from forgeplanner.domain.plan import Plan
from forgeplanner.domain.units import GiB
from forgeplanner.export.tables import best_decode

SEGMENTS = (
    ("weights", "#4C78A8"),
    ("KV cache", "#F58518"),
    ("compute", "#54A24B"),
    ("runtime", "#B279A2"),
)
LINE_COLOURS = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#9D755D")
FONT = 'font-family="Helvetica, Arial, sans-serif"'


def nice_ticks(high: float, n: int = 5) -> list[float]:
    """Round tick values from 0 to at least `high`."""
    if high <= 0:
        return [0.0, 1.0]
    raw = high / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw)
    count = math.ceil(high / step - 1e-9)
    return [i * step for i in range(count + 1)]


def _t(
    x: float, y: float, text: str, size: int = 11, anchor: str = "start", extra: str = ""
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" {FONT} '
        f'fill="#222"{extra}>{escape(text)}</text>'
    )


def _svg(width: int, height: int, title: str, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>' + "".join(body) + "</svg>"
    )


def memory_chart(plan: Plan, width: int = 760) -> str | None:
    """Stacked bar per estimate (weights, KV cache, compute, runtime) against the GPU limit
    (dashed) and physical memory (solid). None when the plan has no estimates."""
    ests = list(plan.build.estimates)
    if not ests:
        return None
    label_w, top, bar_h, gap = 250, 36, 18, 12
    plot_w = width - label_w - 30
    height = top + len(ests) * (bar_h + gap) + 50
    scale_max = max(max(e.physical_bytes, e.memory.total_bytes) for e in ests) / GiB
    ticks = nice_ticks(scale_max)
    scale_max = ticks[-1]

    def x(gib_value: float) -> float:
        return label_w + plot_w * gib_value / scale_max

    body = [_t(10, 20, "Memory per model and machine (GiB)", 13, extra=' font-weight="bold"')]
    for tick in ticks:
        body.append(
            f'<line x1="{x(tick):.1f}" y1="{top - 4}" x2="{x(tick):.1f}" '
            f'y2="{height - 40}" stroke="#ddd"/>'
        )
        body.append(_t(x(tick), height - 26, f"{tick:g}", 10, "middle"))
    for i, e in enumerate(ests):
        y = top + i * (bar_h + gap)
        label = f"{e.model_id} {e.quant} on {e.target}"
        if len(label) > 40:
            label = label[:39] + "…"
        body.append(_t(label_w - 6, y + bar_h - 4, label, 10, "end"))
        start = 0.0
        parts = (
            e.memory.weights_bytes,
            e.memory.kv_cache_bytes,
            e.memory.compute_bytes,
            e.memory.runtime_bytes,
        )
        for (name, colour), value in zip(SEGMENTS, parts, strict=True):
            w = value / GiB
            body.append(
                f'<rect x="{x(start):.1f}" y="{y}" width="{max(plot_w * w / scale_max, 0):.1f}" '
                f'height="{bar_h}" fill="{colour}">'
                f"<title>{escape(name)}: {w:.2f} GiB</title></rect>"
            )
            start += w
        gl = x(e.gpu_limit_bytes / GiB)
        ph = x(e.physical_bytes / GiB)
        body.append(
            f'<line x1="{gl:.1f}" y1="{y - 3}" x2="{gl:.1f}" y2="{y + bar_h + 3}" '
            'stroke="#d62728" stroke-width="2" stroke-dasharray="4 2"/>'
        )
        body.append(
            f'<line x1="{ph:.1f}" y1="{y - 3}" x2="{ph:.1f}" y2="{y + bar_h + 3}" '
            'stroke="#333" stroke-width="2"/>'
        )
    lx = 10
    for name, colour in SEGMENTS:
        body.append(f'<rect x="{lx}" y="{height - 16}" width="10" height="10" fill="{colour}"/>')
        body.append(_t(lx + 14, height - 7, name, 10))
        lx += 90
    body.append(
        f'<line x1="{lx}" y1="{height - 11}" x2="{lx + 14}" y2="{height - 11}" '
        'stroke="#d62728" stroke-width="2" stroke-dasharray="4 2"/>'
    )
    body.append(_t(lx + 18, height - 7, "GPU limit", 10))
    lx += 90
    body.append(
        f'<line x1="{lx}" y1="{height - 11}" x2="{lx + 14}" y2="{height - 11}" '
        'stroke="#333" stroke-width="2"/>'
    )
    body.append(_t(lx + 18, height - 7, "physical memory", 10))
    return _svg(width, height, "Memory breakdown", body)


def _axes(
    body: list[str],
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
        body.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + w}" y2="{y:.1f}" stroke="#ddd"/>')
        body.append(_t(left - 6, y + 4, f"{v:g}", 10, "end"))
    for v in xt:
        x = left + w * v / xt[-1]
        body.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + h}" stroke="#eee"/>')
        body.append(_t(x, top + h + 14, xfmt(v), 10, "middle"))
    body.append(f'<rect x="{left}" y="{top}" width="{w}" height="{h}" fill="none" stroke="#888"/>')
    body.append(_t(left + w / 2, top + h + 32, xlabel, 11, "middle"))
    body.append(
        _t(
            14,
            top + h / 2,
            ylabel,
            11,
            "middle",
            extra=f' transform="rotate(-90 14 {top + h / 2:.1f})"',
        )
    )


def speed_chart(plan: Plan, width: int = 760, height: int = 340) -> str | None:
    """Decode tokens/s against context depth for every estimate that fits."""
    series = [e for e in plan.build.estimates if e.speed_by_depth and e.verdict != "does-not-fit"]
    if not series:
        return None
    left, top, right, legend_h = 60, 34, 20, 18 * len(series)
    w, h = width - left - right, height - top - 56 - legend_h
    xt = nice_ticks(max(p.depth for e in series for p in e.speed_by_depth))
    yt = nice_ticks(max(p.decode_tps for e in series for p in e.speed_by_depth))
    body = [_t(10, 20, "Decode speed vs context depth", 13, extra=' font-weight="bold"')]
    _axes(
        body,
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
    for i, e in enumerate(series):
        colour = LINE_COLOURS[i % len(LINE_COLOURS)]
        pts = " ".join(
            f"{left + w * p.depth / xt[-1]:.1f},{top + h - h * p.decode_tps / yt[-1]:.1f}"
            for p in e.speed_by_depth
        )
        body.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
        ly = top + h + 44 + i * 18
        body.append(f'<rect x="{left}" y="{ly - 9}" width="10" height="10" fill="{colour}"/>')
        body.append(_t(left + 14, ly, f"{e.model_id} {e.quant} on {e.target}", 10))
    return _svg(width, height, "Decode speed vs context", body)


def price_speed_chart(plan: Plan, width: int = 760, height: int = 340) -> str | None:
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
    body = [_t(10, 20, "Price vs decode speed", 13, extra=' font-weight="bold"')]
    _axes(
        body,
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
        body.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="{colour}"><title>'
            f"{escape(name)}: ${price:,.0f}, {speed:.1f} tok/s</title></circle>"
        )
        anchor = "end" if cx > left + w * 0.7 else "start"
        dx = -9 if anchor == "end" else 9
        dy = -8 if i % 2 == 0 else 16  # alternate above/below so close points stay legible
        body.append(_t(cx + dx, cy + dy, name, 10, anchor))
    return _svg(width, height, "Price vs speed", body)


def all_charts(plan: Plan) -> dict[str, str]:
    """name -> SVG for the charts this plan has data for."""
    out = {}
    for name, fn in (
        ("memory", memory_chart),
        ("speed", speed_chart),
        ("price_speed", price_speed_chart),
    ):
        svg = fn(plan)
        if svg is not None:
            out[name] = svg
    return out
