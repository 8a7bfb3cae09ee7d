"""A miniature of CMU-MOSEI as the CMU-MultimodalSDK distributes it, for rehearsals and tests.

`write_mosei_sdk(root, videos)` writes, under ``root``:

* ``cmumosei/CMU_MOSEI_Labels.csd`` and ``cmumosei/CMU_MOSEI_TimestampedWords.csd``: HDF5 files
  laid out as the SDK's ``write_CSD`` writes them: one top-level group (``All Labels``,
  ``words``) with ``data/<video>/features`` and ``data/<video>/intervals`` (n x 2, seconds in
  the full video) and ``metadata/<key>`` (one JSON string each). Label features are n x 7,
  [sentiment, happy, sad, anger, surprise, disgust, fear], one row per labelled segment; word
  features n x 1 byte strings, one per word, with ``b"sp"`` (silence) at the start of every
  segment;
* ``Raw/Videos/Full/Combined/<video>.mp4``: the video's segment clips concatenated: the video
  streams copied (ffmpeg concat demuxer, ``-c copy``, so the clips of one video must share
  codecs, size and rates, as the demo's do), the audio decoded, each clip's cut or padded to
  its video's length, and encoded once (AAC without noise substitution). Segment i's interval
  is [time of its first frame, time of the next segment's first frame) in the full video, so
  each interval holds exactly the frames of its source clip, and its audio;
* ``Raw/Videos/Segmented/Combined/<video>_<n>.mp4``: the source clips themselves;
* ``Raw/Transcript/Segmented/Combined/<video>.txt``: ``video___n___start___end___text`` per
  segment, labelled or not (the SDK's own link between segment numbers and intervals).

Segments are numbered from ``first_segment`` (0 by default) in time order. Emotions are given
by mepr name (`mepr.labels.EMOTIONS` minus neutral) as raw SDK intensities in [0, 3]; the
writer puts them in the SDK's column order. Use video ids of the shipped standard folds
(`mepr.corpora.mosei.standard_folds()`, or `fold_ids`) so the folds decide the splits, or pass
``folds`` to write a folds JSON (config key ``folds: folds.json``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mepr.corpora.manifest import normalise_split
from mepr.corpora.mosei import FULL_VIDEOS, SEGMENTED_TRANSCRIPTS, SEGMENTED_VIDEOS
from mepr.corpora.mosei_csd import (
    LABELS_CSD,
    SDK_EMOTIONS,
    SILENCE,
    WORDS_CSD,
    mosei_emotions,
    segment_id,
    standard_folds,
)

CSD_FOLDER = "cmumosei"  # where the SDK's examples download the .csd files
_SPLIT_KEYS = {"train": "train", "dev": "dev", "test": "test"}


@dataclass(frozen=True)
class MoseiSegment:
    """One segment of a replica video."""

    clip: Path  # an mp4 that plays as this segment
    # mepr emotion name (anger, disgust, fear, happiness, sadness, surprise) -> SDK intensity
    # in [0, 3], missing ones 0; None: an unlabelled segment (in the videos, the words and the
    # transcript, but not in the labels file)
    emotions: Mapping[str, float] | None
    text: str = ""  # its words, spread evenly over the segment in the words file
    sentiment: float = 0.0


@dataclass(frozen=True)
class MoseiVideo:
    """One full video of the replica, made of its segments in order."""

    video: str  # an SDK video id (a standard-fold id, so the shipped folds apply)
    segments: Sequence[MoseiSegment]
    full: bool = True  # write Raw/Videos/Full/Combined/<video>.mp4
    segmented: bool = True  # write the segment clips <video>_<n>.mp4
    transcript: bool = True  # write Raw/Transcript/Segmented/Combined/<video>.txt


@dataclass
class ReplicaSegment:
    """What the adapter must make of one labelled segment."""

    video_id: str  # manifest id: <video>_<start:.4f>_<end:.4f>
    video: str
    split: str | None  # from the folds written (or the standard ones); None: in no fold
    number: int  # segment number (clip name <video>_<number>.mp4, transcript line)
    start: float  # seconds in the full video
    end: float
    emotion: list[float]  # mepr order, as the manifest holds it (mosei_emotions)
    transcript: str | None
    clip: Path | None  # the segment clip written, if any
    full: Path | None  # the full video written, if any
    # the video the manifest row must name: the clip when its number is known (a transcript,
    # or by rank when there is neither a transcript nor a full video), else the full video
    path: Path | None = None
    interval: bool = False  # True: the row must carry start/end (the full video is used)


@dataclass
class MoseiReplica:
    root: Path
    labels: Path
    words: Path
    folds: Path | None
    segments: list[ReplicaSegment] = field(default_factory=list)  # labelled ones, sorted by id

    def expected(self) -> dict[str, dict[str, Any]]:
        """video_id -> the manifest fields a run must find (JSON-ready)."""
        return {
            s.video_id: {
                "video": s.video,
                "split": s.split,
                "start": s.start,
                "end": s.end,
                "emotion": s.emotion,
                "transcript": s.transcript,
                "path": str(s.path) if s.path else None,
                "interval": s.interval,
            }
            for s in self.segments
        }


def fold_ids(split: str, n: int, skip: int = 0) -> list[str]:
    """``n`` video ids of a standard fold (train / dev / test), from position ``skip``."""
    ids = standard_folds()[_SPLIT_KEYS[split]]
    if skip + n > len(ids):
        raise ValueError(f"the {split} fold has {len(ids)} videos")
    return ids[skip : skip + n]


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def _probe(path: Path, *args: str) -> str:
    return subprocess.run(
        ["ffprobe", "-v", "error", *args, str(path)], capture_output=True, text=True, check=True
    ).stdout


def _stream_format(path: Path) -> str:
    """What must agree between clips for a ``-c copy`` concat: codecs, size, rates."""
    entries = "stream=codec_type,codec_name,width,height,pix_fmt,sample_rate,channels,time_base"
    return _probe(path, "-show_entries", entries, "-of", "csv=p=0")


def _frame_times(path: Path) -> np.ndarray:
    """Presentation times of the video frames from the file's start (the time line of
    ffmpeg's ``-ss``, and of the intervals), sorted."""
    info = json.loads(
        _probe(
            path,
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=pts_time:format=start_time",
            "-of",
            "json",
        )  # fmt: skip
    )
    times = np.sort(np.asarray([float(p["pts_time"]) for p in info["packets"]], np.float64))
    start = info.get("format", {}).get("start_time", "0")
    return times - (float(start) if start not in ("", "N/A") else 0.0)


