"""CMU-MOSEI from the public CMU-MultimodalSDK files: a miniature replica read end to end,
and frames / audio taken from inside a segment's interval of its full video."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import ffmpeg_frames, ffprobe_frame_times

from mepr import shards
from mepr.config import AudioParams, DetectParams, FramesParams
from mepr.corpora import CorpusError, build_manifest, source_files
from mepr.corpora.mosei import (
    LABELS_CSD,
    WORDS_CSD,
    mosei_emotions,
    read_csd,
    segment_id,
    standard_folds,
)
from mepr.corpora.replica_mosei import MoseiSegment, MoseiVideo, fold_ids, write_mosei_sdk
from mepr.labels import EMOTIONS
from mepr.media.audio import extract_audio
from mepr.media.video import sample_frames, uniform_indices, video_start_offset

TRAIN, DEV, TEST = fold_ids("train", 4), fold_ids("dev", 1), fold_ids("test", 2)
NOT_IN_FOLDS = "zzzNotAFold"


@pytest.fixture(scope="module")
def clips(media, tmp_path_factory) -> dict[str, Path]:
    """conftest's clips with their audio at 16 kHz, as the demo's (no resampling later)."""
    d = tmp_path_factory.mktemp("clips16k")
    out = {}
    for name in ("good", "faceless"):
        out[name] = d / f"{name}.mp4"
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-i", str(media[name]), "-c:v", "copy",
             "-c:a", "aac", "-ar", "16000", str(out[name])], check=True,
        )  # fmt: skip
    return out


def _videos(clips) -> list[MoseiVideo]:
    good, faceless = clips["good"], clips["faceless"]
    S = MoseiSegment
    return [
        # clips numbered by the SDK's transcript; an unlabelled segment in the middle
        MoseiVideo(
            TRAIN[0],
            [
                S(good, {"happiness": 2.0, "sadness": 1.0}, "i am  happy"),
                S(faceless, None, "not labelled"),
                S(good, {}, "nothing at all"),
            ],
        ),
        # no segment clips: the full video with the interval
        MoseiVideo(
            TRAIN[1],
            [S(faceless, {"anger": 3.0}, "grr"), S(good, {"fear": 0.5, "disgust": 1.5}, "")],
            segmented=False,
        ),
        # clips but no transcript: the full video wins, it is always right
        MoseiVideo(DEV[0], [S(good, {"surprise": 1.0}, "oh")], transcript=False),
        # clips only: numbered by rank (as many clips as labelled segments, durations agree)
        MoseiVideo(
            TEST[0],
            [S(good, {"disgust": 0.33}, "yuck"), S(faceless, {"happiness": 1.0}, "yay")],
            full=False,
            transcript=False,
        ),
        # labelled, in the folds, but no video file at all
        MoseiVideo(TRAIN[2], [S(good, {"anger": 1.0}, "lost")], full=False, segmented=False),
        MoseiVideo(NOT_IN_FOLDS, [S(good, {"anger": 1.0}, "who")]),
    ]


@pytest.fixture(scope="module")
def replica(clips, tmp_path_factory):
    root = tmp_path_factory.mktemp("mosei") / "CMU-MOSEI"
    return write_mosei_sdk(root, _videos(clips))


def _build(cfg: dict):
    rows, failures = build_manifest("mosei", {"adapter": "mosei", **cfg}, 3)
    return {r["video_id"]: r for r in rows}, dict(failures)


def test_mosei_emotions_reorders_normalises_and_derives_neutral():
    # SDK order: happy, sad, anger, surprise, disgust, fear
    out = mosei_emotions([2.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    expected = dict.fromkeys(EMOTIONS, 0.0) | {"happiness": 0.5, "sadness": 0.25, "disgust": 0.25}
    assert out == pytest.approx([expected[e] for e in EMOTIONS])
    assert mosei_emotions([0.0] * 6) == [1.0, 0, 0, 0, 0, 0, 0]
    assert mosei_emotions([0, 0, 0, 3.0, 0, 0]) == [0.0, 0, 0, 0, 0, 0, 1.0]  # surprise
    assert segment_id("-3g5yACwYnA", 82.7645, 100.555) == "-3g5yACwYnA_82.7645_100.5550"


def test_shipped_folds_are_the_sdks():
    folds = standard_folds()
    assert {k: len(v) for k, v in folds.items()} == {"train": 2249, "dev": 300, "test": 678}
    assert len({v for ids in folds.values() for v in ids}) == 2249 + 300 + 678


def test_replica_is_the_sdk_layout(replica):
    with h5py.File(replica.labels) as h5:
        assert list(h5) == ["All Labels"]
        assert set(h5["All Labels"]) == {"data", "metadata"}
        entry = h5["All Labels"]["data"][TRAIN[0]]
        assert entry["features"].shape == (2, 7) and entry["intervals"].shape == (2, 2)
        assert json.loads(h5["All Labels"]["metadata"]["root name"][0]) == "All Labels"
    words = read_csd(replica.words)
    tokens = [t[0] for t in words.data[TRAIN[0]][0]]
    assert tokens[0] == b"sp" and b"happy" in tokens
    txt = replica.root / "Raw/Transcript/Segmented/Combined" / f"{TRAIN[0]}.txt"
    first = txt.read_text().splitlines()[0].split("___")
    assert first[:2] == [TRAIN[0], "0"] and first[4] == "i am  happy"


def test_replica_read_end_to_end(replica, capsys):
    by_id, failures = _build({"root": str(replica.root)})
    expected = replica.expected()
    found = {k: v for k, v in expected.items() if v["path"] and v["split"]}
    assert sorted(by_id) == sorted(found)
    for vid, want in found.items():
        row = by_id[vid]
        assert row["path"] == want["path"]
        assert row["emotion"] == pytest.approx(want["emotion"])
        assert row["transcript"] == want["transcript"]
        if want["interval"]:
            assert (row["start"], row["end"]) == (want["start"], want["end"])
        else:
            assert row["start"] is None and row["end"] is None
    a0, a2 = sorted((s for s in replica.segments if s.video == TRAIN[0]), key=lambda s: s.start)
    assert (a0.number, a2.number) == (0, 2)  # the unlabelled one in between is skipped
    row = by_id[a0.video_id]
    assert row["video_id"] == f"{TRAIN[0]}_{a0.start:.4f}_{a0.end:.4f}"
    assert row["path"].endswith(f"Segmented/Combined/{TRAIN[0]}_0.mp4")
    assert by_id[a2.video_id]["path"].endswith(f"{TRAIN[0]}_2.mp4")
    assert row["split"] == "train" and row["transcript"] == "i am happy"
    assert row["emotion"] == pytest.approx([0, 0, 0, 0, 2 / 3, 1 / 3, 0])
    assert by_id[a2.video_id]["emotion"] == [1.0, 0, 0, 0, 0, 0, 0]  # derived neutral
    full_rows = [r for r in by_id.values() if r["video_id"].startswith(TRAIN[1])]
    assert [r["path"].endswith(f"Full/Combined/{TRAIN[1]}.mp4") for r in full_rows] == [1, 1]
    assert full_rows[0]["end"] == pytest.approx(full_rows[1]["start"])
    assert full_rows[1]["transcript"] is None  # no words
    dev = [r for r in by_id.values() if r["split"] == "dev"]
    assert len(dev) == 1 and dev[0]["start"] is not None  # clips, but no transcript: full
    test = sorted(
        (r for r in by_id.values() if r["split"] == "test"), key=lambda r: r["start"] or 0
    )
    assert [Path(r["path"]).name for r in sorted(test, key=lambda r: r["video_id"])] == [
        f"{TEST[0]}_0.mp4",
        f"{TEST[0]}_1.mp4",
    ]
    assert "not in the standard folds" in failures[NOT_IN_FOLDS]
    lost = segment_id(
        TRAIN[2], *next((s.start, s.end) for s in replica.segments if s.video == TRAIN[2])
    )
    assert failures[lost].startswith("video file not found (searched ")
    err = capsys.readouterr().err
    assert "1 labelled videos not in the folds" in err
    assert "found/listed per split: train 4/5, dev 1/1, test 2/2" in err
    rows = list(by_id.values())
    shards.write_table(rows, shards.MANIFEST, replica.root / "m.parquet")  # schema v2 fits
    assert source_files({"adapter": "mosei", "root": str(replica.root)}) == [
        str(replica.labels),
        str(replica.words),
    ]


def test_labels_key_may_name_the_csd_and_paths_may_be_configured(replica):
    cfg = {
        "root": str(replica.root),
        "labels": f"cmumosei/{LABELS_CSD}",
        "words": f"cmumosei/{WORDS_CSD}",
        "full_videos": "Raw/Videos/Full/Combined",
    }
    by_id, _ = _build(cfg)
    assert len(by_id) == 7
    assert source_files({"adapter": "mosei", **cfg})[0] == str(replica.labels)
    with pytest.raises(CorpusError, match="words file .*nope.csd does not exist"):
        _build({**cfg, "words": "nope.csd"})


def test_user_folds_and_group_names(clips, tmp_path):
    good = clips["good"]
    ids = ["vidA", "vidB", "vidC"]
    videos = [MoseiVideo(v, [MoseiSegment(good, {"fear": 1.0}, v)]) for v in ids]
    folds = {"train": ["vidA"], "valid": ["vidB"], "test": ["vidC"]}
    rep = write_mosei_sdk(tmp_path, videos, folds=folds, labels_group="Emotion Labels")
    by_id, _ = _build({"root": str(tmp_path), "folds": "folds.json"})
    assert {r["video_id"].split("_")[0]: r["split"] for r in by_id.values()} == {
        "vidA": "train",
        "vidB": "dev",
        "vidC": "test",
    }
    with pytest.raises(CorpusError, match="no labelled segment in split.* train, dev, test"):
        _build({"root": str(tmp_path)})  # the standard folds know none of these ids
    with h5py.File(rep.labels, "a") as h5:
        h5.create_group("Other")
    with pytest.raises(CorpusError, match="expected one top-level group .* 2: Emotion Labels"):
        _build({"root": str(tmp_path), "folds": "folds.json"})


def test_missing_files_and_empty_splits_are_clear_errors(clips, tmp_path):
    good = clips["good"]
    root = tmp_path / "m"
    (root / "Raw/Videos/Full/Combined").mkdir(parents=True)
    with pytest.raises(CorpusError, match=f"no label file: expected {LABELS_CSD} .* below {root}"):
        _build({"root": str(root)})
    videos = [MoseiVideo(TRAIN[0], [MoseiSegment(good, {"fear": 1.0}, "a")])]
    videos += [MoseiVideo(DEV[0], [MoseiSegment(good, {"fear": 1.0}, "b")])]
    rep = write_mosei_sdk(root, videos)
    with pytest.raises(CorpusError, match="no labelled segment in split.* test"):
        _build({"root": str(root)})
    rep.words.unlink()
    with pytest.raises(CorpusError, match=f"no word file: expected {WORDS_CSD} beside"):
        _build({"root": str(root)})


def test_no_video_at_all_names_the_folders(clips, tmp_path):
    good = clips["good"]
    seg = [MoseiSegment(good, {"fear": 1.0}, "a")]
    videos = [MoseiVideo(v, seg, full=False, segmented=False) for v in (TRAIN[0], DEV[0], TEST[0])]
    write_mosei_sdk(tmp_path, videos)
    with pytest.raises(CorpusError, match="no video folder: searched below .*Raw/Videos/Full"):
        _build({"root": str(tmp_path)})
    (tmp_path / "Raw/Videos/Segmented/Combined").mkdir(parents=True)
    with pytest.raises(CorpusError, match="no video file found for any labelled segment"):
        _build({"root": str(tmp_path)})


def test_segment_numbers_are_checked_against_the_intervals(clips, tmp_path):
    good, faceless = clips["good"], clips["faceless"]
    S = MoseiSegment
    videos = [
        MoseiVideo(TRAIN[0], [S(good, {"fear": 1.0}, "a"), S(faceless, {"anger": 1.0}, "b")]),
        MoseiVideo(DEV[0], [S(good, {"fear": 1.0}, "c")]),
        # 3 clips for 2 labelled segments, no transcript, no full video: not by rank
        MoseiVideo(
            TEST[0],
            [S(good, {"fear": 1.0}, "d"), S(good, None, "e"), S(faceless, {}, "f")],
            full=False,
            transcript=False,
        ),
        MoseiVideo(TEST[1], [S(good, {"fear": 1.0}, "g")]),
    ]
    rep = write_mosei_sdk(tmp_path, videos, first_segment=1)
    txt = tmp_path / "Raw/Transcript/Segmented/Combined" / f"{TRAIN[0]}.txt"
    lines = [ln.split("___") for ln in txt.read_text().splitlines()]
    assert [ln[1] for ln in lines] == ["1", "2"]
    # within the tolerance the clip is used; 0.2 s off, the full video + interval
    lines[0][2] = str(float(lines[0][2]) + 0.01)
    lines[1][3] = str(float(lines[1][3]) + 0.2)
    txt.write_text("\n".join("___".join(ln) for ln in lines) + "\n")
    by_id, failures = _build({"root": str(tmp_path)})
    first, second = (s for s in rep.segments if s.video == TRAIN[0])
    assert by_id[first.video_id]["path"].endswith(f"{TRAIN[0]}_1.mp4")
    assert by_id[second.video_id]["path"].endswith(f"Full/Combined/{TRAIN[0]}.mp4")
    assert by_id[second.video_id]["start"] == second.start
    refused = [r for v, r in failures.items() if v.startswith(TEST[0])]
    assert len(refused) == 2 and all("3 clips, 2 labelled segments" in r for r in refused)


# ---------------------------------------------------------------------------------------------
# frames and audio from inside an interval


def _times_from_file_start(path: Path) -> np.ndarray:
    start = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=start_time", "-of", "csv=p=0",
         str(path)], capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    return ffprobe_frame_times(path) - float(start)


def _check_inside(path: Path, start: float, end: float, n: int, fps: float | None = None):
    sampled = sample_frames(path, n, fps, start=start, end=end)
    offset = video_start_offset(path)
    times = _times_from_file_start(path)
    inside = np.flatnonzero((times >= start - 1e-4) & (times < end - 1e-4))
    assert len(inside) > 0
    ts = sampled.timestamps.astype(np.float64) + offset
    assert np.all((ts >= start - 1e-4) & (ts < end - 1e-4))
    np.testing.assert_allclose(ts, times[sampled.indices], atol=1e-3)
    if fps is None:  # uniform over the frames inside
        want = inside[uniform_indices(len(inside), n)]
        assert sampled.indices.tolist() == want.tolist()
    else:  # one per 1/fps from start: the first frame at or after each target
        grid = start + np.arange(len(sampled.indices)) / fps
        assert np.all(ts >= grid - 0.5 / 25 - 1e-4)
    decoded = ffmpeg_frames(path)
    for index, image in zip(sampled.indices, sampled.images, strict=True):
        np.testing.assert_array_equal(image, decoded[index])
    return sampled


def test_frames_inside_an_interval_of_the_full_video(replica):
    full = Path(next(s.full for s in replica.segments if s.video == TRAIN[1]))
    assert video_start_offset(full) == 0.0
    for seg in (s for s in replica.segments if s.video == TRAIN[1]):
        _check_inside(full, seg.start, seg.end, 6)
        _check_inside(full, seg.start, seg.end, 4, fps=3.0)
    _check_inside(full, 0.5, 1.37, 30)  # more steps than frames inside: repeats


def test_frames_inside_an_interval_seek_and_survive_odd_streams(tricky):
    long = tricky["long"]  # 40 s, a keyframe every second
    s = _check_inside(long, 30.0, 35.5, 8)
    assert s.seeks >= 1 and s.frame_count == 138
    plain = sample_frames(long, 8, start=30.0, end=35.5, seek=False)
    assert plain.indices.tolist() == s.indices.tolist() and plain.seeks == 0
    _check_inside(long, 30.0, 35.5, 8, fps=2.0)
    _check_inside(tricky["vfr"], 1.5, 3.5, 6)  # variable frame rate: listed, then sampled
    _check_inside(tricky["vfr"], 1.5, 3.5, 6, fps=5.0)
    past = sample_frames(long, 3, start=39.0, end=50.0)
    assert past.notes == [
        "interval [39.000, 50.000) s ends after the last decodable frame (39.960 s)"
    ]
    with pytest.raises(Exception, match="no video frame in"):
        sample_frames(long, 3, start=45.0, end=50.0)


def _ffmpeg_audio(path: Path, start: float, end: float, sr: int = 16000) -> np.ndarray:
    """ffmpeg's own decode of [start, end): the whole track decoded, then cut (-ss/-t after -i)."""
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-ss", f"{start:.6f}",
         "-t", f"{end - start:.6f}", "-map", "0:a:0", "-ac", "1", "-ar", str(sr),
         "-f", "s16le", "pipe:1"], capture_output=True, check=True,
    ).stdout  # fmt: skip
    return np.frombuffer(out, "<i2")


