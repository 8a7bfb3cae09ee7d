"""`mepr predict` on a small trained system: JSON + HTML per video, bad files, checkpoints.

The system is trained in-process in seconds (`build_run`): random embedding shards that
carry the real extraction/encoder parameters in their metadata, then the real three training
stages. Prediction then runs the real extraction, the real (demo) encoders and those models on
real videos: a generated demo clip, the test suite's astronaut clip, a portrait no-audio clip
at another size and frame rate, and broken files.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, manifest_rows

from mepr import shards
from mepr.cli import main
from mepr.config import EncoderParams, parse
from mepr.labels import EMOTIONS, MODALITIES, TRAITS
from mepr.predict import (
    PIPELINE_FILE,
    AttentionRecorder,
    CheckpointError,
    PredictError,
    Predictor,
    build_pipeline_spec,
    collect_videos,
    folder_videos,
    load_cross_checkpoint,
    load_fusion_checkpoint,
)

N_FRAMES = 4  # frames sampled per video in the test system (config: 8)


# --------------------------------------------------------------------------- a trained system
def encoder_sections(cfg: dict) -> dict[str, dict]:
    """What the DAG's embed rule records per modality (mepr embed --params, all fields)."""
    enc = cfg["encoders"]
    out = {}
    for m in MODALITIES:
        section = {**enc[m], "batch_size": enc["batch_size"], "device": "cpu"}
        out[m] = dataclasses.asdict(parse(EncoderParams, section))
    return out


def encoder_dim(section: dict, encoders: Path) -> int:
    from mepr.embed import resolve_model_ref

    if section["model"].startswith("demo:"):
        folder = encoders / section["model"][5:]
    else:
        folder = Path(resolve_model_ref(section["model"]))
    if section["kind"] == "open_clip":
        return json.loads((folder / "open_clip_config.json").read_text())["model_cfg"]["embed_dim"]
    return json.loads((folder / "config.json").read_text())["hidden_size"]


