"""Training: data loading, losses, GradNorm, and stage 1 -> 2 -> 3 end to end on planted data."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from mepr import shards
from mepr.config import parse_params
from mepr.config.train import GradNormParams, SslParams
from mepr.labels import EMOTIONS, TRAITS
from mepr.train.cli import register
from mepr.train.data import CROSS_FEATURES, FUSION_PREDICTIONS, load_labels, load_sequences
from mepr.train.losses import (
    LossWeighting,
    emotion_class,
    emotion_ssl_loss,
    loss_components,
    personality_ssl_loss,
)

# --------------------------------------------------------------------------- synthetic corpora
DIMS = {"face": 32, "text": 48}
ENCODERS = {"face": "mamba", "text": "transformer"}
SIZES = {"train": 40, "dev": 12, "test": 12}


def _manifest_row(vid, corpus, split, task, emotion, traits):
    return {
        "video_id": vid,
        "corpus": corpus,
        "path": f"/videos/{vid}.mp4",
        "split": split,
        "task": task,
        "size_bytes": 1,
        "shard": shards.shard_of(vid, 2),
        "emotion": emotion,
        "traits": traits,
        "transcript": None,
    }


def make_corpora(root: Path, seed: int = 0) -> dict:
    """Two corpora (emotion, personality) x two modalities with a planted linear signal.

    Each clip's steps are noise around  a * prototype[emotion] + b * W (traits - 0.5), so both
    tasks are learnable from both corpora.  Some videos are missing from a modality, some face
    sequences have no valid step at all, some have masked frames; text lengths vary.
    """
    rng = np.random.default_rng(seed)
    protos = {m: rng.normal(size=(len(EMOTIONS), d)) for m, d in DIMS.items()}
    tmaps = {m: rng.normal(size=(len(TRAITS), d)) for m, d in DIMS.items()}
    out = {"manifests": {}, "shards": {m: {} for m in DIMS}, "missing": {m: set() for m in DIMS}}
    for corpus, task in (("emo", "emotion"), ("pers", "personality")):
        rows, embs = [], {m: [] for m in DIMS}
        for split, n in SIZES.items():
            for _ in range(n):
                vid = f"{corpus}_{len(rows):03d}"
                cls = int(rng.integers(0, len(EMOTIONS)))
                inten = np.zeros(len(EMOTIONS))
                inten[cls] = 1.0
                if cls and rng.random() < 0.3:  # a weaker second emotion
                    inten[1 + (cls % 6)] = 0.5
                traits = rng.uniform(0.0, 1.0, len(TRAITS))
                rows.append(
                    _manifest_row(
                        vid,
                        corpus,
                        split,
                        task,
                        inten.tolist() if task == "emotion" else None,
                        traits.tolist() if task == "personality" else None,
                    )
                )
                for m, d in DIMS.items():
                    if rng.random() < 0.05:
                        out["missing"][m].add(vid)
                        continue
                    t = 8 if m == "face" else int(rng.integers(3, 12))
                    signal = 1.5 * protos[m][cls] + 2.0 * ((traits - 0.5) @ tmaps[m])
                    vals = (signal[None] + 0.7 * rng.normal(size=(t, d))).astype(np.float32)
                    mask = np.ones(t, bool)
                    if m == "face":
                        if rng.random() < 0.05:
                            mask[:] = False
                            out["missing"][m].add(vid)
                        else:
                            mask[rng.random(t) < 0.15] = False
                    vals[~mask] = 0.0
                    embs[m].append(
                        {
                            "video_id": vid,
                            "n_steps": t,
                            "dim": d,
                            "values": vals.tolist(),
                            "step_mask": mask.tolist(),
                        }
                    )
        man = root / "corpora" / corpus / "manifest.parquet"
        shards.write_table(rows, shards.MANIFEST, man)
        out["manifests"][corpus] = man
        for m in DIMS:
            paths = []
            for k in range(2):
                p = root / "embeddings" / corpus / m / f"shard-{k}.parquet"
                part = [r for r in embs[m] if shards.shard_of(r["video_id"], 2) == k]
                shards.write_table(part, shards.EMBEDDINGS, p)
                paths.append(p)
            out["shards"][m][corpus] = paths
    return out


TRAIN = {
    "device": "cpu",
    "batch_size": 16,
    "lr": 3e-3,
    "max_epochs": 30,
    "patience": 10,
    "hidden_dim": 32,
    "out_features": 32,
    "heads": 2,
    "mamba": {"d_state": 8},
    "cross": {"hidden_dim": 32, "heads": 2, "max_epochs": 15},
    "fusion": {"hidden_dim": 32, "heads": 2, "max_epochs": 60},
}


def _cli(*argv: str) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([str(a) for a in argv])
    args.func(args)


def _params(modality: str | None) -> str:
    return json.dumps({**TRAIN, "encoder": ENCODERS[modality] if modality else ENCODERS})


def run_unimodal(c, m, corpus, out):
    _cli(
        "train-unimodal", "--modality", m, "--corpus", corpus,
        "--manifest", c["manifests"][corpus], "--embeddings", *c["shards"][m][corpus],
        "--params", _params(m), "--seed", "7", "--out", out,
    )  # fmt: skip


def run_cross(c, m, stage1, out):
    _cli(
        "train-cross", "--modality", m, "--stage1", *stage1,
        "--manifests", *c["manifests"].values(),
        "--embeddings", *(p for ps in c["shards"][m].values() for p in ps),
        "--params", _params(m), "--seed", "7", "--out", out,
    )  # fmt: skip


def run_fusion(c, cross, out, params=None):
    _cli(
        "train-fusion", "--cross", *cross, "--manifests", *c["manifests"].values(),
        "--params", params or _params(None), "--seed", "7", "--out", out,
    )  # fmt: skip


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    c = make_corpora(root)
    for m in DIMS:
        for corpus in ("emo", "pers"):
            run_unimodal(c, m, corpus, root / "stage1" / f"{m}-{corpus}")
        run_cross(c, m, [root / "stage1" / f"{m}-{t}" for t in ("emo", "pers")], root / "cross" / m)
    run_fusion(c, [root / "cross" / m for m in DIMS], root / "fusion")
    return root, c


def _metrics(path: Path) -> dict:
    return json.loads((path / "metrics.json").read_text())


# --------------------------------------------------------------------------- data
def test_load_sequences_pads_subsamples_and_masks(tmp_path):
    rows = [
        {"video_id": "a", "n_steps": 3, "dim": 2, "values": [[1, 1], [2, 2], [3, 3]],
         "step_mask": [True, False, True]},
        {"video_id": "b", "n_steps": 10, "dim": 2, "values": [[i, -i] for i in range(10)],
         "step_mask": [True] * 10},
        {"video_id": "c", "n_steps": 2, "dim": 2, "values": [[5, 5], [6, 6]],
         "step_mask": [False, False]},
        {"video_id": "e", "n_steps": 0, "dim": 2, "values": [], "step_mask": []},
    ]  # fmt: skip
    p = shards.write_table(rows, shards.EMBEDDINGS, tmp_path / "s.parquet")
    seqs = load_sequences([p], ["b", "a", "missing", "c", "e"], max_steps=4)
    assert seqs.x.shape == (5, 4, 2) and seqs.dim == 2
    np.testing.assert_array_equal(seqs.x[0, :, 0], [0, 3, 6, 9])  # uniform subsample
    np.testing.assert_array_equal(seqs.mask[1], [True, False, True, False])
    np.testing.assert_array_equal(seqs.x[1, :, 0], [1, 0, 3, 0])  # masked steps zeroed
    np.testing.assert_array_equal(seqs.present, [True, True, False, False, False])
    assert not seqs.x[2:].any()


def test_load_labels_and_emotion_target(tmp_path):
    rows = [
        _manifest_row("x", "c", "train", "emotion", [1, 0, 0, 0, 0, 0, 0], None),
        _manifest_row("y", "c", "dev", "emotion", [0, 0.5, 0, 0, 0.5, 0, 0], None),
        _manifest_row("z", "d", "test", "personality", None, [0.1, 0.2, 0.3, 0.4, 0.5]),
    ]
    p = shards.write_table(rows, shards.MANIFEST, tmp_path / "m.parquet")
    labels = load_labels([p])
    np.testing.assert_array_equal(labels.has_emotion, [True, True, False])
    np.testing.assert_array_equal(labels.has_traits, [False, False, True])
    # CE target: argmax of the intensities, ties to the lowest index
    assert emotion_class(torch.from_numpy(labels.emotion[:2])).tolist() == [0, 1]
    with pytest.raises(ValueError, match="repeat"):
        load_labels([p, p])


# --------------------------------------------------------------------------- losses
def test_components_are_masked_by_label():
    logits = torch.randn(4, 7, requires_grad=True)
    scores = torch.rand(4, 5, requires_grad=True)
    target = torch.tensor([1, 2, 0, 0])
    has_e = torch.tensor([True, True, False, False])
    traits = torch.rand(4, 5)
    has_t = ~has_e
    comps = loss_components(logits, scores, target, has_e, traits, has_t)
    assert set(comps) == {"emo_sup", "per_sup"}
    torch.testing.assert_close(
        comps["emo_sup"], torch.nn.functional.cross_entropy(logits[:2], target[:2])
    )
    torch.testing.assert_close(comps["per_sup"], (scores[2:] - traits[2:]).abs().mean())
    only_emo = loss_components(
        logits, scores, target, torch.ones(4, dtype=bool), traits, ~has_t.new_ones(4)
    )
    assert set(only_emo) == {"emo_sup"}


def test_pseudo_labels_respect_thresholds():
    logits = torch.zeros(3, 7, requires_grad=True)
    teacher = torch.zeros(3, 7)
    teacher[0, 4] = 10.0  # confident: happiness
    teacher[1, 2] = 0.5  # not confident
    unl = torch.tensor([True, True, False])
    loss = emotion_ssl_loss(logits, teacher, unl, threshold=0.6)
    torch.testing.assert_close(
        loss, torch.nn.functional.cross_entropy(logits[:1], torch.tensor([4]))
    )
    assert emotion_ssl_loss(logits, torch.zeros(3, 7), unl, 0.6) is None

    scores = torch.full((2, 5), 0.5, requires_grad=True)
    t = torch.tensor([[0.9, 0.55, 0.1, 0.5, 0.45], [0.7, 0.7, 0.7, 0.7, 0.7]])
    unl = torch.tensor([True, False])
    bce = personality_ssl_loss(scores, t, unl, 0.6, "binary")
    torch.testing.assert_close(bce, torch.tensor(float(np.log(2))))  # 2 confident traits
    soft = personality_ssl_loss(scores, t, unl, 0.6, "soft")
    torch.testing.assert_close(soft, torch.tensor(0.4))  # (|0.5-0.9| + |0.5-0.1|) / 2
    assert personality_ssl_loss(scores, torch.full((2, 5), 0.5), unl, 0.6) is None

    ssl = SslParams(enabled=True)
    comps = loss_components(
        logits, torch.rand(3, 5), torch.zeros(3, dtype=torch.long), torch.tensor([False, False, True]),
        torch.rand(3, 5), torch.tensor([True, True, False]), ssl=ssl, teacher_logits=teacher,
        teacher_scores=torch.full((3, 5), 0.95),
    )  # fmt: skip
    assert set(comps) == {"emo_sup", "per_sup", "emo_ssl", "per_ssl"}


def _two_task(weighting, k1=1.0, k2=1.0, scale1=3.0, scale2=1.0):
    theta = torch.zeros(4, requires_grad=True)
    comps = {"emo_sup": scale1 * theta.sum() + k1, "per_sup": scale2 * theta.sum() + k2}
    weighting.update(comps, [theta])
    return weighting.weights


def test_gradnorm_lowers_the_weight_of_the_larger_gradient():
    gn = GradNormParams(alpha_sup=1.0, w_lr_sup=0.005)
    w = _two_task(LossWeighting(gn, SslParams()))
    # g = (6, 2), equal loss ratios: target = mean(G) = 4; w -= lr*sign(G - target)*g; rescale to 2
    w1, w2 = 1 - 0.005 * 6, 1 + 0.005 * 2
    assert w["emo_sup"] == pytest.approx(2 * w1 / (w1 + w2))
    assert w["per_sup"] == pytest.approx(2 * w2 / (w1 + w2))
    assert w["emo_sup"] + w["per_sup"] == pytest.approx(2.0)
    assert w["emo_ssl"] + w["per_ssl"] == pytest.approx(2 * gn.lambda_ssl)  # untouched wallet
    assert w["emo_ssl"] / w["per_ssl"] == pytest.approx(1.0 / 0.2)  # initial ratio from ssl


def test_gradnorm_raises_the_weight_of_the_slower_task():
    lw = LossWeighting(GradNormParams(alpha_sup=1.5, w_lr_sup=0.01), SslParams())
    _two_task(lw, scale1=1.0)  # equal gradients, records L(0) = 1, 1: no change
    assert lw.weights["emo_sup"] == pytest.approx(1.0)
    for _ in range(5):  # task 2 trains faster (its loss ratio is 1/4): task 1 gains weight
        w = _two_task(lw, k1=1.0, k2=0.25, scale1=1.0)
    assert w["emo_sup"] > 1.0 > w["per_sup"]
    assert w["emo_sup"] == pytest.approx(1 + 5 * 0.01 * 2, rel=1e-6)
    assert w["emo_sup"] + w["per_sup"] == pytest.approx(2.0)


def test_gradnorm_floor_single_component_and_static_mode():
    lw = LossWeighting(GradNormParams(w_lr_sup=10.0, w_floor=1e-3), SslParams())
    w = _two_task(lw, scale1=5.0)  # a huge step: clamped to the floor, then rescaled
    assert w["emo_sup"] / w["per_sup"] == pytest.approx(1e-3 / (1 + 10.0 * 2))
    assert w["emo_sup"] + w["per_sup"] == pytest.approx(2.0)
    lw = LossWeighting(GradNormParams(), SslParams())
    theta = torch.zeros(3, requires_grad=True)
    before = lw.weights
    lw.update({"emo_ssl": theta.sum() + 1, "emo_sup": 2 * theta.sum() + 1}, [theta])
    assert lw.weights == before  # one component per wallet: nothing to balance
    static = LossWeighting(GradNormParams(enabled=False), SslParams())
    theta = torch.ones(2, requires_grad=True)
    comps = {"emo_sup": theta.sum(), "per_ssl": 3 * theta.sum()}
    static.update(comps, [theta])
    assert static.weights["emo_sup"] == 1.0 and static.weights["per_ssl"] == 0.2
    torch.testing.assert_close(static.total(comps), torch.tensor(2.0 + 0.2 * 6.0))


def test_params_parse_and_validate(tmp_path):
    p = parse_params({"lr": 0.01, "fusion": {"drop_modalities": ["audio"]}, "encoder": "mamba"})
    assert p.lr == 0.01 and p.fusion.drop_modalities == ("audio",) and p.encoder_for("x") == "mamba"
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"encoder": {"face": "transformer"}}))
    assert parse_params(str(f)).encoder_for("face") == "transformer"
    with pytest.raises(ValueError, match="train.fusion.hiden_dim"):
        parse_params({"fusion": {"hiden_dim": 3}})
    with pytest.raises(ValueError, match="train.encoder"):
        parse_params({"encoder": "lstm"})


def test_config_train_section_parses():
    from mepr.config import REPO_ROOT, load_config

    cfg = load_config(REPO_ROOT / "config.yaml")
    p = parse_params(cfg["train"])
    assert p.ssl.threshold_emotion == 0.6 and p.ssl.weight_personality == 0.2
    assert p.gradnorm.alpha_ssl == 1.5 and p.gradnorm.lambda_ssl == 0.4
    assert {p.encoder_for(m) for m in ("face", "text")} <= {"mamba", "transformer"}


# --------------------------------------------------------------------------- end to end
def test_stage1_outputs_and_beats_baseline(pipeline):
    root, _ = pipeline
    for m in DIMS:
        for corpus, task in (("emo", "emotion"), ("pers", "personality")):
            d = root / "stage1" / f"{m}-{corpus}"
            assert {p.name for p in d.iterdir()} >= {
                "model.safetensors", "config.json", "metrics.json", "curves.csv"
            }  # fmt: skip
            met = _metrics(d)
            assert met["task"] == task
            assert task in met["test"] and "per_class" in met["test"][task]
            assert met["test"]["selection"] > met["baseline"]["test"]["selection"], (m, corpus)
            cfg = json.loads((d / "config.json").read_text())
            assert cfg["model"]["encoder"] == ENCODERS[m] and cfg["task"] == task
            header = (d / "curves.csv").read_text().splitlines()[0]
            assert header.startswith("epoch,lr,train_loss,dev_selection")


def test_stage2_outputs_and_features(pipeline):
    root, c = pipeline
    n_videos = sum(SIZES.values()) * 2
    for m in DIMS:
        d = root / "cross" / m
        met = _metrics(d)
        for split in ("dev", "test"):
            assert {"emotion", "personality", "selection"} <= set(met[split])
        assert met["test"]["selection"] > met["baseline"]["test"]["selection"]
        table = shards.read_table(d / "features.parquet", CROSS_FEATURES)
        assert table.num_rows == n_videos
        assert table.schema.metadata[b"mepr.schema"] == b"cross_features"
        rows = {r["video_id"]: r for r in table.to_pylist()}
        assert {v for v, r in rows.items() if not r["present"]} == c["missing"][m]
        for r in rows.values():
            assert len(r["emotion_logits"]) == 7 and len(r["personality_scores"]) == 5
            assert len(r["emotion_features"]) == len(r["personality_features"]) == 32
            assert all(np.isfinite(r["emotion_logits"]))
            if not r["present"]:
                assert not any(r["emotion_features"])
        header = (d / "curves.csv").read_text().splitlines()[0]
        assert "w_emo_ssl" in header and "w_per_sup" in header


def test_fusion_outputs_and_beats_baseline(pipeline):
    root, _ = pipeline
    d = root / "fusion"
    met = _metrics(d)
    for split in ("dev", "test"):
        assert set(met[split]) >= {"emotion", "personality", "selection"}
        assert "per_class" in met[split]["emotion"] and "per_class" in met[split]["personality"]
        assert set(met["baseline"][split]) >= {"emotion", "personality", "selection"}
        for m in DIMS:
            assert "selection" in met["unimodal"][m][split]
    assert met["test"]["selection"] > met["baseline"]["test"]["selection"] + 0.05
    assert met["dev"]["selection"] > met["baseline"]["dev"]["selection"] + 0.05
    preds = shards.read_table(d / "predictions.parquet", FUSION_PREDICTIONS).to_pylist()
    assert len(preds) == sum(SIZES.values()) * 2
    for r in preds:
        assert abs(sum(r["emotion_probs"]) - 1) < 1e-4
        assert all(0 <= s <= 1 for s in r["personality_scores"])
    assert json.loads((d / "config.json").read_text())["modalities"] == ["face", "text"]


def test_fusion_modality_ablation(pipeline, tmp_path):
    root, c = pipeline
    params = json.dumps(
        {**TRAIN, "fusion": {**TRAIN["fusion"], "drop_modalities": ["face"], "max_epochs": 3}}
    )
    run_fusion(c, [root / "cross" / m for m in DIMS], tmp_path, params)
    met = _metrics(tmp_path)
    assert met["modalities"] == ["text"] and list(met["unimodal"]) == ["text"]


def test_training_is_deterministic(pipeline, tmp_path):
    root, c = pipeline
    run_unimodal(c, "face", "emo", tmp_path / "u")
    ref = root / "stage1" / "face-emo"
    for name in ("metrics.json", "model.safetensors", "curves.csv"):
        assert (tmp_path / "u" / name).read_bytes() == (ref / name).read_bytes(), name
    run_fusion(c, [root / "cross" / m for m in DIMS], tmp_path / "f")
    for name in ("metrics.json", "model.safetensors"):
        assert (tmp_path / "f" / name).read_bytes() == (root / "fusion" / name).read_bytes()
    a = pq.read_table(tmp_path / "f" / "predictions.parquet")
    assert a.equals(pq.read_table(root / "fusion" / "predictions.parquet"))


def test_stage2_refuses_wrong_stage1(pipeline, tmp_path):
    root, c = pipeline
    with pytest.raises(ValueError, match="lacks a personality"):
        run_cross(c, "face", [root / "stage1" / "face-emo"], tmp_path)
    with pytest.raises(ValueError, match="expected 'face'"):
        run_cross(
            c, "face", [root / "stage1" / "text-emo", root / "stage1" / "face-pers"], tmp_path
        )


def test_saved_models_reload_and_reproduce_outputs(pipeline):
    from mepr.train.data import load_cross_features, load_labels
    from mepr.train.stages import load_cross, load_fusion, load_unimodal

    root, c = pipeline
    assert load_unimodal(root / "stage1" / "text-pers").cfg.task == "personality"
    model = load_cross(root / "cross" / "text")
    labels = load_labels(list(c["manifests"].values()))
    ids = labels.video_id[:6]
    seqs = load_sequences([p for ps in c["shards"]["text"].values() for p in ps], ids, 64)
    with torch.no_grad():
        out = model(torch.from_numpy(seqs.x), torch.from_numpy(seqs.mask))
    saved = load_cross_features(root / "cross" / "text" / "features.parquet", "text", ids)
    np.testing.assert_allclose(out["emotion_logits"].numpy(), saved.logits, atol=1e-5)
    fusion = load_fusion(root / "fusion")
    assert fusion.modalities == ["face", "text"]
