"""Plain-language reading of one prediction record (what the report's summary box says)."""

from __future__ import annotations

from typing import Any

from mepr.embed.refs import ModelRef
from mepr.labels import EMOTIONS, TRAITS

EMOTION_ADJECTIVE = {
    "neutral": "neutral",
    "anger": "angry",
    "disgust": "disgusted",
    "fear": "fearful",
    "happiness": "happy",
    "sadness": "sad",
    "surprise": "surprised",
}
TRAIT_LABEL = {
    "openness": "Openness",
    "conscientiousness": "Conscientiousness",
    "extraversion": "Extraversion",
    "agreeableness": "Agreeableness",
    "non_neuroticism": "Non-neuroticism",
}
# (reads high, reads low) for each trait
TRAIT_WORDS = {
    "openness": ("curious and open to new things", "conventional, keen on the familiar"),
    "conscientiousness": ("organised and dependable", "spontaneous rather than structured"),
    "extraversion": ("outgoing and energetic", "reserved and quiet"),
    "agreeableness": ("warm and cooperative", "detached or critical"),
    "non_neuroticism": ("calm and even-tempered", "tense or easily stressed"),
}
MODALITY_LABEL = {
    "face": "face",
    "body": "body",
    "scene": "scene",
    "audio": "voice",
    "text": "words",
}
TRAIT_MARGIN = 0.05  # scores within 0.5 ± this read as "middle"


def _modality(m: str) -> str:
    label = MODALITY_LABEL.get(m, m)
    return label if label == m else f"{label} ({m})"


def _pct(p: float) -> str:
    return f"{100 * p:.0f} %"


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def emotion_headline(probs: dict[str, float]) -> str:
    ranked = sorted(probs.items(), key=lambda kv: -kv[1])
    (e1, p1), (e2, p2) = ranked[0], ranked[1]
    if probs["neutral"] >= 6 / len(EMOTIONS):
        return f"Comes across as neutral ({_pct(probs['neutral'])})"
    adj1, adj2 = EMOTION_ADJECTIVE[e1], EMOTION_ADJECTIVE[e2]
    if p1 >= 0.6:
        return f"Clearly {adj1} ({_pct(p1)})"
    if p1 - p2 < 0.08:
        return f"Between {adj1} ({_pct(p1)}) and {adj2} ({_pct(p2)})"
    return f"Mostly {adj1} ({_pct(p1)}), some {adj2} ({_pct(p2)})"


def summarize(record: dict[str, Any]) -> dict[str, Any]:
    """{"headline": str, "points": [str], "caveats": [str]} for one prediction record."""
    probs = record["emotion"]["probabilities"]
    scores = record["personality"]["scores"]
    mods = record["model"]["modalities"]
    per = record["modalities"]
    points: list[str] = []

    present = record["emotion"]["present"]
    if present:
        points.append(
            f"Emotions above the evaluation's presence threshold (1/7 ≈ 14 %): "
            f"{_join([f'{e} ({_pct(probs[e])})' for e in present])}."
        )
    else:
        points.append(
            "No emotion passes the presence threshold (1/7 ≈ 14 %): the clip reads as neutral."
        )

    high = sorted((t for t in TRAITS if scores[t] > 0.5 + TRAIT_MARGIN), key=lambda t: -scores[t])
    low = sorted((t for t in TRAITS if scores[t] < 0.5 - TRAIT_MARGIN), key=lambda t: scores[t])
    if not high and not low:
        points.append(
            "All five trait scores sit near the middle of the 0–1 scale "
            f"({0.5 - TRAIT_MARGIN:.2f}–{0.5 + TRAIT_MARGIN:.2f}): no trait stands out."
        )
    else:
        parts = [f"{TRAIT_WORDS[t][0]} ({TRAIT_LABEL[t].lower()} {scores[t]:.2f})" for t in high]
        parts += [f"{TRAIT_WORDS[t][1]} ({TRAIT_LABEL[t].lower()} {scores[t]:.2f})" for t in low]
        points.append(
            f"First impression of the person: {_join(parts)}; 0.5 is the middle of the scale."
        )

    used = [m for m in mods if per[m]["present"]]
    missing = [m for m in mods if not per[m]["present"]]
    text = f"Based on {len(used)} of {len(mods)} modalities ({_join(used)})"
    if missing:
        by_reason: dict[str, list[str]] = {}
        for m in missing:
            by_reason.setdefault(per[m]["missing_reason"], []).append(m)
        reasons = "; ".join(f"{_join(ms)}: {why}" for why, ms in by_reason.items())
        text += f"; missing — {reasons}"
    points.append(text + ".")

    top = record["emotion"]["top"]
    loo = record["fusion"]["leave_one_out"]
    drops = {m: v[top] for m, v in loo["emotion"].items() if v is not None}
    if drops:
        best = max(drops, key=drops.get)
        if drops[best] >= 0.01:
            points.append(
                f"Most support for the {top} estimate comes from the {_modality(best)}: "
                f"without it, p({top}) would be {100 * drops[best]:.0f} points lower."
            )
        else:
            points.append(
                f"No single modality raises p({top}) by more than a point: the fusion relies on "
                "them jointly."
            )
    trait_change = {
        m: sum(abs(x) for x in v.values()) / len(v)
        for m, v in loo["personality"].items()
        if v is not None
    }
    if trait_change:
        best = max(trait_change, key=trait_change.get)
        points.append(
            f"For the traits, leaving out the {_modality(best)} changes the scores most "
            f"(by {trait_change[best]:.3f} on average)."
        )

    votes: dict[str, list[str]] = {}
    for m in used:
        p = per[m]["emotion_probabilities"]
        votes.setdefault(max(p, key=p.get), []).append(m)
    if len(used) > 1:
        agree = votes.get(top, [])
        if len(agree) == len(used):
            points.append(f"All {len(used)} modalities on their own also pick {top}.")
        else:
            picks = "; ".join(f"{_join(v)} → {e}" for e, v in votes.items())
            points.append(f"On their own the modalities disagree: {picks}.")

    caveats = [
        "Personality here means apparent personality: how annotators of the First Impressions "
        "corpus rated strangers from short clips. It is a first impression, not a personality test.",
        "Emotion probabilities come from a model trained on acted and online video "
        "(CMU-MOSEI-style labels); they describe the clip, not what the person feels.",
    ]
    if any(ModelRef.parse(str(ref)).is_demo for ref in record["model"]["encoders"].values()):
        caveats.insert(
            0,
            "This model was trained on the synthetic demo corpus with randomly initialised "
            "encoders: its outputs are meaningful for demo clips only.",
        )
    return {"headline": emotion_headline(probs), "points": points, "caveats": caveats}
