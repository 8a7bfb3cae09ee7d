"""The single-task fusion: model behaviour mepr adds (masking, slices), the training job on
tiny synthetic stage-2 folders, its config section, and its two DAG targets."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from mepr import layout, shards
from mepr.config import parse_params
from mepr.labels import EMOTIONS, TRAITS
from mepr.metrics import emotion_metrics, personality_metrics, softmax
from mepr.models import checkpoints
from mepr.models.fusion_single import SingleTaskFusionConfig, SingleTaskFusionModel
from mepr.train.cli import register
from mepr.train.data import CROSS_FEATURES, load_cross_features, load_labels
from mepr.train.fusion_single import load_fusion_single, single_task_config

REPO = Path(__file__).resolve().parents[1]
# per modality: (emotion width, personality width) of the stage-2 vector, asymmetric
WIDTHS = {"face": (6, 10), "text": (8, 4)}
SIZES = {"train": 24, "dev": 8, "test": 8}


def _cfg(task: str, feature_slice: str = "both", **over) -> SingleTaskFusionConfig:
    mods = tuple(WIDTHS)
    return SingleTaskFusionConfig(
        **{
            "task": task,
            "modalities": mods,
            "input_dims": tuple(sum(WIDTHS[m]) for m in mods),
            "emotion_dims": tuple(WIDTHS[m][0] for m in mods),
            "feature_slice": feature_slice,
            "hidden_dim": 8,
            "heads": 2,
            "dropout": 0.0,
            **over,
        }
    )


def _inputs(gen: torch.Generator, b: int = 4):
    feats = {m: torch.randn(b, sum(w), generator=gen) for m, w in WIDTHS.items()}
    logits = torch.randn(b, len(WIDTHS), 7, generator=gen)
    scores = torch.rand(b, len(WIDTHS), 5, generator=gen)
    return feats, logits, scores


# --------------------------------------------------------------------------- the model
@pytest.mark.parametrize("task", ["emotion", "personality"])
def test_an_absent_modality_is_ignored_entirely(task):
    """mepr masks absent modalities (graph, query attention and the prediction mean): what an
    absent modality's columns hold cannot change the output, a present one's can."""
    torch.manual_seed(0)
    model = SingleTaskFusionModel(_cfg(task)).eval()
    feats, logits, scores = _inputs(torch.Generator().manual_seed(1))
    present = torch.tensor([[True, False]] * 4)
    noisy = {**feats, "text": feats["text"] + 7.0}
    with torch.no_grad():
        (a,) = model(feats, logits, scores, present).values()
        (b,) = model(
            noisy, logits + 3.0 * torch.tensor([0.0, 1.0])[:, None], scores, present
        ).values()
        (c,) = model(noisy, logits, scores, torch.ones(4, 2, dtype=torch.bool)).values()
    assert torch.allclose(a, b, atol=1e-6)
    assert (a - c).abs().max() > 1e-3


def test_outputs_are_the_tasks_own():
    torch.manual_seed(0)
    feats, logits, scores = _inputs(torch.Generator().manual_seed(1))
    present = torch.ones(4, 2, dtype=torch.bool)
    emo = SingleTaskFusionModel(_cfg("emotion")).eval()(feats, logits, scores, present)
    per = SingleTaskFusionModel(_cfg("personality")).eval()(feats, logits, scores, present)
    assert list(emo) == ["emotion_logits"] and emo["emotion_logits"].shape == (4, 7)
    assert list(per) == ["personality_scores"] and per["personality_scores"].shape == (4, 5)
    assert bool(((per["personality_scores"] > 0) & (per["personality_scores"] < 1)).all())


def test_own_slice_widths_and_parts():
    """`own` feeds each modality's projector its task's part, split at its emotion width."""
    emo = SingleTaskFusionModel(_cfg("emotion", "own"))
    per = SingleTaskFusionModel(_cfg("personality", "own"))
    both = SingleTaskFusionModel(_cfg("personality"))
    width = {k: {m: p.proj[0].in_features for m, p in v.projectors.items()}
             for k, v in (("emo", emo), ("per", per), ("both", both))}  # fmt: skip
    assert width == {
        "emo": {"face": 6, "text": 8},
        "per": {"face": 10, "text": 4},
        "both": {"face": 16, "text": 12},
    }
    assert per.guide is None and emo.guide.shape == (7, 8)
    assert per.predict_proj.in_features == 5 and emo.predict_proj.in_features == 7


def test_config_is_checked():
    with pytest.raises(ValueError, match="feature_slice 'emo'"):
        _cfg("emotion", "emo")
    with pytest.raises(ValueError, match="unknown fusion task"):
        _cfg("both")
    with pytest.raises(ValueError, match="face: emotion width 16"):
        _cfg("emotion", emotion_dims=(16, 8))


# --------------------------------------------------------------------------- training
def _stage2(root: Path, seed: int = 0) -> tuple[list[Path], list[Path]]:
    """Two corpora (emotion rows, trait rows) and one stage-2 folder per modality: config.json
    naming the modality, features.parquet with a planted signal; text misses a few videos."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict]] = {m: [] for m in WIDTHS}
    manifests = []
    for corpus, task in (("emo", "emotion"), ("pers", "personality")):
        man = []
        for split, n in SIZES.items():
            for _ in range(n):
                vid = f"{corpus}_{len(man):03d}"
                cls = int(rng.integers(0, len(EMOTIONS)))
                inten = np.eye(len(EMOTIONS))[cls]
                traits = rng.uniform(0.0, 1.0, len(TRAITS))
                man.append(
                    {
                        "video_id": vid,
                        "corpus": corpus,
                        "path": f"/v/{vid}.mp4",
                        "split": split,
                        "task": task,
                        "size_bytes": 1,
                        "shard": 0,
                        "emotion": inten.tolist() if task == "emotion" else None,
                        "traits": traits.tolist() if task == "personality" else None,
                        "transcript": None,
                    }  # fmt: skip
                )
                for m, (he, hp) in WIDTHS.items():
                    if m == "text" and rng.random() < 0.1:
                        continue  # absent from the modality: load_cross_features fills zeros
                    fe = rng.normal(size=he) + 2.0 * np.resize(inten, he)
                    fp = rng.normal(size=hp) + 2.0 * np.resize(traits - 0.5, hp)
                    rows[m].append(
                        {
                            "video_id": vid,
                            "corpus": corpus,
                            "split": split,
                            "present": True,
                            "emotion_features": fe.tolist(),
                            "personality_features": fp.tolist(),
                            "emotion_logits": (3.0 * inten + rng.normal(size=7)).tolist(),
                            "personality_scores": np.clip(
                                traits + 0.1 * rng.normal(size=5), 0, 1
                            ).tolist(),
                        }  # fmt: skip
                    )
        path = root / "corpora" / corpus / "manifest.parquet"
        shards.write_table(man, shards.MANIFEST, path)
        manifests.append(path)
    cross = []
    for m in WIDTHS:
        d = root / "cross" / m
        shards.write_table(rows[m], CROSS_FEATURES, d / "features.parquet")
        (d / "config.json").write_text(json.dumps({"stage": "cross", "modality": m}))
        cross.append(d)
    return cross, manifests