def _concat(clips: Sequence[Path], out: Path) -> list[int]:
    """The clips one after the other in ``out``; returns their frame counts.

    Video streams are copied (concat demuxer); audio is decoded, each clip's cut or padded
    with silence to its video's duration, and encoded once (AAC), so that audio and video stay
    in step across the joins (copying AAC tracks end to end would overlap their priming and
    padding samples at every join, and start the video after the first clip's priming). The
    encoder's noise substitution (PNS) is off: its noise depends on where decoding starts, so
    an interval decoded after a seek would differ (slightly) from the whole track's decode."""
    formats = [_stream_format(c) for c in clips]
    if len(set(formats)) > 1:
        raise ValueError(
            f"{out.name}: the clips differ in codec, size or rate, a -c copy concat needs them "
            f"equal: {', '.join(str(c) for c in clips)}"
        )
    audio = "audio" in formats[0]
    with tempfile.TemporaryDirectory(prefix="mepr-replica-") as tmp:
        parts, durations, counts = [], [], []
        for i, c in enumerate(clips):  # video only: the demuxer then starts the video at 0
            part = Path(tmp) / f"v{i}.mp4"
            _ffmpeg("-i", str(c), "-map", "0:v:0", "-c", "copy", str(part))
            info = json.loads(
                _probe(part, "-show_entries", "stream=duration,nb_frames", "-of", "json")
            )["streams"][0]
            parts.append(part)
            durations.append(float(info["duration"]))
            counts.append(int(info["nb_frames"]))
        listing = Path(tmp) / "list.txt"
        listing.write_text(
            "".join("file '{}'\n".format(str(p).replace("'", "'\\''")) for p in parts)
        )
        video = ["-f", "concat", "-safe", "0", "-i", str(listing)]
        if not audio:
            _ffmpeg(*video, "-c", "copy", str(out))
            return counts
        inputs = [arg for c in clips for arg in ("-i", str(c))]
        graph = ";".join(
            f"[{i + 1}:a:0]apad,atrim=end={d:.6f},asetpts=PTS-STARTPTS[a{i}]"
            for i, d in enumerate(durations)
        )
        graph += ";" + "".join(f"[a{i}]" for i in range(len(clips)))
        graph += f"concat=n={len(clips)}:v=0:a=1[a]"
        _ffmpeg(
            *video, *inputs, "-filter_complex", graph, "-map", "0:v:0", "-map", "[a]",
            "-c:v", "copy", "-c:a", "aac", "-aac_pns", "0", str(out),
        )  # fmt: skip
    return counts


