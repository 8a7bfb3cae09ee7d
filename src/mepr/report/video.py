"""Self-contained HTML reports of predictions (inline SVG charts, inline JPEG key frames).

:func:`render_video_report` turns one prediction record (the JSON `mepr predict` writes) plus
the raw inputs of that video (:class:`mepr.predict.Extraction`: frames, crops, audio) into
one static HTML page; :func:`render_index` makes the batch overview.  No scripts, no
network, no external files: a page can be mailed or archived as is.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import numpy as np

from mepr.labels import EMOTIONS, TRAITS
from mepr.report import svg
from mepr.report.summary import TRAIT_LABEL, summarize
from mepr.report.templates import CSS, INDEX, VIDEO

EMOTION_COLOURS = {
    "neutral": "#94a3b8",
    "anger": "#dc2626",
    "disgust": "#65a30d",
    "fear": "#7c3aed",
    "happiness": "#f59e0b",
    "sadness": "#2563eb",
    "surprise": "#db2777",
}
TRAIT_COLOURS = {
    "openness": "#0d9488",
    "conscientiousness": "#0284c7",
    "extraversion": "#ea580c",
    "agreeableness": "#16a34a",
    "non_neuroticism": "#9333ea",
}
BOX_COLOURS = {"face": "#e11d48", "body": "#f97316"}
MAX_KEYFRAMES = 8


def _env():
    from jinja2 import Environment
    from markupsafe import Markup

    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    return env, Markup


def _jpeg_uri(data: bytes | None, size: int | None = None, quality: int = 82) -> str | None:
    """A data: URI of a JPEG, downscaled so its longer side is at most `size`."""
    if not data:
        return None
    if size:
        import cv2

        from mepr.media import jpeg

        rgb = jpeg.decode_rgb(data)
        h, w = rgb.shape[:2]
        scale = size / max(h, w)
        if scale < 1:
            rgb = cv2.resize(
                rgb,
                (max(1, round(w * scale)), max(1, round(h * scale))),
                interpolation=cv2.INTER_AREA,
            )
        data = jpeg.encode(rgb, quality)
    return "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    from mepr.media import jpeg

    h, w = jpeg.decode_rgb(data).shape[:2]
    return w, h


def thumbnail_uri(extraction) -> str | None:
    """The middle sampled frame as a small JPEG data URI (index page), or None."""
    rows = extraction.frame_rows
    if not rows:
        return None
    return _jpeg_uri(rows[len(rows) // 2]["scene_jpeg"], size=160, quality=78)


def _facts(video: dict[str, Any]) -> list[str]:
    out = []
    if video.get("duration_s"):
        out.append(f"{video['duration_s']:.1f} s")
    if video.get("width") and video.get("height"):
        out.append(f"{video['width']}×{video['height']}")
    if video.get("fps"):
        out.append(f"{video['fps']:.3g} fps")
    out.append("audio" if video.get("has_audio") else "no audio")
    if video.get("size_bytes"):
        out.append(f"{video['size_bytes'] / 1e6:.2f} MB")
    return out


def _keyframes(extraction) -> list[dict[str, Any]]:
    rows = list(extraction.frame_rows)
    if len(rows) > MAX_KEYFRAMES:
        pick = np.linspace(0, len(rows) - 1, MAX_KEYFRAMES).round().astype(int)
        rows = [rows[i] for i in pick]
    frames = []
    for r in rows:
        w, h = _jpeg_size(r["scene_jpeg"])
        scale = min(1.0, 320 / max(w, h))
        boxes = [
            (kind, r[f"{kind}_box"], BOX_COLOURS[kind])
            for kind in ("face", "body")
            if r.get(f"{kind}_box")
        ]
        frames.append(
            {
                "frame_index": r["frame_index"],
                "timestamp": r["timestamp"],
                "scene": svg.scene_with_boxes(
                    _jpeg_uri(r["scene_jpeg"], size=320),
                    round(w * scale),
                    round(h * scale),
                    boxes,
                    caption=f"frame {r['frame_index']}",
                ),
                "face": _jpeg_uri(r.get("face_jpeg"), size=128),
                "face_score": r.get("face_score"),
                "body": _jpeg_uri(r.get("body_jpeg"), size=128),
                "body_score": r.get("body_score"),
            }
        )
    return frames


def _title(name: str) -> str:
    return TRAIT_LABEL.get(name, name.replace("_", " ").capitalize())


def _charts(record: dict[str, Any]) -> dict[str, str]:
    probs = record["emotion"]["probabilities"]
    scores = record["personality"]["scores"]
    mods = record["model"]["modalities"]
    per = record["modalities"]
    fusion = record["fusion"]
    out = {
        "emotion_chart": svg.hbar_chart(
            "emotion",
            [(e, _title(e), probs[e], EMOTION_COLOURS[e]) for e in EMOTIONS],
            title="Emotion probabilities",
            highlight=record["emotion"]["top"],
            refs=[(1 / len(EMOTIONS), "1/7")],
        ),
        "trait_chart": svg.hbar_chart(
            "traits",
            [(t, _title(t), scores[t], TRAIT_COLOURS[t]) for t in TRAITS],
            title="Big Five trait scores",
            fmt=lambda v: f"{v:.2f}",
            refs=[(0.5, "0.5")],
        ),
    }
    rows = [*mods, "fused"]
    emo_vals = [
        [per[m]["emotion_probabilities"][e] if per[m]["present"] else None for e in EMOTIONS]
        for m in mods
    ] + [[probs[e] for e in EMOTIONS]]
    trait_vals = [
        [per[m]["personality_scores"][t] if per[m]["present"] else None for t in TRAITS]
        for m in mods
    ] + [[scores[t] for t in TRAITS]]
    out["modality_emotion"] = svg.heatmap(
        "modality-emotion", rows, [_title(e) for e in EMOTIONS], emo_vals,
        title="Emotion probabilities per modality", fmt=lambda v: f"{100 * v:.0f}%",
        legend="probability", emphasis_rows=["fused"], cell_w=54,
    )  # fmt: skip
    out["modality_traits"] = svg.heatmap(
        "modality-traits", rows, [_title(t) for t in TRAITS], trait_vals,
        title="Trait scores per modality", legend="score", emphasis_rows=["fused"], cell_w=64,
    )  # fmt: skip
    present = [per[m]["present"] for m in mods]
    if fusion.get("query_attention"):
        q = fusion["query_attention"]
        out["query_attention"] = svg.heatmap(
            "query-attention", ["emotion query", "personality query"], mods,
            [[q[k][m] if present[j] else None for j, m in enumerate(mods)] for k in ("emotion", "personality")],
            title="Query attention over modalities", legend="attention weight", row_label_w=124,
        )  # fmt: skip
    if fusion.get("graph_attention"):
        g = fusion["graph_attention"]
        out["graph_attention"] = svg.heatmap(
            "graph-attention", mods, mods,
            [[g[i][j] if present[i] and present[j] else None for j in range(len(mods))] for i in range(len(mods))],
            title="Graph attention between modalities", legend="attention weight",
        )  # fmt: skip
    loo = fusion["leave_one_out"]
    cols = [_title(e) for e in EMOTIONS] + [_title(t) for t in TRAITS]
    vals = []
    for m in mods:
        e, p = loo["emotion"].get(m), loo["personality"].get(m)
        vals.append(
            [e[k] for k in EMOTIONS] + [p[k] for k in TRAITS] if e and p else [None] * len(cols)
        )
    finite = [abs(v) for row in vals for v in row if v is not None]
    span = max([0.02, *finite])
    out["contributions"] = svg.heatmap(
        "contributions", mods, cols, vals, title="Leave-one-out contributions",
        vmin=-span, vmax=span, diverging=True, fmt=lambda v: f"{v:+.2f}", legend="change", cell_w=50,
    )  # fmt: skip
    return out


def render_video_report(record: dict[str, Any], extraction) -> str:
    """One self-contained HTML page for one video."""
    env, Markup = _env()
    charts = {k: Markup(v) for k, v in _charts(record).items()}
    frames = _keyframes(extraction)
    for f in frames:
        f["scene"] = Markup(f["scene"])
    audio = extraction.audio
    sr = int(audio["sample_rate"]) if audio else 16000
    wave = svg.waveform(
        extraction.pcm() if extraction.has_audio else np.zeros(0, np.float32),
        sr,
        duration=record["video"].get("duration_s"),
        words=record["transcript"].get("words") or [],
        markers=[(float(r["timestamp"]), str(r["step"] + 1)) for r in extraction.frame_rows],
    )
    return env.from_string(VIDEO).render(
        r=record,
        s=summarize(record),
        css=Markup(CSS),
        facts=_facts(record["video"]),
        frames=frames,
        n_frames=len(extraction.frame_rows),
        n_shown=len(frames),
        sample_rate=sr,
        waveform=Markup(wave),
        query_attention=charts.pop("query_attention", None),
        graph_attention=charts.pop("graph_attention", None),
        **charts,
    )


def _mini_bars(
    name: str, keys: Sequence[str], values: dict[str, float], colours: dict[str, str], width: int
) -> str:
    """An index row's small bar chart: one bar per key, in the order of `keys`."""
    return svg.mini_bars(
        name, [values[k] for k in keys], [colours[k] for k in keys], list(keys), width=width
    )


