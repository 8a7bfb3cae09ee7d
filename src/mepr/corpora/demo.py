"""Offline demo corpus: short real mp4 clips with a real face, real speech and planted signal.

Every clip shows a real photograph (``skimage.data.astronaut()``, head and shoulders) moving
over a synthetic background, and speaks a short sentence synthesised with ``espeak-ng``.  The
labels are planted in several modalities so that tiny models trained on ~20 clips beat chance:

emotion (MOSEI-like intensities; clip ``i`` has class ``i % 7``)
    face tint colour, face scale, motion style, background colour (scene), espeak pitch and
    speed (audio), class words in the sentence (text).
personality (five correlated traits in [0, 1] around one latent impression)
    openness -> face tint and brightness, extraversion -> face scale, motion range and speech
    speed, agreeableness -> pitch and background warmth, conscientiousness -> background
    clutter and words, non_neuroticism -> camera shake and words.

Everything is deterministic given the seed: frames are rendered with numpy/OpenCV, encoded by
ffmpeg (single-threaded, bit-exact flags), so two runs give identical files.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from mepr.config import DemoParams
from mepr.labels import EMOTIONS, TASKS, TRAITS

AUDIO_RATE = 16000  # sample rate of the muxed AAC track
ESPEAK_VOICE = "en-us+f3"
# split of the k-th clip of a cycle: 3 train, 1 dev, 1 test per 5 (60/20/20)
_SPLIT_CYCLE = ("train", "dev", "test", "train", "train")

# portrait crop of skimage.data.astronaut() (rows, cols) and the face centre inside the crop
_CROP = (slice(8, 344), slice(96, 352))
_FACE_CENTRE = (129.0, 112.0)  # x, y in crop pixels


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


def _rng(seed: int, corpus: str, index: int) -> np.random.Generator:
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
# rendering


@lru_cache(maxsize=1)
def _portrait() -> tuple[np.ndarray, np.ndarray]:
    """The head-and-shoulders crop (float32 RGB) and its soft elliptical alpha mask."""
    import cv2
    from skimage import data

    crop = data.astronaut()[_CROP].astype(np.float32)
    h, w = crop.shape[:2]
    mask = np.zeros((h, w), np.float32)
    cv2.ellipse(mask, (w // 2, int(h * 0.56)), (int(w * 0.47), int(h * 0.52)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), sigmaX=6)
    return crop, mask


def _background(
    rng: np.random.Generator,
    size: tuple[int, int],
    base: np.ndarray,
    clutter: int,
) -> np.ndarray:
    """A scene canvas (float32 RGB, h x w): vertical gradient plus a few coloured shapes."""
    import cv2

    h, w = size
    top = np.clip(base * 1.25 + rng.normal(0, 10, 3), 0, 255)
    bottom = np.clip(base * 0.6 + rng.normal(0, 10, 3), 0, 255)
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    canvas = np.ascontiguousarray(np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)))
    canvas = canvas.astype(np.float32)
    for _ in range(clutter):
        colour = tuple(float(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        r = int(rng.integers(max(4, h // 20), max(5, h // 6)))
        if rng.random() < 0.5:
            cv2.circle(canvas, (x, y), r, colour, -1)
        else:
            cv2.rectangle(canvas, (x - r, y - r), (x + r, y + int(r * 1.5)), colour, -1)
    return canvas


@dataclass(frozen=True)
class _ClipStyle:
    tint: np.ndarray  # RGB multiplier in [0, 1.x]
    tint_strength: float
    brightness: float
    scale: float  # portrait height / frame height
    motion: str
    amplitude: float  # horizontal travel as a fraction of the width
    shake: float  # per-frame random offset, pixels at 240p
    background: np.ndarray  # canvas, float32 RGB


def _render_frames(
    style: _ClipStyle,
    rng: np.random.Generator,
    params: DemoParams,
    W: int,
    H: int,
    person: bool = True,
):
    """Yield uint8 RGB frames of the clip (just the panning scene when not `person`)."""
    import cv2

    crop, mask = _portrait()
    tint = 1.0 - style.tint_strength + style.tint_strength * style.tint
    fg = np.clip(crop * tint[None, None, :] * style.brightness, 0, 255).astype(np.float32)
    fx, fy = _FACE_CENTRE
    n = max(1, int(round(params.seconds * params.fps)))
    pad_y = (style.background.shape[0] - H) // 2
    pad_x = (style.background.shape[1] - W) // 2
    phase = float(rng.uniform(0, 2 * math.pi))
    unit = H / 240.0
    for k in range(n):
        t = k / max(1, params.fps)
        cx = W * (0.5 + style.amplitude * math.sin(2 * math.pi * 0.4 * t + phase))
        cy = H * 0.40
        scale = style.scale
        angle = 0.0
        if style.motion == "bounce":
            cy -= H * 0.05 * abs(math.sin(2 * math.pi * 1.5 * t))
        elif style.motion == "droop":
            cy += H * 0.08 * min(1.0, t / max(params.seconds, 1e-6))
            angle = -6.0 * min(1.0, t / max(params.seconds, 1e-6))
        elif style.motion == "zoom":
            scale *= 1.0 + 0.18 * min(1.0, t / max(params.seconds * 0.5, 1e-6))
        elif style.motion == "turn":
            angle = 8.0 * math.sin(2 * math.pi * 1.0 * t)
        elif style.motion == "shake":
            angle = 3.0 * math.sin(2 * math.pi * 4.0 * t)
        elif style.motion == "tremble":
            cx += 2.0 * unit * math.sin(2 * math.pi * 7.0 * t)
        jitter = rng.normal(0.0, style.shake * unit, 2) if style.shake > 0 else np.zeros(2)
        cx += jitter[0]
        cy += jitter[1]
        s = scale * H / crop.shape[0]
        a = math.radians(angle)
        cos, sin = s * math.cos(a), s * math.sin(a)
        m = np.array(
            [
                [cos, -sin, cx - (cos * fx - sin * fy)],
                [sin, cos, cy - (sin * fx + cos * fy)],
            ],
            np.float32,
        )
        warped = cv2.warpAffine(fg, m, (W, H), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        alpha = cv2.warpAffine(mask, m, (W, H), flags=cv2.INTER_LINEAR, borderValue=0)
        # the camera pans slowly over the scene canvas
        ox = int(round(pad_x + pad_x * 0.8 * math.sin(2 * math.pi * 0.25 * t + phase)))
        oy = int(round(pad_y + pad_y * 0.5 * math.cos(2 * math.pi * 0.2 * t)))
        bg = style.background[oy : oy + H, ox : ox + W]
        frame = bg + (warped - bg) * alpha[..., None] if person else bg
        yield np.clip(frame + 0.5, 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# speech


def _espeak(text: str, speed: int, pitch: int, workdir: Path) -> tuple[np.ndarray, int]:
    """Synthesise ``text``: mono int16 samples and their rate."""
    out = workdir / "speech.wav"
    cmd = ["espeak-ng", "-v", ESPEAK_VOICE, "-s", str(speed), "-p", str(pitch), "-w", str(out)]
    proc = subprocess.run([*cmd, text], capture_output=True, text=True)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"espeak-ng failed ({proc.returncode}): {proc.stderr.strip()}")
    with wave.open(str(out), "rb") as w:
        rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
        raw = w.readframes(w.getnframes())
    if width != 2:
        raise RuntimeError(f"espeak-ng wrote {8 * width}-bit audio, expected 16-bit")
    pcm = np.frombuffer(raw, dtype="<i2").reshape(-1, channels)[:, 0].copy()
    return pcm, rate


def _speak_to_fit(
    candidates: list[str], speed: int, pitch: int, seconds: float, workdir: Path
) -> tuple[str, np.ndarray, int]:
    """The longest candidate sentence whose speech fits in the clip (else the shortest, cut)."""
    budget = max(0.2, seconds - 0.1)
    for i, text in enumerate(candidates):
        pcm, rate = _espeak(text, speed, pitch, workdir)
        if len(pcm) / rate <= budget or i == len(candidates) - 1:
            return text, pcm, rate
    raise AssertionError("unreachable")


def _clip_audio(pcm: np.ndarray, rate: int, seconds: float, rng: np.random.Generator) -> bytes:
    """The speech placed at a small random offset in a clip-long track: a WAV file's bytes."""
    n = int(round(seconds * rate))
    track = np.zeros(n, np.int16)
    pcm = pcm[:n]
    slack = n - len(pcm)
    start = int(rng.integers(0, min(slack, int(0.1 * rate)) + 1)) if slack > 0 else 0
    track[start : start + len(pcm)] = pcm
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(track.tobytes())
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# one clip


