"""What each demo clip is: its labels and split, its looks (style) and what it says.

Labels are planted in several modalities so that tiny models trained on ~20 clips beat chance
(see `mepr.corpora.demo`): each emotion class has its own `EMOTION_STYLES` entry, and each
personality trait drives its own cues (`_personality_clip`). Every draw comes from the clip's
own random stream (`clip_rng`), so a clip does not depend on the others.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mepr.config import DemoParams
from mepr.corpora.demo_render import ClipStyle, canvas_size, frame_size, scene_canvas
from mepr.corpora.demo_speech import speak_to_fit
from mepr.labels import EMOTIONS, TRAITS

# split of the k-th clip of a cycle: 3 train, 1 dev, 1 test per 5 (60/20/20)
_SPLIT_CYCLE = ("train", "dev", "test", "train", "train")


@dataclass(frozen=True)
class _EmotionStyle:
    tint: tuple[int, int, int]  # RGB multiplier colour for the face
    background: tuple[int, int, int]  # RGB base colour of the scene
    scale: float  # portrait height as a fraction of the frame height
    pitch: int  # espeak-ng pitch 0..99
    speed: int  # espeak-ng words per minute
    motion: str
    words: tuple[str, ...]


EMOTION_STYLES: dict[str, _EmotionStyle] = {
    "neutral": _EmotionStyle(
        (200, 200, 200),
        (128, 128, 128),
        1.00,
        45,
        150,
        "still",
        ("okay", "normal", "fine", "usual", "plain"),
    ),
    "anger": _EmotionStyle(
        (255, 70, 60),
        (150, 40, 30),
        1.20,
        25,
        195,
        "shake",
        ("angry", "furious", "mad", "hate", "annoyed"),
    ),
    "disgust": _EmotionStyle(
        (120, 230, 80),
        (60, 110, 40),
        0.90,
        35,
        135,
        "turn",
        ("gross", "disgusting", "nasty", "sick", "awful"),
    ),
    "fear": _EmotionStyle(
        (170, 90, 255),
        (50, 30, 90),
        0.80,
        80,
        205,
        "tremble",
        ("scared", "afraid", "terrified", "danger", "nervous"),
    ),
    "happiness": _EmotionStyle(
        (255, 230, 60),
        (240, 200, 90),
        1.30,
        70,
        175,
        "bounce",
        ("happy", "great", "wonderful", "love", "joy"),
    ),
    "sadness": _EmotionStyle(
        (70, 120, 255),
        (30, 50, 110),
        0.85,
        15,
        115,
        "droop",
        ("sad", "lonely", "crying", "miserable", "sorry"),
    ),
    "surprise": _EmotionStyle(
        (60, 240, 240),
        (90, 200, 210),
        1.10,
        95,
        185,
        "zoom",
        ("wow", "amazing", "surprised", "unexpected", "shocked"),
    ),
}

# (low words, high words) per trait: the sentence takes one word per trait by its score
TRAIT_WORDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "conscientiousness": (
        ("messy", "lazy", "careless", "late"),
        ("organized", "careful", "planned", "precise"),
    ),
    "non_neuroticism": (
        ("worried", "nervous", "anxious", "stressed"),
        ("calm", "relaxed", "steady", "secure"),
    ),
    "extraversion": (("quiet", "alone", "shy", "silent"), ("party", "friends", "loud", "social")),
    "agreeableness": (("rude", "harsh", "cold", "bitter"), ("kind", "friendly", "warm", "gentle")),
    "openness": (("routine", "simple", "plain", "usual"), ("creative", "curious", "art", "ideas")),
}


# ---------------------------------------------------------------------------------------------
# labels and splits


def clip_rng(seed: int, corpus: str, index: int) -> np.random.Generator:
    """The random stream of one clip, from the seed, the corpus name and the clip's index only:
    a clip stays the same when the corpus gets more clips."""
    tag = int.from_bytes(hashlib.sha1(corpus.encode("utf-8")).digest()[:4], "big")
    return np.random.default_rng(np.random.SeedSequence([seed, tag, index]))


def split_of(index: int, n_clips: int, task: str) -> str:
    """Deterministic split of clip ``index``.

    Emotion clips cycle through the 7 classes; when every class has at least 3 clips the
    split goes by the clip's occurrence within its class (so each class is in every split),
    otherwise (tiny corpora) by the clip index, like personality clips.
    """
    if task == "emotion" and n_clips >= 3 * len(EMOTIONS):
        return _SPLIT_CYCLE[(index // len(EMOTIONS)) % len(_SPLIT_CYCLE)]
    return _SPLIT_CYCLE[index % len(_SPLIT_CYCLE)]


def _emotion_label(index: int, rng: np.random.Generator) -> tuple[int, dict[str, float]]:
    cls = index % len(EMOTIONS)
    values = dict.fromkeys(EMOTIONS[1:], 0.0)
    if cls != 0:
        primary = EMOTIONS[cls]
        values[primary] = float(rng.integers(3, 10)) / 3.0  # 1.0 .. 3.0 in thirds
        if rng.random() < 0.3:  # a weaker secondary emotion, as MOSEI often has
            others = [e for e in EMOTIONS[1:] if e != primary]
            values[others[int(rng.integers(len(others)))]] = float(rng.integers(1, 3)) / 3.0
    neutral = 1.0 if all(v == 0.0 for v in values.values()) else 0.0
    return cls, {"neutral": neutral, **values}


# ---------------------------------------------------------------------------------------------
# one clip


def plan_clip(
    task: str, index: int, rng: np.random.Generator, params: DemoParams, workdir: Path
) -> tuple[dict[str, float], ClipStyle, str, np.ndarray, int]:
    """A clip's labels, look and speech: (label, style, text said, its samples, their rate)."""
    W, H = frame_size(params)
    make = _emotion_clip if task == "emotion" else _personality_clip
    label, style, candidates, speed, pitch = make(index, rng, W, H)
    return label, style, *speak_to_fit(candidates, speed, pitch, params.seconds, workdir)


