"""The offline demo corpus: real mp4 files, real face, real speech, planted labels."""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from mepr import shards
from mepr.config import DemoParams
from mepr.corpora import build_manifest, demo, demo_render
from mepr.labels import EMOTIONS, SPLITS, TRAITS

PARAMS = DemoParams(clips=8, seconds=1.0, fps=25, width=320, height=240, bad_inputs=False)


@pytest.fixture(scope="module")
def emo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "demo_emo"
    demo.generate(root, "demo_emo", "emotion", PARAMS, seed=7, with_transcripts=True)
    return root


@pytest.fixture(scope="module")
def pers(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("demo") / "demo_pers"
    params = DemoParams(clips=7, seconds=1.0, fps=25, width=320, height=240, bad_inputs=False)
    demo.generate(root, "demo_pers", "personality", params, seed=7, with_transcripts=False)
    return root


BAD = DemoParams(clips=1, seconds=1.5, fps=25, width=320, height=240, bad_inputs=True)


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    """One good clip and one clip of every bad kind."""
    root = tmp_path_factory.mktemp("demo") / "demo_bad"
    demo.generate(root, "demo_bad", "emotion", BAD, seed=7, with_transcripts=True)
    return root


def _labels(root: Path) -> list[dict[str, str]]:
    with open(root / "labels.csv", newline="") as f:
        return list(csv.DictReader(f))


def _probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def _frames(path: Path) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    cap.release()
    return frames


def _pcm(path: Path) -> np.ndarray:
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", "s16le", "-ac", "1", "-ar", "16000", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0


def test_videos_exist_and_decode(emo, pers):
    for root, n in ((emo, 8), (pers, 7)):
        videos = sorted((root / "videos").glob("*.mp4"))
        assert len(videos) == n
        assert not list((root / "videos").glob(".*"))  # no temp files left behind
        for path in videos:
            info = _probe(path)
            streams = {s["codec_type"]: s for s in info["streams"]}
            v, a = streams["video"], streams["audio"]
            assert v["codec_name"] == "h264" and v["pix_fmt"] == "yuv420p"
            assert (v["width"], v["height"]) == (320, 240)
            assert v["r_frame_rate"] == "25/1"
            assert a["codec_name"] == "aac"
            assert float(info["format"]["duration"]) == pytest.approx(1.0, abs=0.1)
            assert len(_frames(path)) == 25


def test_emotion_labels_well_formed(emo):
    rows = _labels(emo)
    assert list(rows[0]) == ["video_id", "split", *EMOTIONS, "transcript"]
    assert [r["video_id"] for r in rows] == [f"demo_emo_{i:04d}" for i in range(8)]
    assert {r["split"] for r in rows} == set(SPLITS)
    for i, r in enumerate(rows):
        vec = np.array([float(r[e]) for e in EMOTIONS])
        six = vec[1:]
        assert ((six >= 0) & (six <= 3)).all()
        assert vec[0] == (1.0 if (six == 0).all() else 0.0)
        cls = i % len(EMOTIONS)  # clips cycle through the classes
        assert int(np.argmax(vec)) == cls
        words = demo.EMOTION_STYLES[EMOTIONS[cls]].words
        assert r["transcript"] and any(w in r["transcript"].split() for w in words)


def test_personality_labels_well_formed(pers):
    rows = _labels(pers)
    assert list(rows[0]) == ["video_id", "split", *TRAITS, "transcript"]
    assert {r["split"] for r in rows} == set(SPLITS)
    for r in rows:
        assert all(0.0 <= float(r[t]) <= 1.0 for t in TRAITS)
        assert r["transcript"] == ""  # generated without transcripts


def test_default_size_splits_cover_every_class():
    n = 24
    splits = [demo.split_of(i, n, "emotion") for i in range(n)]
    for cls in range(len(EMOTIONS)):
        assert {splits[i] for i in range(cls, n, len(EMOTIONS))} == set(SPLITS)
    pers = [demo.split_of(i, n, "personality") for i in range(n)]
    assert (pers.count("train"), pers.count("dev"), pers.count("test")) == (14, 5, 5)


def test_generation_is_deterministic(emo, tmp_path):
    again = tmp_path / "demo_emo"
    demo.generate(again, "demo_emo", "emotion", PARAMS, seed=7, with_transcripts=True)
    assert (again / "labels.csv").read_bytes() == (emo / "labels.csv").read_bytes()
    for path in sorted((emo / "videos").glob("*.mp4")):
        assert (again / "videos" / path.name).read_bytes() == path.read_bytes()


def test_mediapipe_finds_the_face(emo, pers):
    import mediapipe as mp

    videos = sorted((emo / "videos").glob("*.mp4")) + sorted((pers / "videos").glob("*.mp4"))
    for model in (0, 1):
        with mp.solutions.face_detection.FaceDetection(
            model_selection=model, min_detection_confidence=0.5
        ) as detector:
            hits = total = 0
            for path in videos:
                frames = _frames(path)
                for k in np.linspace(0, len(frames) - 1, 4).astype(int):
                    total += 1
                    hits += bool(detector.process(frames[k]).detections)
        assert hits / total >= 0.9, f"model {model}: face in {hits}/{total} frames"


def test_audio_is_speech(emo, pers):
    for path in [
        *sorted((emo / "videos").glob("*.mp4"))[:4],
        *sorted((pers / "videos").glob("*.mp4"))[:3],
    ]:
        pcm = _pcm(path)
        assert len(pcm) == pytest.approx(16000, rel=0.1)
        frames = pcm[: len(pcm) // 320 * 320].reshape(-1, 320)  # 20 ms
        energy = np.sqrt((frames**2).mean(axis=1))
        voiced = energy > 0.02
        assert energy.max() > 0.05
        assert 0.2 < voiced.mean() < 1.0  # speech with pauses, not a tone nor silence


def test_interrupted_encode_leaves_no_file(tmp_path, monkeypatch):
    def dying_ffmpeg(cmd, **kwargs):
        Path(cmd[-1]).write_bytes(b"half an mp4")
        raise KeyboardInterrupt

    monkeypatch.setattr(demo_render.subprocess, "run", dying_ffmpeg)
    frames = [np.zeros((64, 64, 3), np.uint8)] * 3
    with pytest.raises(KeyboardInterrupt):
        demo_render.encode_clip(frames, b"", tmp_path / "clip.mp4", PARAMS, 64, 64, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["track.wav"]


def test_demo_manifest(emo):
    rows, failures = build_manifest(
        "demo_emo", {"adapter": "demo", "task": "emotion", "root": str(emo)}, n_shards=2
    )
    assert failures == []
    assert len(rows) == 8
    labels = {r["video_id"]: r for r in _labels(emo)}
    for row in rows:
        assert row["shard"] == shards.shard_of(row["video_id"], 2)
        assert Path(row["path"]).is_file() and row["size_bytes"] == Path(row["path"]).stat().st_size
        assert row["emotion"] == pytest.approx(
            [float(labels[row["video_id"]][e]) for e in EMOTIONS]
        )
        assert row["traits"] is None and row["transcript"] == labels[row["video_id"]]["transcript"]


def _cli(argv: list[str]) -> argparse.Namespace:
    from mepr.corpora import cli

    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_manifest(pers, tmp_path):
    cfg = json.dumps({"adapter": "demo", "task": "personality", "root": str(pers)})
    out, fail = tmp_path / "m.parquet", tmp_path / "f.parquet"
    args = _cli(
        ["manifest", "--corpus", "demo_pers", "--corpus-config", cfg, "--n-shards", "3"]
        + ["--out", str(out), "--failures", str(fail)]
    )
    args.func(args)
    table = shards.read_table(out, shards.MANIFEST)
    assert table.num_rows == 7
    assert shards.read_params(out)["n_shards"] == 3
    assert shards.read_table(fail, shards.FAILURES).num_rows == 0
    traits = table.column("traits").to_pylist()
    assert all(len(t) == 5 for t in traits)

    bad = json.dumps({"adapter": "demo", "task": "personality", "root": str(tmp_path / "nope")})
    args = _cli(
        ["manifest", "--corpus", "x", "--corpus-config", bad, "--n-shards", "2"]
        + ["--out", str(out), "--failures", str(fail)]
    )
    with pytest.raises(SystemExit, match="does not exist"):
        args.func(args)


def test_cli_demo_writes_labels_last(tmp_path):
    root = tmp_path / "tiny"
    params = json.dumps({"clips": 6, "seconds": 0.5, "fps": 10, "width": 96, "height": 64})
    args = _cli(
        ["demo", "--corpus", "tiny", "--task", "personality", "--root", str(root)]
        + ["--params", params, "--seed", "3", "--with-transcripts"]
    )
    args.func(args)
    labels = root / "labels.csv"
    assert all(p.stat().st_mtime <= labels.stat().st_mtime for p in (root / "videos").iterdir())
    mute = {demo.bad_video_id("tiny", k) for k in ("no_audio", "silent")}  # bad_inputs default
    assert all(r["transcript"] for r in _labels(root) if r["video_id"] not in mute)
    assert len(_labels(root)) == 6 + len(demo.BAD_INPUTS)


# ---------------------------------------------------------------------------------------------
# bad inputs (demo.bad_inputs)


def _bad(kind: str) -> str:
    return demo.bad_video_id("demo_bad", kind)


def test_bad_inputs_are_labelled_train_clips(bad):
    rows = {r["video_id"]: r for r in _labels(bad)}
    assert list(rows) == ["demo_bad_0000", *(_bad(k) for k in demo.BAD_INPUTS)]
    for kind in demo.BAD_INPUTS:
        row = rows[_bad(kind)]
        assert row["split"] == "train"  # dev / test stay comparable
        assert all(float(row[e]) >= 0 for e in EMOTIONS) and float(row["neutral"]) in (0, 1)
        assert (row["transcript"] == "") == (kind in ("no_audio", "silent"))
        assert (bad / "videos" / f"{_bad(kind)}.mp4").exists()
    assert " " in _bad("unicode") and not _bad("unicode").isascii()


def test_bad_input_files_are_broken_as_promised(bad):
    path = {k: bad / "videos" / f"{_bad(k)}.mp4" for k in demo.BAD_INPUTS}
    assert path["empty"].stat().st_size == 0
    assert not path["corrupt"].read_bytes().startswith(b"\x00\x00\x00")  # not an mp4 box
    probe = subprocess.run(["ffprobe", "-v", "error", str(path["corrupt"])], capture_output=True)
    assert probe.returncode != 0
    streams = {k: {s["codec_type"] for s in _probe(path[k])["streams"]} for k in
               ("no_audio", "silent", "faceless", "unicode", "truncated")}  # fmt: skip
    assert streams["no_audio"] == {"video"}
    assert all(streams[k] == {"video", "audio"} for k in ("silent", "faceless", "unicode"))
    assert np.abs(_pcm(path["silent"])).max() == 0.0
    assert np.abs(_pcm(path["faceless"])).max() > 0.05  # it speaks
    truncated = _frames(path["truncated"])
    nb = int(_probe(path["truncated"])["streams"][0]["nb_frames"])
    assert nb == 38 and 0 < len(truncated) < nb  # the header lies about what is left
    assert len(_frames(path["unicode"])) == 38


def test_bad_inputs_end_up_in_the_failures_tables(bad, tmp_path):
    from mepr.config import AudioParams, DetectParams, FramesParams
    from mepr.media.extract import extract_audio_shard, extract_frames_shard

    rows, failures = build_manifest(
        "demo_bad", {"adapter": "demo", "task": "emotion", "root": str(bad)}, n_shards=1
    )
    assert [v for v, _ in failures] == [_bad("empty")]
    assert failures[0][1].startswith("empty video file")
    manifest = tmp_path / "m.parquet"
    shards.write_table(rows, shards.MANIFEST, manifest)
    frames = extract_frames_shard(manifest, 0, FramesParams(n_frames=4), DetectParams())
    audio = extract_audio_shard(manifest, 0, AudioParams())
    reasons = {(f["video_id"], f["stage"], f["reason"]) for f in frames.failures + audio.failures}
    by_kind = {k: {(s, r) for v, s, r in reasons if v == _bad(k)} for k in demo.BAD_INPUTS}
    assert by_kind["corrupt"] == {
        ("frames", "cannot open video (unsupported or corrupt container)"),
        ("audio", "ffmpeg could not decode audio: Invalid data found when processing input"),
    }
    assert by_kind["no_audio"] == {("audio", "no audio track")}
    assert by_kind["silent"] == {("audio", "silent audio track")}
    assert by_kind["faceless"] >= {("frames", "no face detected in any sampled frame")}
    assert by_kind["unicode"] == set() and not {r for v, _, r in reasons if v == "demo_bad_0000"}
    (stage, reason), *_ = sorted(by_kind["truncated"])
    assert stage == "frames" and reason.startswith("container reports 38 frames, only")
    kept = {r["video_id"] for r in frames.rows}  # rows are kept for all that decode
    assert kept == {"demo_bad_0000", *(_bad(k) for k in demo.BAD_INPUTS)} - {
        _bad("empty"),
        _bad("corrupt"),
    }
    assert {r["video_id"] for r in audio.rows} == kept


def test_switching_bad_inputs_off_removes_them(tmp_path):
    root = tmp_path / "demo_x"
    small = DemoParams(clips=1, seconds=0.5, fps=10, width=96, height=64, bad_inputs=True)
    demo.generate(root, "demo_x", "personality", small, seed=1, with_transcripts=False)
    assert len(list((root / "videos").iterdir())) == 1 + len(demo.BAD_INPUTS)
    off = DemoParams(clips=1, seconds=0.5, fps=10, width=96, height=64, bad_inputs=False)
    demo.generate(root, "demo_x", "personality", off, seed=1, with_transcripts=False)
    assert [p.name for p in (root / "videos").iterdir()] == ["demo_x_0000.mp4"]
    assert [r["video_id"] for r in _labels(root)] == ["demo_x_0000"]