def build_run(work: Path, encoders: Path, n_per_corpus: int = 12, seed: int = 0) -> Path:
    """A finished results/ tree (stages 1-3 trained on random embeddings); returns results/."""
    from mepr.config import parse_params
    from mepr.train.stages import train_cross, train_fusion, train_unimodal

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    results = work / "results"
    results.mkdir(parents=True)
    (results / "encoders").symlink_to(encoders)
    rng = np.random.default_rng(seed)
    sections = encoder_sections(cfg)
    corpora = {"demo_emo": "emotion", "demo_pers": "personality"}
    manifests = {}
    for c, task in corpora.items():
        rows = []
        for i in range(n_per_corpus):
            split = "train" if i < n_per_corpus // 2 else ("dev" if i % 2 else "test")
            emotion = np.zeros(7, np.float32)
            emotion[i % 7] = 1.0 + rng.random()
            rows.append(
                {
                    "video_id": f"{c}_{i:04d}",
                    "corpus": c,
                    "path": f"results/demo/{c}/videos/{c}_{i:04d}.mp4",
                    "split": split,
                    "task": task,
                    "size_bytes": 1000,
                    "shard": 0,
                    "emotion": emotion.tolist() if task == "emotion" else None,
                    "traits": rng.random(5).tolist() if task == "personality" else None,
                    "transcript": None,
                }
            )
        manifests[c] = shards.write_table(
            rows, shards.MANIFEST, results / f"corpora/{c}/manifest.parquet"
        )
        frames = {**cfg["frames"], "n_frames": N_FRAMES}
        shards.write_table([], shards.FRAMES, results / f"frames/{c}/shard-0.parquet",
                           params={"frames": frames, "detect": cfg["detect"]})  # fmt: skip
        shards.write_table(
            [], shards.AUDIO, results / f"audio/{c}/shard-0.parquet", params=cfg["audio"]
        )
        shards.write_table([], shards.TRANSCRIPTS, results / f"transcripts/{c}/shard-0.parquet",
                           params=cfg["asr"])  # fmt: skip
        for m in MODALITIES:
            dim = encoder_dim(sections[m], encoders)
            emb = []
            for r in rows:
                steps = 3 if m != "text" else 5
                values = rng.normal(size=(steps, dim)).astype(np.float32)
                values[:, 0] += EMOTIONS.index(EMOTIONS[int(r["video_id"][-4:]) % 7])
                emb.append({"video_id": r["video_id"], "n_steps": steps, "dim": dim,
                            "values": values.tolist(), "step_mask": [True] * steps})  # fmt: skip
            shards.write_table(emb, shards.EMBEDDINGS, results / f"embeddings/{c}/{m}/shard-0.parquet",
                               params={"modality": m, "encoder": sections[m]})  # fmt: skip
    train = cfg["train"]
    train.update(
        device="cpu", threads=1, max_epochs=2, patience=2, hidden_dim=16, out_features=16, heads=2
    )
    train["cross"].update(hidden_dim=16, heads=2, max_epochs=2)
    train["fusion"].update(hidden_dim=16, heads=2, max_epochs=2)
    params = parse_params(train)
    for m in MODALITIES:
        stage1 = []
        for c in corpora:
            out = results / f"unimodal/{m}/{c}"
            train_unimodal(modality=m, corpus=c, manifest=manifests[c],
                           embeddings=[results / f"embeddings/{c}/{m}/shard-0.parquet"],
                           params=params, seed=seed, out=out)  # fmt: skip
            stage1.append(out)
        train_cross(modality=m, stage1=stage1, manifests=list(manifests.values()),
                    embeddings=[results / f"embeddings/{c}/{m}/shard-0.parquet" for c in corpora],
                    params=params, seed=seed, out=results / f"unimodal/{m}/cross")  # fmt: skip
    train_fusion(cross=[results / f"unimodal/{m}/cross" for m in MODALITIES],
                 manifests=list(manifests.values()), params=params, seed=seed,
                 out=results / "fusion")  # fmt: skip
    return results