def test_audio_inside_an_interval(replica, media, tmp_path):
    sr = 16000
    full = Path(next(s.full for s in replica.segments if s.video == TRAIN[1]))
    whole = extract_audio(full, sr).pcm  # ffmpeg's decode of the whole track
    for s, e in [(seg.start, seg.end) for seg in replica.segments if seg.video == TRAIN[1]] + [
        (0.5, 1.37),
        (1.234, 3.3),
    ]:
        track = extract_audio(full, sr, s, e)
        first = round(s * sr)
        assert track.pcm.size == round((e - s) * sr)
        np.testing.assert_array_equal(track.pcm, whole[first : first + track.pcm.size])
    # a source at another rate (22.05 kHz): the resampler starts at the interval, so the
    # samples differ from cutting a whole-track resample by a sub-sample phase only
    rep = write_mosei_sdk(
        tmp_path, [MoseiVideo(TRAIN[0], [MoseiSegment(media["good"], {}, "")] * 2)]
    )
    other = rep.segments[0].full
    for s, e in [(2.0, 4.0), (1.234, 3.3)]:
        track = extract_audio(other, sr, s, e)
        ref = _ffmpeg_audio(other, s, e)  # decoded whole, then cut
        assert track.pcm.size == ref.size == round((e - s) * sr)
        assert np.corrcoef(track.pcm, ref)[0, 1] > 0.99
    assert np.array_equal(extract_audio(full, sr, None, None).pcm, whole)


