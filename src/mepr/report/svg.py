"""Inline SVG charts for the prediction reports: bar charts, heatmaps, a waveform.

Every chart is a self-contained ``<svg>`` string (no scripts, no external references) with
machine-readable hooks: the root carries ``data-chart``, each bar is ``rect.bar`` and each
heatmap cell ``rect.cell`` with ``data-row`` / ``data-col`` / ``data-value`` — the browser
test reads those back from the rendered DOM.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

import numpy as np

FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif"


def _a(value) -> str:
    """An attribute value, escaped."""
    return escape(str(value), quote=True)


def _num(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".") if math.isfinite(v) else "0"


def _hex_to_rgb(c: str) -> tuple[int, int, int]:
    c = c.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _mix(a: str, b: str, t: float) -> str:
    t = min(1.0, max(0.0, t))
    ra, rb = _hex_to_rgb(a), _hex_to_rgb(b)
    return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ra, rb, strict=True))


def _ramp(stops: Sequence[str], t: float) -> str:
    t = min(1.0, max(0.0, t))
    pos = t * (len(stops) - 1)
    i = min(int(pos), len(stops) - 2)
    return _mix(stops[i], stops[i + 1], pos - i)


SEQUENTIAL = ("#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b")
DIVERGING = ("#b2182b", "#ef8a62", "#fddbc7", "#f7f7f7", "#d1e5f0", "#67a9cf", "#2166ac")


def _luminance(c: str) -> float:
    r, g, b = _hex_to_rgb(c)
    return (0.299 * r + 0.587 * g + 0.114 * b) / 255


def _text_on(fill: str) -> str:
    return "#ffffff" if _luminance(fill) < 0.55 else "#1f2937"


def hbar_chart(
    chart: str,
    items: Sequence[tuple[str, str, float, str]],
    *,
    title: str,
    vmax: float = 1.0,
    fmt=lambda v: f"{v:.0%}",
    width: int = 460,
    row_h: int = 30,
    label_w: int = 138,
    highlight: str | None = None,
    refs: Sequence[tuple[float, str]] = (),
) -> str:
    """Horizontal bars. items: (key, label, value, colour); refs: (value, caption) rules."""
    value_w = 52
    top, bottom = 8, 24 if refs else 8
    plot_w = width - label_w - value_w
    height = top + bottom + row_h * len(items)
    out = [
        f'<svg class="chart hbar" data-chart="{_a(chart)}" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{_a(title)}" style="{FONT}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for i, (key, label, value, colour) in enumerate(items):
        y = top + i * row_h
        v = 0.0 if value is None or not math.isfinite(value) else float(value)
        w = max(0.0, min(1.0, v / vmax)) * plot_w
        strong = key == highlight
        weight = "700" if strong else "400"
        stroke = ' stroke="#111827" stroke-width="1.5"' if strong else ""
        out.append(
            f'<g class="row" data-label="{_a(key)}">'
            f'<text class="label" x="{label_w - 8}" y="{y + row_h / 2 + 4.5:.1f}" text-anchor="end" '
            f'font-size="13" font-weight="{weight}" fill="#1f2937">{escape(label)}</text>'
            f'<rect class="track" x="{label_w}" y="{y + 5}" width="{plot_w}" height="{row_h - 10}" '
            f'rx="4" fill="#eef1f5"/>'
            f'<rect class="bar" data-label="{_a(key)}" data-value="{v:.6f}" x="{label_w}" '
            f'y="{y + 5}" width="{w:.2f}" height="{row_h - 10}" rx="4" fill="{_a(colour)}"'
            f"{stroke}>"
            f"<title>{escape(label)}: {escape(fmt(v))}</title></rect>"
            f'<text class="value" x="{label_w + plot_w + 6}" y="{y + row_h / 2 + 4.5:.1f}" '
            f'font-size="12.5" font-weight="{weight}" fill="#374151">{escape(fmt(v))}</text></g>'
        )
    for value, caption in refs:
        x = label_w + max(0.0, min(1.0, value / vmax)) * plot_w
        out.append(
            f'<g class="ref"><line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{height - bottom + 4}" '
            f'stroke="#6b7280" stroke-dasharray="3 3" stroke-width="1"/>'
            f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle" font-size="10.5" '
            f'fill="#6b7280">{escape(caption)}</text></g>'
        )
    out.append("</svg>")
    return "".join(out)


def heatmap(
    chart: str,
    rows: Sequence[str],
    cols: Sequence[str],
    values: Sequence[Sequence[float | None]],
    *,
    title: str,
    vmin: float = 0.0,
    vmax: float = 1.0,
    diverging: bool = False,
    fmt=lambda v: f"{v:.2f}",
    cell_w: int = 58,
    cell_h: int = 30,
    row_label_w: int = 92,
    col_label_h: int = 74,
    legend: str = "",
    emphasis_rows: Sequence[str] = (),
) -> str:
    """A labelled matrix of coloured cells; None cells are drawn hatched and marked n/a."""
    legend_h = 34 if legend else 6
    # column labels are rotated by 40 degrees: leave room above and to the right for them
    longest = max((len(c) for c in cols), default=0) * 6.6
    col_label_h = max(col_label_h, int(longest * 0.64) + 14)
    right_pad = max(8, int(longest * 0.77) - cell_w // 2 + 4)
    width = row_label_w + cell_w * len(cols) + right_pad
    height = col_label_h + cell_h * len(rows) + legend_h
    stops = DIVERGING if diverging else SEQUENTIAL
    span = (vmax - vmin) or 1.0
    hatch = f"hatch-{chart}"
    out = [
        f'<svg class="chart heatmap" data-chart="{_a(chart)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" style="max-width:100%;height:auto;{FONT}" role="img" '
        f'aria-label="{_a(title)}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        f'<defs><pattern id="{_a(hatch)}" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f3f4f6"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="#d1d5db" stroke-width="2"/></pattern></defs>'
    ]
    for j, c in enumerate(cols):
        x = row_label_w + j * cell_w + cell_w / 2
        out.append(
            f'<text class="col-label" x="{x:.1f}" y="{col_label_h - 6}" font-size="11.5" '
            f'fill="#374151" transform="rotate(-40 {x:.1f} {col_label_h - 6})">{escape(c)}</text>'
        )
    for i, r in enumerate(rows):
        y = col_label_h + i * cell_h
        weight = "700" if r in emphasis_rows else "400"
        out.append(
            f'<text class="row-label" x="{row_label_w - 8}" y="{y + cell_h / 2 + 4:.1f}" '
            f'text-anchor="end" font-size="12" font-weight="{weight}" fill="#1f2937">{escape(r)}</text>'
        )
        for j, c in enumerate(cols):
            x = row_label_w + j * cell_w
            v = values[i][j]
            if v is None or not math.isfinite(v):
                out.append(
                    f'<rect class="cell na" data-row="{_a(r)}" data-col="{_a(c)}" data-value="" '
                    f'x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" '
                    f'fill="url(#{_a(hatch)})"><title>{escape(r)} / {escape(c)}: not available</title></rect>'
                    f'<text x="{x + cell_w / 2 - 1:.1f}" y="{y + cell_h / 2 + 3:.1f}" '
                    f'text-anchor="middle" font-size="10" fill="#9ca3af">n/a</text>'
                )
                continue
            fill = _ramp(stops, (v - vmin) / span)
            out.append(
                f'<rect class="cell" data-row="{_a(r)}" data-col="{_a(c)}" data-value="{v:.6f}" '
                f'x="{x}" y="{y}" width="{cell_w - 2}" height="{cell_h - 2}" rx="3" fill="{fill}">'
                f"<title>{escape(r)} / {escape(c)}: {escape(fmt(v))}</title></rect>"
                f'<text x="{x + cell_w / 2 - 1:.1f}" y="{y + cell_h / 2 + 3.5:.1f}" '
                f'text-anchor="middle" font-size="10.5" fill="{_text_on(fill)}">{escape(fmt(v))}</text>'
            )
    if legend:
        y = col_label_h + cell_h * len(rows) + 10
        x0, lw = row_label_w, min(200, cell_w * len(cols))
        n = 24
        for k in range(n):
            out.append(
                f'<rect x="{x0 + k * lw / n:.2f}" y="{y}" width="{lw / n + 0.6:.2f}" height="9" '
                f'fill="{_ramp(stops, k / (n - 1))}"/>'
            )
        out.append(
            f'<text x="{x0}" y="{y + 21}" font-size="10" fill="#6b7280">{escape(fmt(vmin))}</text>'
            f'<text x="{x0 + lw}" y="{y + 21}" font-size="10" text-anchor="end" fill="#6b7280">'
            f"{escape(fmt(vmax))}</text>"
            f'<text x="{x0 + lw + 10}" y="{y + 8}" font-size="10.5" fill="#4b5563">{escape(legend)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _nice_step(span: float, target: int = 8) -> float:
    raw = span / max(1, target)
    for step in (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600):
        if step >= raw:
            return step
    return 10 ** math.ceil(math.log10(raw))


def waveform(
    pcm: np.ndarray,
    sample_rate: int,
    *,
    duration: float | None = None,
    words: Sequence[dict] = (),
    markers: Sequence[tuple[float, str]] = (),
    width: int = 960,
    height: int = 150,
) -> str:
    """The audio envelope (min/max per pixel column) with word spans and frame markers."""
    seconds = max(float(duration or 0.0), pcm.size / sample_rate if sample_rate else 0.0, 1e-3)
    left, right, word_h, axis_h = 8, 8, 22 if words else 4, 22
    plot_w = width - left - right
    wave_top = word_h + 4
    wave_h = height - wave_top - axis_h
    mid = wave_top + wave_h / 2

    def xof(t: float) -> float:
        return left + max(0.0, min(1.0, t / seconds)) * plot_w

    out = [
        f'<svg class="chart waveform" data-chart="waveform" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="audio waveform" style="{FONT}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>Audio waveform</title>'
        f'<rect x="{left}" y="{wave_top}" width="{plot_w}" height="{wave_h}" fill="#f8fafc" rx="4"/>'
        f'<line x1="{left}" x2="{left + plot_w}" y1="{mid:.1f}" y2="{mid:.1f}" stroke="#cbd5e1"/>'
    ]
    if pcm.size:
        cols = max(1, min(plot_w, int(round(pcm.size / seconds / sample_rate * plot_w))))
        edges = np.linspace(0, pcm.size, cols + 1).astype(np.int64)
        hi = np.array(
            [pcm[a:b].max() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:], strict=True)]
        )
        lo = np.array(
            [pcm[a:b].min() if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:], strict=True)]
        )
        peak = max(float(np.abs(pcm).max()), 1e-4)
        scale = (wave_h / 2 - 3) / peak
        span = cols / plot_w * (pcm.size / sample_rate) / seconds
        xs = left + (np.arange(cols) + 0.5) / cols * span * plot_w
        top = " ".join(f"{x:.1f},{mid - h * scale:.1f}" for x, h in zip(xs, hi, strict=True))
        bot = " ".join(
            f"{x:.1f},{mid - h * scale:.1f}" for x, h in zip(xs[::-1], lo[::-1], strict=True)
        )
        out.append(
            f'<path class="wave" d="M{top} L{bot} Z" fill="#6366f1" fill-opacity="0.85" '
            f'stroke="#4338ca" stroke-width="0.6" data-peak="{peak:.4f}"/>'
        )
    else:
        out.append(
            f'<text class="no-audio" x="{left + plot_w / 2}" y="{mid + 4:.1f}" text-anchor="middle" '
            f'font-size="13" fill="#9ca3af">no audio track</text>'
        )
    for w in words:
        x0, x1 = xof(float(w["start"])), xof(float(w["end"]))
        out.append(
            f'<g class="word"><rect x="{x0:.1f}" y="2" width="{max(1.0, x1 - x0):.1f}" '
            f'height="{word_h - 4}" rx="3" fill="#e0e7ff" stroke="#a5b4fc" stroke-width="0.6"/>'
            f'<text x="{(x0 + x1) / 2:.1f}" y="{word_h / 2 + 3:.1f}" text-anchor="middle" '
            f'font-size="10.5" fill="#3730a3">{escape(str(w["word"]))}</text></g>'
        )
    for t, label in markers:
        x = xof(t)
        out.append(
            f'<g class="marker"><line x1="{x:.1f}" x2="{x:.1f}" y1="{wave_top}" '
            f'y2="{wave_top + wave_h}" stroke="#f59e0b" stroke-width="1" stroke-dasharray="2 3"/>'
            f'<text x="{x:.1f}" y="{wave_top + wave_h - 3}" text-anchor="middle" font-size="9" '
            f'fill="#b45309">{escape(label)}</text></g>'
        )
    step = _nice_step(seconds)
    t = 0.0
    while t <= seconds + 1e-9:
        x = xof(t)
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{wave_top + wave_h}" y2="{wave_top + wave_h + 4}" '
            f'stroke="#9ca3af"/><text x="{x:.1f}" y="{height - 5}" text-anchor="middle" '
            f'font-size="10" fill="#6b7280">{_num(t)} s</text>'
        )
        t += step
    out.append("</svg>")
    return "".join(out)


def mini_bars(
    chart: str,
    values: Sequence[float],
    colours: Sequence[str],
    labels: Sequence[str],
    *,
    width: int = 120,
    height: int = 34,
) -> str:
    """A tiny column chart (index page): values in [0, 1]."""
    n = max(1, len(values))
    gap = 3
    w = (width - gap * (n - 1)) / n
    out = [
        f'<svg class="chart mini" data-chart="{_a(chart)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<line x1="0" x2="{width}" y1="{height / 2}" y2="{height / 2}" stroke="#e5e7eb"/>'
    ]
    for i, (v, c, lab) in enumerate(zip(values, colours, labels, strict=True)):
        h = max(1.0, min(1.0, max(0.0, v)) * height)
        out.append(
            f'<rect class="bar" data-label="{_a(lab)}" data-value="{v:.4f}" x="{i * (w + gap):.1f}" '
            f'y="{height - h:.1f}" width="{w:.1f}" height="{h:.1f}" rx="2" fill="{_a(c)}">'
            f"<title>{escape(lab)}: {v:.2f}</title></rect>"
        )
    out.append("</svg>")
    return "".join(out)


def scene_with_boxes(
    image_uri: str,
    width: int,
    height: int,
    boxes: Sequence[tuple[str, Sequence[float], str]],
    *,
    caption: str,
) -> str:
    """A key frame with the detected face/body boxes drawn on top (boxes relative to the frame)."""
    out = [
        f'<svg class="keyframe-scene" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{_a(caption)}" xmlns="http://www.w3.org/2000/svg">'
        f'<image href="{image_uri}" x="0" y="0" width="{width}" height="{height}" '
        f'preserveAspectRatio="none"/>'
    ]
    for kind, box, colour in boxes:
        x0, y0, x1, y1 = (float(v) for v in box)
        out.append(
            f'<rect class="box {kind}" x="{x0 * width:.1f}" y="{y0 * height:.1f}" '
            f'width="{(x1 - x0) * width:.1f}" height="{(y1 - y0) * height:.1f}" fill="none" '
            f'stroke="{colour}" stroke-width="{max(1.5, width / 160):.1f}" rx="2"/>'
        )
    out.append("</svg>")
    return "".join(out)