TRAIN = {"device": "cpu", "batch_size": 8, "dropout": 0.1, "fusion": {"hidden_dim": 16, "heads": 2}}


def _train(cross, manifests, out: Path, task: str, **section) -> dict:
    params = {**TRAIN, "fusion_single": {"max_epochs": 1, **section}}
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    argv = ["train-fusion-single", "--task", task, "--cross", *cross, "--manifests", *manifests,
            "--params", json.dumps(params), "--seed", "3", "--out", out]  # fmt: skip
    args = parser.parse_args([str(a) for a in argv])
    args.func(args)
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def stage2(tmp_path_factory):
    return _stage2(tmp_path_factory.mktemp("stage2"))


@pytest.mark.parametrize(("task", "feature_slice"), [("emotion", "both"), ("personality", "own")])
def test_one_epoch_writes_the_folder_and_its_metrics(stage2, tmp_path, task, feature_slice):
    cross, manifests = stage2
    metrics = _train(cross, manifests, tmp_path, task, feature_slice={task: feature_slice})
    names = {"model.safetensors", "config.json", "metrics.json", "curves.csv"}
    assert names <= {p.name for p in tmp_path.iterdir()}
    assert (metrics["stage"], metrics["task"], metrics["epochs_run"]) == ("fusion_single", task, 1)
    assert metrics["modalities"] == ["face", "text"] and metrics["feature_slice"] == feature_slice
    other = "personality" if task == "emotion" else "emotion"
    for split in ("dev", "test"):  # the own task's metrics only, and its n
        assert task in metrics[split] and other not in metrics[split]
        assert metrics[split]["n"] == {task: SIZES[split], other: 0}
        assert task in metrics["baseline"][split] and other not in metrics["baseline"][split]
    # the saved model is the one evaluated: reloading it gives the stored test metrics
    model = load_fusion_single(tmp_path)
    assert model.cfg.task == task and model.cfg.hidden_dim == 16
    assert model.cfg.emotion_dims == (6, 8)  # read from the stage-2 features, not assumed
    labels = load_labels(manifests)
    feats = {
        m.name: load_cross_features(m / "features.parquet", m.name, labels.video_id) for m in cross
    }
    with torch.no_grad():
        (y,) = model(
            {m: torch.from_numpy(f.features) for m, f in feats.items()},
            torch.from_numpy(np.stack([f.logits for f in feats.values()], 1)),
            torch.from_numpy(np.stack([f.scores for f in feats.values()], 1)),
            torch.from_numpy(np.stack([f.present for f in feats.values()], 1)),
        ).values()
    test = labels.index("test")
    if task == "emotion":
        test = test[labels.has_emotion[test]]
        got = emotion_metrics(softmax(y.numpy(), float64=True)[test], labels.emotion[test])["mWACC"]
        want = metrics["test"]["emotion"]["mWACC"]
    else:
        test = test[labels.has_traits[test]]
        got = personality_metrics(y.numpy()[test], labels.traits[test])["mACC"]
        want = metrics["test"]["personality"]["mACC"]
    assert got == pytest.approx(want, abs=1e-6)