def test_extraction_shards_take_the_interval_from_the_manifest(replica, tmp_path):
    from mepr.media.extract import extract_audio_shard, extract_frames_shard

    by_id, _ = _build({"root": str(replica.root)})
    rows = [{**r, "shard": 0} for r in by_id.values() if r["start"] is not None]
    rows.append({**next(r for r in by_id.values() if r["start"] is None), "shard": 0})
    manifest = shards.write_table(rows, shards.MANIFEST, tmp_path / "m.parquet")
    frames = extract_frames_shard(manifest, 0, FramesParams(n_frames=3), DetectParams())
    for r in rows:
        got = [f for f in frames.rows if f["video_id"] == r["video_id"]]
        assert len(got) == 3
        if r["start"] is not None:
            assert all(r["start"] - 1e-4 <= f["timestamp"] < r["end"] for f in got)
        else:
            assert got[0]["frame_index"] == 0  # a clip: sampled whole
    audio = extract_audio_shard(manifest, 0, AudioParams())
    for a in audio.rows:
        r = next(r for r in rows if r["video_id"] == a["video_id"])
        if r["start"] is not None:
            assert a["n_samples"] == round((r["end"] - r["start"]) * 16000)


def test_csv_layout_still_wins_in_its_folder(tmp_path, replica):
    # a folder with the reference's CSVs is read as before even if a .csd lies below it
    root = tmp_path / "both"
    shutil.copytree(replica.root / "cmumosei", root / "sdk")
    (root / "labels.csv").write_text(
        "video_id,split,anger,disgust,fear,happiness,sadness,surprise\n"
    )
    with pytest.raises(CorpusError):  # empty CSV: no usable video in any split
        _build({"root": str(root)})
    assert source_files({"adapter": "mosei", "root": str(root)}) == [str(root / "labels.csv")]