def _intervals(counts: Sequence[int], full: Path) -> list[tuple[float, float]]:
    """Each clip's [start, end) in the concatenated video: from its first frame to the next."""
    times = _frame_times(full)
    if len(times) != sum(counts):
        raise RuntimeError(f"{full}: {len(times)} frames, the clips have {sum(counts)}")
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
    firsts = np.cumsum([0, *counts])
    bounds = [float(times[i]) for i in firsts[:-1]] + [float(times[-1]) + step]
    return [(round(bounds[i], 6), round(bounds[i + 1], 6)) for i in range(len(counts))]


def _sdk_row(segment: MoseiSegment) -> list[float]:
    emotions = dict(segment.emotions or {})
    unknown = set(emotions) - set(SDK_EMOTIONS)
    if unknown:
        raise ValueError(f"unknown emotion(s) {sorted(unknown)}; expected {SDK_EMOTIONS}")
    return [float(segment.sentiment), *(float(emotions.get(e, 0.0)) for e in SDK_EMOTIONS)]


def _metadata(root_name: str, description: str, dims: list[str]) -> dict[str, Any]:
    return {
        "root name": root_name,
        "computational sequence description": description,
        "dimension names": dims,
        "computational sequence version": "1.0",
        "alignment compatible": True,
        "dataset name": "CMU-MOSEI",
        "dataset version": "1.0",
        "creator": "mepr.corpora.replica_mosei (a miniature replica, not CMU-MOSEI data)",
        "contact": "none",
        "featureset bib citation": "none",
        "dataset bib citation": "none",
    }


def write_csd(
    path: Path,
    group: str,
    data: Mapping[str, tuple[np.ndarray, np.ndarray]],
    metadata: Mapping[str, Any],
) -> Path:
    """A computational sequence file as the SDK's ``write_CSD`` lays it out (uncompressed)."""
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        root = h5.create_group(group)
        data_group = root.create_group("data")
        for video, (features, intervals) in data.items():
            entry = data_group.create_group(video)
            entry.create_dataset("features", data=features)
            entry.create_dataset("intervals", data=intervals)
        meta = root.create_group("metadata")
        for key, value in metadata.items():
            ds = meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            ds[0] = json.dumps(value)
    return path


def _words(text: str, start: float, end: float) -> list[tuple[str, float, float]]:
    """``sp`` over the first tenth of the segment (at most 0.1 s), then the words evenly."""
    pad = min(0.1, (end - start) / 10)
    out = [(SILENCE, start, start + pad)]
    tokens = text.split()
    if tokens:
        step = (end - start - 2 * pad) / len(tokens)
        for k, w in enumerate(tokens):
            out.append((w, start + pad + k * step, start + pad + (k + 1) * step))
    return out