def _frame_size(params: DemoParams) -> tuple[int, int]:
    """Width and height, rounded down to even numbers (yuv420p needs them)."""
    return params.width - params.width % 2, params.height - params.height % 2


def _canvas_size(W: int, H: int) -> tuple[int, int]:
    """The scene canvas (h, w): the frame plus a margin for the camera to pan over."""
    return H + 2 * max(8, H // 12), W + 2 * max(8, W // 12)


def _plan_clip(
    task: str, index: int, rng: np.random.Generator, params: DemoParams, workdir: Path
) -> tuple[dict[str, float], _ClipStyle, str, np.ndarray, int]:
    """A clip's labels, look and speech: (label, style, text said, its samples, their rate)."""
    W, H = _frame_size(params)
    make = _emotion_clip if task == "emotion" else _personality_clip
    label, style, candidates, speed, pitch = make(index, rng, W, H)
    return label, style, *_speak_to_fit(candidates, speed, pitch, params.seconds, workdir)


def _label_row(
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
    background = _background(
        rng, _canvas_size(W, H), np.asarray(st.background, np.float32), int(rng.integers(2, 5))
    )
    style = _ClipStyle(
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
    background = _background(
        rng, _canvas_size(W, H), cool * (1 - a) + warm * a, int(round(1 + 7 * (1 - c)))
    )
    style = _ClipStyle(
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


def _encode(
    frames,
    wav: bytes | None,
    out: Path,
    params: DemoParams,
    W: int,
    H: int,
    workdir: Path,
) -> None:
    """Encode frames + speech to ``out`` (H.264 yuv420p + AAC) through a temp file + rename;
    ``wav=None`` writes a file without an audio track."""
    wav_path = workdir / "track.wav"
    if wav is not None:
        wav_path.write_bytes(wav)
    audio_in = ["-i", str(wav_path)] if wav is not None else []
    audio_map = ["-map", "1:a:0"] if wav is not None else []
    video = b"".join(f.tobytes() for f in frames)
    cmd = [
        "ffmpeg",
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{W}x{H}",
        "-r",
        str(params.fps),
        "-i",
        "pipe:0",
        *audio_in,
        "-map",
        "0:v:0",
        *audio_map,
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-pix_fmt",
        "yuv420p",
        "-threads",
        "1",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-ar",
        str(AUDIO_RATE),
        "-ac",
        "1",
        "-t",
        f"{params.seconds:.3f}",
        "-fflags",
        "+bitexact",
        "-flags:v",
        "+bitexact",
        "-flags:a",
        "+bitexact",
        "-map_metadata",
        "-1",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
    ]
    with _replacing(out) as (fd, tmp):
        os.close(fd)
        proc = subprocess.run([*cmd, tmp], input=video, capture_output=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"ffmpeg failed on {out.name}: {proc.stderr.decode(errors='replace').strip()}"
            )


@contextmanager
def _replacing(path: Path) -> Iterator[tuple[int, str]]:
    """A temp file beside `path` (open fd, name) that replaces `path` when the block ends
    without error, and is removed when it fails: readers never see a half-written file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        yield fd, tmp
        _publish(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _publish(tmp: str, out: Path) -> None:
    """Give the temp file ordinary permissions (mkstemp makes it 0600) and move it in place."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, out)


def _check_tools() -> None:
    missing = [t for t in ("ffmpeg", "espeak-ng") if shutil.which(t) is None]
    if missing:
        raise RuntimeError(
            f"the demo corpus needs {' and '.join(missing)} on PATH "
            "(installed by `make setup`: workflow/scripts/install-system-deps.sh)"
        )


def generate(
    root: Path,
    corpus: str,
    task: str,
    params: DemoParams,
    seed: int,
    with_transcripts: bool,
) -> Path:
    """Write ``root/videos/<corpus>_NNNN.mp4`` and ``root/labels.csv`` (last); return the latter.

    Columns of labels.csv: video_id, split, the 7 emotion intensities (task=emotion) or the 5
    trait scores (task=personality), transcript (empty unless ``with_transcripts``).
    With ``params.bad_inputs`` the corpus also gets one train-split clip per ``BAD_INPUTS``
    kind (ids from ``bad_video_id``), after the good ones, which they leave unchanged.
    """
    from tqdm import tqdm

    if task not in TASKS:
        raise ValueError(f"unknown task '{task}', expected one of {TASKS}")
    if params.clips < 1:
        raise ValueError("demo.clips must be at least 1")
    _check_tools()
    root = Path(root)
    videos = root / "videos"
    videos.mkdir(parents=True, exist_ok=True)
    for stale in videos.glob(".*.tmp"):  # left by an interrupted run
        stale.unlink(missing_ok=True)
    W, H = _frame_size(params)
    label_cols = list(EMOTIONS if task == "emotion" else TRAITS)
    rows: list[dict[str, object]] = []
    ids = [f"{corpus}_{i:04d}" for i in range(params.clips)]
    with tempfile.TemporaryDirectory(prefix="mepr-demo-") as work:
        workdir = Path(work)
        for i in tqdm(range(params.clips), desc=f"demo {corpus}", unit="clip"):
            rng = _rng(seed, corpus, i)
            label, style, text, pcm, rate = _plan_clip(task, i, rng, params, workdir)
            wav = _clip_audio(pcm, rate, params.seconds, rng)
            frames = _render_frames(style, rng, params, W, H)
            _encode(frames, wav, videos / f"{ids[i]}.mp4", params, W, H, workdir)
            split = split_of(i, params.clips, task)
            rows.append(_label_row(ids[i], split, task, label, text if with_transcripts else ""))
        if params.bad_inputs:
            for kind in BAD_INPUTS:
                rows.append(
                    _bad_clip(kind, corpus, task, params, seed, with_transcripts, videos, workdir)
                )
    keep = {f"{r['video_id']}.mp4" for r in rows}
    for old in videos.glob(f"{corpus}_*.mp4"):  # clips of an earlier, larger run
        if old.name not in keep:
            old.unlink()
    return _write_labels(
        root / "labels.csv", rows, ["video_id", "split", *label_cols, "transcript"]
    )


# ---------------------------------------------------------------------------------------------
# bad inputs: labelled clips that extraction must survive (demo.bad_inputs)

# kind -> what the workflow should make of it
BAD_INPUTS: dict[str, str] = {
    "truncated": "an mp4 cut in the middle of its media data (the header, written first, "
    "survives): what decodes is kept, the lying frame count is recorded",
    "empty": "a zero-length file: skipped by the manifest",
    "no_audio": "no audio track: recorded, the audio and ASR text are masked",
    "silent": "an audio track of digital silence: recorded as 'silent audio track'",
    "faceless": "the scene without any person: no face / body crops, recorded",
    "unicode": "a good clip whose file name has unicode and spaces: processed like any other",
    "corrupt": "random bytes named .mp4: recorded as unreadable",
}


def bad_video_id(corpus: str, kind: str) -> str:
    return f"{corpus}_bad ünïcödé näme 名前" if kind == "unicode" else f"{corpus}_bad_{kind}"


def _bad_clip(
    kind: str,
    corpus: str,
    task: str,
    params: DemoParams,
    seed: int,
    with_transcripts: bool,
    videos: Path,
    workdir: Path,
) -> dict[str, object]:
    """Write one bad clip of `kind` and return its labels.csv row (train split)."""
    if kind not in BAD_INPUTS:
        raise ValueError(f"unknown bad input '{kind}', known: {sorted(BAD_INPUTS)}")
    W, H = _frame_size(params)
    j = list(BAD_INPUTS).index(kind)
    rng = _rng(seed, f"{corpus}/bad", j)  # its own stream: the good clips do not change
    label, style, said, pcm, rate = _plan_clip(task, j, rng, params, workdir)
    vid = bad_video_id(corpus, kind)
    out = videos / f"{vid}.mp4"
    if kind == "empty":
        _write_bytes(out, b"")
    elif kind == "corrupt":
        _write_bytes(out, rng.integers(0, 256, 64 * 1024, dtype=np.uint8).tobytes())
    else:
        wav: bytes | None = _clip_audio(pcm, rate, params.seconds, rng)
        if kind == "no_audio":
            wav, said = None, ""
        elif kind == "silent":
            wav, said = _clip_audio(np.zeros(0, np.int16), rate, params.seconds, rng), ""
        frames = _render_frames(style, rng, params, W, H, person=kind != "faceless")
        target = workdir / "whole.mp4" if kind == "truncated" else out
        _encode(frames, wav, target, params, W, H, workdir)
        if kind == "truncated":  # faststart: the header survives, half the media data not
            data = target.read_bytes()
            start = max(data.find(b"mdat"), 0)
            _write_bytes(out, data[: start + (len(data) - start) // 2])
            target.unlink()
    return _label_row(vid, "train", task, label, said if with_transcripts else "")


def _write_bytes(path: Path, data: bytes) -> None:
    with _replacing(path) as (fd, _), os.fdopen(fd, "wb") as f:
        f.write(data)


def _write_labels(path: Path, rows: list[dict[str, object]], columns: list[str]) -> Path:
    with _replacing(path) as (fd, _), os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


# ---------------------------------------------------------------------------------------------
# adapter: the generated corpus as manifest rows


def build(
    name: str, cfg: dict[str, object], n_shards: int
) -> tuple[list[dict[str, object]], list[tuple[str, str]]]:
    """Manifest rows of a generated corpus: ``root/labels.csv`` + ``root/videos/``."""
    from mepr.corpora.manifest import VideoFinder, assemble, read_csv_labels, require_root

    root = require_root(name, Path(str(cfg["root"])))
    task = str(cfg.get("task") or "emotion")
    labels = str(cfg.get("labels") or "labels.csv")
    videos = root / str(cfg.get("videos") or "videos")
    failures: list[tuple[str, str]] = []
    records = read_csv_labels(name, root, labels, task, failures)
    finder = VideoFinder(lambda record: [videos])
    return assemble(name, task, records, finder, n_shards, failures), failures