def render_index(
    summary: dict[str, Any], records: list[dict[str, Any]], thumbs: dict[str, str] | None = None
) -> str:
    """The batch overview page: one row per predicted video, then the failures."""
    env, Markup = _env()
    thumbs = thumbs or {}
    rows = []
    for r in records:
        vid = r["video"]["id"]
        probs = r["emotion"]["probabilities"]
        scores = r["personality"]["scores"]
        rows.append(
            {
                "id": vid,
                "name": r["video"]["file_name"],
                "href": f"{quote(vid)}/report.html",
                "thumb": thumbs.get(vid),
                "facts": " · ".join(_facts(r["video"])),
                "top": r["emotion"]["top"],
                "top_p": probs[r["emotion"]["top"]],
                "emotion_svg": Markup(
                    _mini_bars("emotion-mini", EMOTIONS, probs, EMOTION_COLOURS, width=150)
                ),
                "traits_svg": Markup(
                    _mini_bars("traits-mini", TRAITS, scores, TRAIT_COLOURS, width=110)
                ),
                "mods": [(m, r["modalities"][m]["present"]) for m in r["model"]["modalities"]],
                "seconds": r["timings_s"].get("total_s", 0.0),
            }
        )
    traits = [{"label": _title(t), "colour": TRAIT_COLOURS[t]} for t in TRAITS]
    return env.from_string(INDEX).render(summary=summary, rows=rows, traits=traits, css=Markup(CSS))


__all__ = ["render_index", "render_video_report", "thumbnail_uri"]
