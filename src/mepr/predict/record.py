"""The prediction record: one video's JSON (emotions, traits, per-modality views, attention).

Its layout is versioned (``schema``/``version``); the HTML report (:mod:`mepr.report.video`) and
the batch summary read it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mepr import __version__
from mepr.labels import EMOTIONS, IMAGE_MODALITIES, TRAITS
from mepr.predict.extraction import Extraction

PREDICTION_SCHEMA = "mepr.prediction"
PREDICTION_VERSION = 1
# The evaluation's emotion-presence rule (mepr.metrics): no emotion when p(neutral) >= 6/7,
# else every emotion with p >= 1/7 is present.
PRESENCE_THRESHOLD = 1.0 / len(EMOTIONS)
NEUTRAL_THRESHOLD = 6.0 / len(EMOTIONS)


def missing_reason(m: str, ex: Extraction) -> str:
    """Why modality `m` is absent from a video's prediction, in words."""
    if m in IMAGE_MODALITIES:
        if "frames" in ex.errors:
            return f"frames could not be read: {ex.errors['frames']}"
        return {"face": "no face detected in any sampled frame",
                "body": "no person detected in any sampled frame"}.get(m, "no frames")  # fmt: skip
    if "audio" in ex.errors:
        return f"audio could not be read: {ex.errors['audio']}"
    if not ex.has_audio:
        return "no audio track" if m == "audio" else "no audio to transcribe"
    if m == "audio":
        return "audio too short to encode"
    return "no words recognised in the audio"


def prediction_record(
    i: int,
    ex: Extraction,
    seqs: dict[str, Any],
    out: dict[str, Any],
    *,
    modalities: list[str],
    model_dir: Path,
    spec: dict[str, Any],
    fusion_config: dict[str, Any],
) -> dict[str, Any]:
    """Video `i` of a batch as its prediction record (the per-video JSON).

    `seqs`: the batch's embedding sequences per modality; `out`: the batch's model outputs
    (:meth:`mepr.predict.predictor.Predictor.run_models`); the rest describes the model.
    """
    mods = modalities
    probs, traits = out["probs"][i], out["traits"][i]
    present = out["present"][i]
    per_mod = {}
    for j, m in enumerate(mods):
        mask = seqs[m].mask[i]
        per_mod[m] = {
            "present": bool(present[j]),
            "valid_steps": int(mask.sum()),
            "steps": int(mask.size) if present[j] else 0,
            "emotion_probabilities": dict(
                zip(EMOTIONS, out["modality_probs"][i, j].tolist(), strict=True)
            )
            if present[j]
            else None,
            "personality_scores": dict(
                zip(TRAITS, out["modality_traits"][i, j].tolist(), strict=True)
            )
            if present[j]
            else None,
            "missing_reason": None if present[j] else missing_reason(m, ex),
        }
    top = int(np.argmax(probs))
    if probs[0] >= NEUTRAL_THRESHOLD:
        shown = []
    else:
        shown = [e for e, p in zip(EMOTIONS[1:], probs[1:], strict=True) if p >= PRESENCE_THRESHOLD]
    graph = out["graph"]
    query = out["query"]
    fusion: dict[str, Any] = {
        "modalities": mods,
        "graph_attention": graph[i].tolist() if graph is not None else None,
        "query_attention": {
            "emotion": dict(zip(mods, query[i, 0].tolist(), strict=True)),
            "personality": dict(zip(mods, query[i, 1].tolist(), strict=True)),
        }
        if query is not None
        else None,
        "leave_one_out": {
            "emotion": {
                m: dict(zip(EMOTIONS, out["loo_emotion"][i, j].tolist(), strict=True))
                if present[j]
                else None
                for j, m in enumerate(mods)
            },
            "personality": {
                m: dict(zip(TRAITS, out["loo_personality"][i, j].tolist(), strict=True))
                if present[j]
                else None
                for j, m in enumerate(mods)
            },
        },
    }
    meta = ex.meta
    duration = None
    if meta.get("fps") and meta.get("frame_count"):
        duration = meta["frame_count"] / meta["fps"]
    elif ex.has_audio:
        duration = ex.audio["n_samples"] / ex.audio["sample_rate"]
    timings = dict(ex.timings)
    return {
        "schema": PREDICTION_SCHEMA,
        "version": PREDICTION_VERSION,
        "video": {
            "id": ex.video.video_id,
            "path": str(ex.video.path),
            "file_name": ex.video.path.name,
            "size_bytes": meta.get("size_bytes"),
            "duration_s": duration,
            "fps": meta.get("fps"),
            "frame_count": meta.get("frame_count"),
            "width": meta.get("width"),
            "height": meta.get("height"),
            "has_audio": ex.has_audio,
            "audio_seconds": ex.audio["n_samples"] / ex.audio["sample_rate"]
            if ex.has_audio
            else 0.0,
        },
        "model": {
            "dir": str(model_dir),
            "modalities": mods,
            "fusion_sha256": spec["fusion"]["sha256"],
            "encoders": {m: spec["encoders"][m].get("model") for m in mods},
            "trained_with_mepr": fusion_config.get("mepr_version"),
        },
        "emotion": {
            "probabilities": dict(zip(EMOTIONS, probs.tolist(), strict=True)),
            "top": EMOTIONS[top],
            "present": shown,
        },
        "personality": {"scores": dict(zip(TRAITS, traits.tolist(), strict=True))},
        "modalities": per_mod,
        "missing_modalities": [m for j, m in enumerate(mods) if not present[j]],
        "fusion": fusion,
        "transcript": ex.transcript,
        "frames": [
            {
                "step": r["step"],
                "frame_index": r["frame_index"],
                "timestamp": r["timestamp"],
                "face_score": r["face_score"],
                "face_box": r["face_box"],
                "body_score": r["body_score"],
                "body_box": r["body_box"],
            }
            for r in ex.frame_rows
        ],
        "warnings": list(dict.fromkeys([*ex.errors.values(), *ex.warnings])),
        "timings_s": timings,
        "mepr_version": __version__,
    }