def test_the_wrong_stage_folder_is_refused(stage2, tmp_path):
    cross, manifests = stage2
    _train(cross, manifests, tmp_path, "emotion")
    with pytest.raises(checkpoints.CheckpointError, match="expected a stage-3 single-task"):
        checkpoints.load_model(cross[0], "fusion_single")
    assert checkpoints.read_config(tmp_path, "fusion_single")["task"] == "emotion"


# --------------------------------------------------------------------------- config
def test_sizes_default_to_the_fusion_section():
    params = parse_params({"fusion": {"hidden_dim": 32, "heads": 8}})
    feats = {m: argparse.Namespace(features=np.zeros((1, sum(w)))) for m, w in WIDTHS.items()}
    split = {m: w[0] for m, w in WIDTHS.items()}
    cfg = single_task_config(params, "emotion", feats, split)
    assert (cfg.hidden_dim, cfg.heads, cfg.feature_slice) == (32, 8, "both")
    params = parse_params(
        {"fusion_single": {"hidden_dim": 12, "heads": 3, "feature_slice": {"emotion": "own"}}}
    )
    cfg = single_task_config(params, "emotion", feats, split)
    assert (cfg.hidden_dim, cfg.heads, cfg.feature_slice) == (12, 3, "own")
    with pytest.raises(ValueError, match="train.fusion_single.hidden_dim: hidden size 12"):
        single_task_config(
            parse_params({"fusion_single": {"hidden_dim": 12, "heads": 5}}), "emotion", feats, split
        )
    with pytest.raises(ValueError, match="train.fusion_single.feature_slice.emotion"):
        parse_params({"fusion_single": {"feature_slice": {"emotion": "emo"}}})


# --------------------------------------------------------------------------- the DAG
def test_the_demo_dag_plans_both_targets(tmp_path):
    (tmp_path / "config.yaml").write_text((REPO / "config.yaml").read_text())
    targets = [layout.FUSION_SINGLE_METRICS.format(task=t) for t in ("emotion", "personality")]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(tmp_path), "--configfile", str(tmp_path / "config.yaml"),
           "-n", "-p", *targets]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    jobs = log.split("rule train_fusion_single:")[1:]
    assert len(jobs) == 2
    for task in ("emotion", "personality"):
        (job,) = [j for j in jobs if f"wildcards: task={task}" in j]
        assert f"python -m mepr train-fusion-single --task {task} --cross" in job
        assert f"--out results/fusion_single/{task} " in job
        assert "results/unimodal/text/cross/features.parquet" in job.split("output:")[0]
    # the README's demo command builds the multi-task fusion only
    assert "rule train_fusion:" not in log