def label_row(
    video_id: str, split: str, task: str, label: dict[str, float], transcript: str
) -> dict[str, object]:
    """A labels.csv row: the task's label columns to 4 decimals."""
    cols = EMOTIONS if task == "emotion" else TRAITS
    return {
        "video_id": video_id,
        "split": split,
        **{k: f"{label[k]:.4f}" for k in cols},
        "transcript": transcript,
    }


def _emotion_clip(index: int, rng: np.random.Generator, W: int, H: int):
    cls, label = _emotion_label(index, rng)
    name = EMOTIONS[cls]
    st = EMOTION_STYLES[name]
    intensity = max(label[e] for e in EMOTIONS[1:]) if cls else 1.0
    background = scene_canvas(
        rng, canvas_size(W, H), np.asarray(st.background, np.float32), int(rng.integers(2, 5))
    )
    style = ClipStyle(
        tint=np.asarray(st.tint, np.float32) / 255.0,
        tint_strength=0.25 + 0.1 * intensity,
        brightness=float(rng.uniform(0.92, 1.08)),
        scale=st.scale * float(rng.uniform(0.95, 1.05)),
        motion=st.motion,
        amplitude=float(rng.uniform(0.04, 0.10)),
        shake=0.0,
        background=background,
    )
    words = list(st.words)
    order = rng.permutation(len(words))
    w1, w2, w3 = (words[int(j)] for j in order[:3])
    candidates = [
        f"I feel {w1} and {w2} {w3}",
        f"I feel {w1} and {w2}",
        f"{w1} and {w2}",
        f"{w1} {w2}",
        w1,
    ]
    speed = st.speed + int(rng.integers(-10, 11))
    pitch = int(np.clip(st.pitch + int(rng.integers(-5, 6)), 0, 99))
    return label, style, candidates, speed, pitch


def _personality_clip(index: int, rng: np.random.Generator, W: int, H: int):
    # Real FIv2 traits are strongly inter-correlated (the annotators' halo effect): draw all
    # five around one latent impression, so ~20 clips are enough to learn it; every trait
    # still drives its own cues below.
    impression = float(rng.uniform(0.0, 1.0))
    traits = {
        t: round(float(np.clip(0.1 + 0.8 * impression + rng.normal(0.0, 0.05), 0.0, 1.0)), 4)
        for t in TRAITS
    }
    o, c, e, a, n = (traits[t] for t in TRAITS)
    low_tint, high_tint = np.array([150, 165, 190]), np.array([255, 150, 80])
    cool, warm = np.array([60, 90, 150], np.float32), np.array([200, 140, 80], np.float32)
    background = scene_canvas(
        rng, canvas_size(W, H), cool * (1 - a) + warm * a, int(round(1 + 7 * (1 - c)))
    )
    style = ClipStyle(
        tint=(low_tint * (1 - o) + high_tint * o).astype(np.float32) / 255.0,
        tint_strength=0.45,
        brightness=0.75 + 0.45 * o,
        scale=0.80 + 0.50 * e,
        motion="still",
        amplitude=0.02 + 0.10 * e,
        shake=2.5 * (1 - n),
        background=background,
    )
    picks = []
    for trait in ("conscientiousness", "non_neuroticism", "extraversion", "agreeableness"):
        low, high = TRAIT_WORDS[trait]
        pool = high if traits[trait] >= 0.5 else low
        picks.append(pool[int(rng.integers(len(pool)))])
    w_c, w_n, w_e, w_a = picks
    candidates = [
        f"I am {w_c} {w_n} and {w_e} {w_a}",
        f"{w_c} {w_n} and {w_e}",
        f"{w_c} {w_n} {w_e}",
        f"{w_c} {w_n}",
        w_c,
    ]
    speed = int(round(120 + 100 * e))
    pitch = int(round(15 + 75 * a))
    return traits, style, candidates, speed, pitch