def write_mosei_sdk(
    root: str | Path,
    videos: Sequence[MoseiVideo],
    *,
    first_segment: int = 0,
    folds: Mapping[str, Sequence[str]] | None = None,
    labels_group: str = "All Labels",
    words_group: str = "words",
) -> MoseiReplica:
    """Write the replica under ``root`` (see the module docstring) and say what it holds."""
    root = Path(root)
    full_dir = root.joinpath(*FULL_VIDEOS)
    seg_dir = root.joinpath(*SEGMENTED_VIDEOS)
    txt_dir = root.joinpath(*SEGMENTED_TRANSCRIPTS)
    labels: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    words: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    expected: list[ReplicaSegment] = []
    seen: set[str] = set()
    split_of = {
        v: normalise_split(k) for k, ids in (folds or standard_folds()).items() for v in ids
    }
    for v in videos:
        if v.video in seen or not v.segments:
            raise ValueError(f"video '{v.video}': repeated, or without segments")
        seen.add(v.video)
        clips = [Path(s.clip) for s in v.segments]
        if v.full:
            full_dir.mkdir(parents=True, exist_ok=True)
            full = full_dir / f"{v.video}.mp4"
            intervals = _intervals(_concat(clips, full), full)
        else:  # the intervals still come from the concatenation
            with tempfile.TemporaryDirectory(prefix="mepr-replica-") as tmp:
                full = Path(tmp) / f"{v.video}.mp4"
                intervals = _intervals(_concat(clips, full), full)
        numbers = [first_segment + i for i in range(len(clips))]
        lines, rows, row_ivs, tokens = [], [], [], []
        for seg, number, (s, e), clip in zip(v.segments, numbers, intervals, clips, strict=True):
            seg_clip = None
            if v.segmented:
                seg_dir.mkdir(parents=True, exist_ok=True)
                seg_clip = seg_dir / f"{v.video}_{number}.mp4"
                shutil.copyfile(clip, seg_clip)
            lines.append(f"{v.video}___{number}___{s!r}___{e!r}___{seg.text}")
            tokens.extend(_words(seg.text, s, e))
            if seg.emotions is None:
                continue
            row = _sdk_row(seg)
            rows.append(row)
            row_ivs.append((s, e))
            expected.append(
                ReplicaSegment(
                    video_id=segment_id(v.video, s, e),
                    video=v.video,
                    split=split_of.get(v.video),
                    number=number,
                    start=s,
                    end=e,
                    emotion=mosei_emotions(row[1:]),
                    transcript=" ".join(seg.text.split()) or None,
                    clip=seg_clip,
                    full=full if v.full else None,
                )
            )
        if rows:
            labels[v.video] = (np.asarray(rows, np.float64), np.asarray(row_ivs, np.float64))
        by_rank = not v.full and not v.transcript and len(rows) == len(clips)
        for seg in expected:
            if seg.video == v.video:
                use_clip = seg.clip is not None and (v.transcript or by_rank)
                seg.path = seg.clip if use_clip else seg.full
                seg.interval = not use_clip and seg.full is not None
        words[v.video] = (
            np.asarray([[w.encode("utf-8")] for w, _, _ in tokens]),
            np.asarray([(a, b) for _, a, b in tokens], np.float64),
        )
        if v.transcript:
            txt_dir.mkdir(parents=True, exist_ok=True)
            (txt_dir / f"{v.video}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    csd = root / CSD_FOLDER
    dims = ["sentiment", "happy", "sad", "anger", "surprise", "disgust", "fear"]
    labels_path = write_csd(
        csd / LABELS_CSD, labels_group, labels, _metadata(labels_group, "Labels", dims)
    )
    words_path = write_csd(
        csd / WORDS_CSD, words_group, words, _metadata(words_group, "Timestamped words", ["word"])
    )
    folds_path = None
    if folds is not None:
        folds_path = root / "folds.json"
        folds_path.write_text(json.dumps({k: list(v) for k, v in folds.items()}, indent=1))
    expected.sort(key=lambda s: s.video_id)
    return MoseiReplica(root, labels_path, words_path, folds_path, expected)