@pytest.fixture(scope="module")
def run(tmp_path_factory, demo_encoders) -> Path:
    return build_run(tmp_path_factory.mktemp("run"), demo_encoders)


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def videos(media, tmp_path_factory) -> dict[str, Path]:
    """A demo clip, the astronaut clip, a portrait 12 fps clip without audio, broken files."""
    from mepr.config import DemoParams
    from mepr.corpora.demo import generate

    d = tmp_path_factory.mktemp("videos")
    generate(d / "demo", "demo_pers", "personality", DemoParams(clips=1, seconds=1.5), seed=3,
             with_transcripts=False)  # fmt: skip
    portrait = d / "portrait 12fps.mkv"
    face = next(media["good"].parent.glob("face.png"))
    _ffmpeg("-loop", "1", "-i", str(face), "-t", "2.5", "-r", "12", "-vf", "scale=240:424",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", str(portrait))  # fmt: skip
    return {
        "demo": d / "demo/videos/demo_pers_0000.mp4",
        "good": media["good"],
        "portrait": portrait,
        "truncated": media["truncated"],
        "empty": media["empty"],
        "missing": media["missing"],
    }


@pytest.fixture(scope="module")
def predicted(run, videos, tmp_path_factory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("predicted")
    rc = main(["predict", *map(str, videos.values()), "--model", str(run / "fusion"),
               "--out", str(out), "--quiet"])  # fmt: skip
    return rc, out


# --------------------------------------------------------------------------- the batch
def test_batch_predicts_good_videos_and_reports_bad_ones(predicted):
    rc, out = predicted
    assert rc == 0  # some videos failed, not all
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_ok"] == 3 and summary["n_failed"] == 3
    assert {v["id"] for v in summary["videos"]} == {"demo_pers_0000", "good", "portrait_12fps"}
    errors = {Path(f["path"]).name: f["error"] for f in summary["failed"]}
    assert set(errors) == {"truncated.mp4", "empty.mp4", "missing.mp4"}
    assert "empty" in errors["empty.mp4"] and "not found" in errors["missing.mp4"]
    assert "; " in errors["truncated.mp4"]  # neither frames nor audio: both reasons
    assert summary["videos_per_second"] > 0
    index = (out / "index.html").read_text()
    assert "3 predicted, 3 failed" in index and "empty file" in index


@pytest.mark.parametrize("vid", ["demo_pers_0000", "good", "portrait_12fps"])
def test_prediction_json_is_complete(predicted, vid):
    _, out = predicted
    r = json.loads((out / vid / "prediction.json").read_text())
    assert r["schema"] == "mepr.prediction" and r["version"] == 1
    probs = r["emotion"]["probabilities"]
    assert list(probs) == list(EMOTIONS) and sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert r["emotion"]["top"] == max(probs, key=probs.get)
    scores = r["personality"]["scores"]
    assert list(scores) == list(TRAITS) and all(0.0 <= s <= 1.0 for s in scores.values())
    assert set(r["modalities"]) == set(MODALITIES)
    for m, info in r["modalities"].items():
        assert (m in r["missing_modalities"]) == (not info["present"])
        if info["present"]:
            assert sum(info["emotion_probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
            assert info["missing_reason"] is None
        else:
            assert info["emotion_probabilities"] is None and info["missing_reason"]
    fusion = r["fusion"]
    present = [r["modalities"][m]["present"] for m in fusion["modalities"]]
    g = np.asarray(fusion["graph_attention"])
    assert g.shape == (5, 5) and np.allclose(g.sum(axis=1), 1.0, atol=1e-5)
    assert np.allclose(g[:, ~np.asarray(present)], 0.0)  # no edges from missing modalities
    for query in fusion["query_attention"].values():
        assert sum(query.values()) == pytest.approx(1.0, abs=1e-5)
    for m, ok in zip(fusion["modalities"], present, strict=True):
        assert (fusion["leave_one_out"]["emotion"][m] is None) == (not ok)
    t = r["timings_s"]
    for key in ("frames_s", "audio_s", "asr_s", "embed_s", "models_s", "report_s", "total_s"):
        assert t[key] >= 0.0
    assert t["total_s"] == pytest.approx(sum(v for k, v in t.items() if k != "total_s"))
    assert len(r["frames"]) == N_FRAMES
    page = (out / vid / "report.html").read_text()
    assert page.count('data-chart="emotion"') == 1 and "prediction.json" in page


def test_the_different_video_reads_as_what_it_is(predicted):
    _, out = predicted
    r = json.loads((out / "portrait_12fps" / "prediction.json").read_text())
    v = r["video"]
    assert (v["width"], v["height"]) == (240, 424) and v["fps"] == pytest.approx(12.0)
    assert v["has_audio"] is False and v["duration_s"] == pytest.approx(2.5, abs=0.1)
    assert r["missing_modalities"] == ["audio", "text"]
    assert r["modalities"]["audio"]["missing_reason"] == "no audio track"
    assert r["modalities"]["face"]["present"] and r["modalities"]["scene"]["present"]
    assert r["frames"][-1]["timestamp"] > 2.0
    demo = json.loads((out / "demo_pers_0000" / "prediction.json").read_text())
    assert demo["missing_modalities"] == [] and demo["transcript"]["source"] == "pocketsphinx"
    assert demo["transcript"]["text"]  # real speech, recognised


def test_all_videos_failing_is_an_error(run, videos, tmp_path, capsys):
    rc = main(["predict", str(videos["empty"]), str(videos["missing"]), "--model",
               str(run / "fusion"), "--out", str(tmp_path), "--quiet"])  # fmt: skip
    assert rc == 1
    err = capsys.readouterr().err
    assert "all 2 video(s) failed" in err and "empty file" in err


def test_predict_feeds_the_models_what_the_dag_would(run, videos, tmp_path):
    """Same video: the embedding sequences predict builds equal the DAG's shards."""
    from mepr.asr.shard import transcripts_shard
    from mepr.embed.shard import embed_audio_shard, embed_image_shard, embed_text_shard
    from mepr.media.extract import extract_audio_shard, extract_frames_shard
    from mepr.train.data import load_sequences

    path = videos["good"]
    with Predictor(run / "fusion") as predictor:
        p = predictor.pipeline
        ex = predictor.extract(collect_videos([path])[0])
        seqs, _ = predictor.embed([ex])
    manifest = shards.write_table(
        manifest_rows({"good": path}), shards.MANIFEST, tmp_path / "m.parquet"
    )
    frames = shards.write_table(extract_frames_shard(manifest, 0, p.frames, p.detect).rows,
                                shards.FRAMES, tmp_path / "frames.parquet")  # fmt: skip
    audio = shards.write_table(extract_audio_shard(manifest, 0, p.audio).rows, shards.AUDIO,
                               tmp_path / "audio.parquet")  # fmt: skip
    text = shards.write_table(transcripts_shard(manifest, audio, 0, p.asr).rows, shards.TRANSCRIPTS,
                              tmp_path / "text.parquet")  # fmt: skip
    for m in MODALITIES:
        if m in ("face", "body", "scene"):
            res = embed_image_shard(frames, m, p.encoders[m])
        elif m == "audio":
            res = embed_audio_shard(audio, p.encoders[m])
        else:
            res = embed_text_shard(text, p.encoders[m])
        shard = shards.write_table(res.rows, shards.EMBEDDINGS, tmp_path / f"{m}.parquet")
        dag = load_sequences([shard], ["good"], p.max_steps[m])
        assert dag.present[0] and np.array_equal(dag.mask, seqs[m].mask)
        np.testing.assert_allclose(dag.x, seqs[m].x, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- checkpoints, spec
def test_pipeline_spec_comes_from_the_shards(run):
    spec = json.loads((run / "fusion" / PIPELINE_FILE).read_text())  # written by the batch run
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    assert spec == build_pipeline_spec(run / "fusion")
    assert spec["frames"]["n_frames"] == N_FRAMES and spec["asr"] == cfg["asr"]
    assert spec["encoders"] == encoder_sections(cfg)
    assert spec["cross"]["face"]["path"] == "../unimodal/face/cross"


def test_shards_made_with_other_parameters_are_refused(run, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(run, results, symlinks=True)
    (results / "fusion" / PIPELINE_FILE).unlink()
    other = results / "frames/demo_pers/shard-0.parquet"
    shards.write_table([], shards.FRAMES, other, params={"frames": {"n_frames": 99}, "detect": {}})
    with pytest.raises(PredictError, match="frames shards were written with different parameters"):
        build_pipeline_spec(results / "fusion")


def test_retrained_weights_do_not_pair_with_an_old_spec(run, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(run, results, symlinks=True)
    model, cfg = load_cross_checkpoint(results / "unimodal/text/cross")
    from mepr.models.checkpoints import save_model

    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    save_model(model, results / "unimodal/text/cross", cfg)
    with pytest.raises(PredictError, match=r"text/cross/model.safetensors changed after"):
        Predictor(results / "fusion")


@pytest.mark.parametrize("stage", ["fusion", "cross"])
def test_checkpoint_built_with_another_config_is_a_clear_error(run, tmp_path, stage):
    src = run / "fusion" if stage == "fusion" else run / "unimodal/face/cross"
    d = tmp_path / stage
    shutil.copytree(src, d)
    cfg = json.loads((d / "config.json").read_text())
    if stage == "fusion":
        cfg["model"]["hidden_dim"] = 32
        load = load_fusion_checkpoint
    else:
        cfg["model"]["cross"]["hidden_dim"] = 32
        load = load_cross_checkpoint
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as e:
        load(d)
    msg = str(e.value)
    assert "saved from a model built with a different config" in msg
    assert (
        "[16" in msg and "[32" in msg and "in the checkpoint" in msg
    )  # names a tensor and both shapes
    (d / "model.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load(d)


def test_cli_reports_a_mismatched_model_in_one_line(run, videos, tmp_path, capsys):
    results = tmp_path / "results"
    shutil.copytree(run, results, symlinks=True)
    cfg_path = results / "fusion/config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["model"]["heads"], cfg["model"]["hidden_dim"] = 4, 32
    cfg_path.write_text(json.dumps(cfg))
    rc = main(["predict", str(videos["good"]), "--model", str(results / "fusion"), "--out",
               str(tmp_path / "out"), "--quiet"])  # fmt: skip
    assert rc == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("mepr predict: error: ") and "different config" in err


def test_attention_capture_leaves_predictions_unchanged(run):
    model, _ = load_fusion_checkpoint(run / "fusion")
    g = torch.Generator().manual_seed(0)
    b, mods = 6, model.modalities
    feats = {
        m: torch.randn(b, w, generator=g) for m, w in zip(mods, model.cfg.input_dims, strict=True)
    }
    logits, scores = (
        torch.randn(b, len(mods), 7, generator=g),
        torch.rand(b, len(mods), 5, generator=g),
    )
    present = torch.rand(b, len(mods), generator=g) > 0.3
    present[0] = False  # no modality at all
    with torch.no_grad():
        plain = model(feats, logits, scores, present)
        with AttentionRecorder(model) as rec:
            hooked = model(feats, logits, scores, present)
        after = model(feats, logits, scores, present)
    for k in plain:
        torch.testing.assert_close(plain[k], hooked[k], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(plain[k], after[k])
    assert rec.graph.shape == (b, len(mods), len(mods))
    assert rec.query.shape == (b, model.cfg.heads, 2, len(mods))
    np.testing.assert_allclose(rec.query.sum(-1), 1.0, atol=1e-5)
    q = rec.query.mean(1)
    assert np.allclose(q[1:][~present[1:].numpy()[:, None, :].repeat(2, 1)], 0.0, atol=1e-6)


def test_collect_videos_expands_folders_and_keeps_ids_unique(tmp_path):
    for name in ("b.mp4", "a.MOV", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.mp4").write_bytes(b"x")
    got = collect_videos([tmp_path, tmp_path / "sub" / "a.mp4", tmp_path / "gone.mp4"])
    assert [(v.video_id, v.path.name) for v in got] == [
        ("a", "a.MOV"), ("b", "b.mp4"), ("a-2", "a.mp4"), ("gone", "gone.mp4"),
    ]  # fmt: skip


def test_predict_rule_input_is_stable_for_a_generated_folder(tmp_path):
    """The `predict` rule's input for a demo folder is the generating job's labels.csv, before
    and after the videos exist; listing the videos once written changed the input set and made
    Snakemake plan the predictions again for an unchanged folder."""
    folder, labels = tmp_path / "videos", str(tmp_path / "labels.csv")
    before = folder_videos(folder, "predict.videos.demo", labels)
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (folder / name).write_bytes(b"x")
    assert folder_videos(folder, "predict.videos.demo", labels) == before == [labels]
    # a user's folder: its videos are the input, and a missing folder is named
    assert folder_videos(folder) == [str(folder / "a.mp4"), str(folder / "b.mp4")]
    with pytest.raises(PredictError, match="predict.videos.mine: .*gone is not a folder"):
        folder_videos(tmp_path / "gone", "predict.videos.mine")


def test_whisperx_missing_stops_predict_unless_transcripts_sit_beside_videos(
    run, videos, tmp_path, monkeypatch
):
    """predict's env cannot hold whisperx: a spec asking for it must not quietly predict
    every video without text; a VIDEO.txt beside the video still works."""
    import sys

    from mepr.config import AsrParams
    from mepr.predict import VideoInput

    monkeypatch.setitem(sys.modules, "whisperx", None)  # import whisperx -> ImportError
    clip = tmp_path / "clip.mp4"
    shutil.copy(videos["demo"], clip)
    with Predictor(run / "fusion") as p:
        p.pipeline = dataclasses.replace(p.pipeline, asr=AsrParams(backend="whisperx"))
        with pytest.raises(PredictError, match="whisperx is not installed.*VIDEO.txt"):
            p.extract(VideoInput("clip", clip))
        clip.with_suffix(".txt").write_text("a transcript read from beside the video")
        ex = p.extract(VideoInput("clip", clip))
    assert ex.transcript["source"] == "sidecar" and "beside the video" in ex.transcript["text"]


# --------------------------------------------------------------------------- declared shards
def _declared_shards(results: Path) -> list[Path]:
    """What the workflow's pipeline_spec rule declares for build_run's two corpora."""
    kinds = [results / f"{k}/{c}/shard-0.parquet" for k in ("frames", "audio", "transcripts")
             for c in ("demo_emo", "demo_pers")]  # fmt: skip
    return kinds + sorted(results.glob("embeddings/demo_*/*/shard-0.parquet"))


def test_spec_from_declared_shards_ignores_a_leftover_shard(run, tmp_path, capsys):
    from mepr.predict import RunShards

    results = tmp_path / "results"
    shutil.copytree(run, results, symlinks=True)
    (results / "fusion" / PIPELINE_FILE).unlink()
    # a corpus removed from the config left its shards behind, written with other parameters
    shards.write_table([], shards.FRAMES, results / "frames/old_corpus/shard-0.parquet",
                       params={"frames": {"n_frames": 99}, "detect": {}})  # fmt: skip
    old = results / "embeddings/old_corpus/text/shard-0.parquet"
    shards.write_table([], shards.EMBEDDINGS, old,
                       params={"modality": "text", "encoder": {"model": "another"}})  # fmt: skip
    with pytest.raises(PredictError, match="shards were written with different parameters"):
        build_pipeline_spec(results / "fusion")  # everything under results/: they leak in
    declared = _declared_shards(results)
    spec = build_pipeline_spec(results / "fusion", run_shards=RunShards.declared(declared))
    assert spec == json.loads((run / "fusion" / PIPELINE_FILE).read_text())
    # the command the rule runs writes the same file
    out = tmp_path / "pipeline.json"
    assert main(["pipeline-spec", "--model", str(results / "fusion"), "--out", str(out),
                 "--shards", *map(str, declared)]) == 0  # fmt: skip
    assert json.loads(out.read_text()) == spec
    # a declared file that is no shard of these kinds is named
    bad = results / "corpora/demo_emo/manifest.parquet"
    assert main(["pipeline-spec", "--model", str(results / "fusion"), "--out", str(out),
                 "--shards", *map(str, declared), str(bad)]) == 1  # fmt: skip
    assert f"{bad}: a 'manifest' shard" in capsys.readouterr().err


def test_progress_bars_are_switched_off_not_patched(run, videos, capfd):
    """predict draws its own bar: the embedding functions it calls are asked to draw none."""
    from mepr.embed.shard import embed_audio_shard
    from mepr.predict.embedding import _table

    with Predictor(run / "fusion") as predictor:
        ex = predictor.extract(collect_videos([videos["good"]])[0])
        capfd.readouterr()
        predictor.predict([ex])
        err = capfd.readouterr().err
        assert "embeddings" not in err and "it/s" not in err, err
        params = predictor.pipeline.encoders["audio"]
        encoder = predictor._encoders.get(params)
    audio = _table([ex.audio], shards.AUDIO)
    embed_audio_shard(audio, params, encoder=encoder, progress=False)
    assert capfd.readouterr().err == ""
    embed_audio_shard(audio, params, encoder=encoder)  # the workflow's default: a bar
    assert "audio embeddings" in capfd.readouterr().err
