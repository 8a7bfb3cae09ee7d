"""`mepr import-reference` on files in the authors' released format, end to end.

tests/data/parity/system/ holds their whole system (five stage-2 models and the fusion, at
small widths, random weights) with its inputs and outputs, made by their code
(make_system.py).  Here its state dicts are written as the app's checkpoint files (their
names, nesting and folders, with torch.save), imported through the CLI, loaded by mepr's
predict code and run from the stored embedding sequences (no video decoding): the
predictions must equal theirs within 1e-5.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from mepr.cli import main
from mepr.metrics import softmax
from mepr.models.encoders import sinusoidal_encoding
from mepr.predict import Predictor
from mepr.reference.importer import WHOLE_SEQUENCE, app_personality_inputs
from mepr.train.data import Sequences

DATA = Path(__file__).parent / "data" / "parity" / "system"
TOL = {"atol": 1e-5, "rtol": 0}
PE_LEN = 5000  # their buffers' length; the stored ones are cut
# role -> where the app keeps the file (app:core/modalities/*/model_loader.py, app.py)
WHERE = {
    "fusion": "best_ep9_emo0.6390_pkl0.8269.pt",
    "face": "core/modalities/video/checkpoints/face/clip_face_mamba_transformer_fusion_model.pt",
    "body": "core/modalities/video/checkpoints/body/clip_body_mamba_transformer_fusion_model.pt",
    "scene": "core/modalities/video/checkpoints/scene/"
    "clip_fusion_transformer_transformer_mamba_best_model_dev.pt",
    "audio": "core/modalities/audio/checkpoints/best_fusion_overall_mamba.pt",
    "audio.emotion": "core/modalities/audio/checkpoints/final_best_model_uni_mamba.pt",
    "audio.personality": "core/modalities/audio/checkpoints/best_mamba_regressor.pth",
    "text": "core/modalities/text/checkpoints/Mamba_Transformer_bge-small_fusion.pt",
    "text.emotion": "core/modalities/text/checkpoints/Mamba_bge-small_emotion.pt",
    "text.personality": "core/modalities/text/checkpoints/Transformer_bge-small_personality.pt",
}


@pytest.fixture(scope="module")
def system():
    return load_file(DATA / "system.safetensors"), json.loads((DATA / "system.json").read_text())


def _state(tensors: dict, name: str) -> OrderedDict:
    """Their state dict of model `name`, position-encoding buffers back at full length (the
    rows beyond the stored ones are the sinusoidal encoding, which the import checks)."""
    prefix = f"state/{name}/"
    out = OrderedDict()
    for k, v in tensors.items():
        if k.startswith(prefix):
            if k.endswith("positional_encoding.pe"):
                v = torch.cat([v, sinusoidal_encoding(PE_LEN, v.shape[1])[v.shape[0] :]])
            out[k[len(prefix) :]] = v
    return out


def _sub(state: OrderedDict, prefix: str) -> OrderedDict:
    return OrderedDict((k[len(prefix) + 1 :], v) for k, v in state.items() if k.startswith(prefix))


def released(tensors: dict, meta: dict) -> dict[str, object]:
    """What each of the app's files holds, as their code saves it."""
    audio, text = _state(tensors, "audio"), _state(tensors, "text")
    return {
        "fusion": _state(tensors, "fusion"),
        **{m: _state(tensors, m) for m in ("face", "body", "scene")},
        "audio": {"config": meta["audio"]["config"], "state_dict": audio},
        "audio.emotion": {"model_state_dict": _sub(audio, "emo_enc")},
        "audio.personality": _sub(audio, "per_enc"),
        "text": text,
        "text.emotion": {"model_state_dict": _sub(text, "emo_model")},
        "text.personality": _sub(text, "per_model"),
    }


def write_released(root: Path, contents: dict[str, object]) -> Path:
    for role, obj in contents.items():
        path = root / WHERE[role]
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(obj, path)
    return root


def run_import(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main(["import-reference", *argv])
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def _sequences(tensors: dict) -> dict[str, Sequences]:
    seqs = {}
    for m in ("face", "body", "scene", "audio", "text"):
        x, lengths = tensors[f"input/{m}/x"], tensors[f"input/{m}/lengths"]
        mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        seqs[m] = Sequences(x=x.numpy(), mask=mask.numpy(), dim=int(x.shape[2]))
    return seqs


@pytest.fixture(scope="module")
def imported(system, tmp_path_factory):
    tensors, meta = system
    src = write_released(tmp_path_factory.mktemp("released"), released(tensors, meta))
    out = tmp_path_factory.mktemp("imported")
    rc = main(["import-reference", "--from-dir", str(src), "--out", str(out)])
    assert rc == 0
    return src, out


def test_the_imported_system_predicts_what_theirs_does(system, imported):
    tensors, _ = system
    _, out = imported
    predictor = Predictor(out / "fusion", device="cpu")  # load_pipeline checks the sha256s
    # their state dict's order (any: the fusion does not depend on it)
    assert sorted(predictor.modalities) == ["audio", "body", "face", "scene", "text"]
    got = predictor.run_models(_sequences(tensors))  # the three videos as one padded batch
    want_probs = softmax(tensors["output/direct/emotion_logits"].numpy(), float64=True)
    np.testing.assert_allclose(got["probs"], want_probs, **TOL)
    np.testing.assert_allclose(
        got["traits"], tensors["output/direct/personality_scores"].numpy(), **TOL
    )
    for j, m in enumerate(predictor.modalities):  # each stage-2 model on its own
        want = softmax(tensors[f"stage2/{m}/emotion_logits"].numpy(), float64=True)
        np.testing.assert_allclose(got["modality_probs"][:, j], want, **TOL)
        want = tensors[f"stage2/{m}/personality_scores"].numpy()
        np.testing.assert_allclose(got["modality_traits"][:, j], want, **TOL)


def test_the_apps_score_step_is_the_only_difference(system, imported):
    """Their app turns [0, 1] personality scores into logits before the fusion; with that
    step (app_personality_inputs) on mepr's stage-2 outputs, the fusion gives the app's
    outputs.  (mepr predict does not take the step: the 'direct' outputs above.)"""
    tensors, _ = system
    predictor = Predictor(imported[1] / "fusion", device="cpu")
    seqs = _sequences(tensors)
    feats, logits, scores = {}, [], []
    with torch.no_grad():
        for m in predictor.modalities:
            s = seqs[m]
            o = predictor.cross[m](torch.from_numpy(s.x), torch.from_numpy(s.mask))
            feats[m] = torch.cat([o["emotion_features"], o["personality_features"]], 1)
            torch.testing.assert_close(feats[m], tensors[f"stage2/{m}/features"], **TOL)
            logits.append(o["emotion_logits"])
            fed = app_personality_inputs(o["personality_scores"])
            want = tensors[f"fusion_input/app/personality_scores/{m}"]
            torch.testing.assert_close(fed, want, **TOL)
            scores.append(fed)
        present = torch.ones(len(scores[0]), len(scores), dtype=torch.bool)
        fused = predictor.fusion(feats, torch.stack(logits, 1), torch.stack(scores, 1), present)
    for key in ("emotion_logits", "personality_scores"):
        torch.testing.assert_close(fused[key], tensors[f"output/app/{key}"], **TOL)
    # the step matters for these weights: the two paths' trait outputs differ
    app, direct = (
        tensors["output/app/personality_scores"],
        tensors["output/direct/personality_scores"],
    )
    assert (app - direct).abs().max() > 1e-3


def test_the_folders_and_spec_carry_the_authors_settings(imported):
    _, out = imported
    spec = json.loads((out / "fusion" / "pipeline.json").read_text())
    assert spec["encoders"]["face"]["kind"] == "open_clip"
    assert spec["encoders"]["face"]["preprocess"] == "clip_processor"
    assert spec["encoders"]["audio"]["steps"] == "every_frame"
    assert spec["encoders"]["text"]["max_tokens"] == 512
    assert spec["frames"]["n_frames"] == 30
    assert {c["max_steps"] for c in spec["cross"].values()} == {WHOLE_SEQUENCE}
    cfg = json.loads((out / "unimodal" / "scene" / "cross" / "config.json").read_text())
    assert cfg["imported"]["their_classes"] == ["EmotionTransformer", "PersonalityMamba"]
    assert cfg["model"]["cross"]["personality_activation"] == "relu"
    assert cfg["model"]["emotion"]["heads"] == 4  # the app's, shapes cannot tell


def test_the_report_lists_what_was_imported(system, tmp_path, capsys):
    tensors, meta = system
    contents = released(tensors, meta)
    src = write_released(tmp_path / "src", contents)
    rc, out, err = run_import(["--from-dir", str(src), "--out", str(tmp_path / "o")], capsys)
    assert rc == 0, err
    for role, rel in WHERE.items():
        state = contents[role]
        state = state.get("state_dict", state.get("model_state_dict", state))
        assert f"{src / rel} ({len(state)} tensors" in out
    assert "{'config': state dict" not in out and "{'state_dict': state dict" in out
    assert "guide_bank_pkl.embeddings' stored but never read" in out
    assert "final_best_model_uni_mamba.pt: 24 tensors, identical to 'emo_enc.*'" in out
    for folder in ("unimodal/face/cross", "unimodal/audio/cross", "fusion"):
        assert f"-> {folder}: " in out
    assert "EmotionTransformer (postnorm_transformer, 16->8, 2 layer(s), heads 4)" in out


def test_a_stage1_file_that_differs_is_reported_and_the_bridges_copy_used(system, tmp_path, capsys):
    tensors, meta = system
    contents = released(tensors, meta)
    emo = contents["audio.emotion"]["model_state_dict"]
    emo["fc.bias"] = emo["fc.bias"] + 1.0
    src = write_released(tmp_path / "src", contents)
    out = tmp_path / "o"
    rc, report, err = run_import(["--from-dir", str(src), "--out", str(out)], capsys)
    assert rc == 0, err
    assert "1 of 24 tensors differ from 'emo_enc.*'" in report and "(first 'fc.bias')" in report
    got = Predictor(out / "fusion", device="cpu").run_models(_sequences(tensors))
    want = softmax(tensors["output/direct/emotion_logits"].numpy(), float64=True)
    np.testing.assert_allclose(got["probs"], want, **TOL)


def _explicit(root: Path) -> list[str]:
    """The same files named one by one."""
    argv = ["--fusion", str(root / WHERE["fusion"])]
    argv += [a for m in ("face", "body", "scene") for a in (f"--{m}", str(root / WHERE[m]))]
    argv += ["--audio", str(root / WHERE["audio"])]  # its stage-1 files are optional
    argv += [
        "--text",
        *(str(root / WHERE[r]) for r in ("text", "text.emotion", "text.personality")),
    ]
    return argv


def test_a_pickled_model_is_refused_with_a_message(system, tmp_path, capsys):
    tensors, meta = system
    src = write_released(tmp_path / "src", released(tensors, meta))
    torch.save(torch.nn.Linear(2, 2), src / WHERE["face"])  # a whole model object, pickled
    rc, _, err = run_import([*_explicit(src), "--out", str(tmp_path / "o")], capsys)
    assert rc == 1
    assert f"{src / WHERE['face']}: refused: torch.load(weights_only=True) cannot read it" in err
    assert "torch.nn.modules.linear.Linear" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # nothing written


@pytest.mark.parametrize(
    ("role", "old", "new", "named"),
    [
        (
            "body",
            "emotion_to_personality_attn.0.feed_forward.layer_1.weight",
            "emotion_to_personality_attn.0.feed_forward.linear_1.weight",
            "emotion_to_personality_attn.0.feed_forward.linear_1.weight",
        ),
        ("fusion", "per_logit_proj.weight", None, "per_logit_proj.weight"),
        ("text", "per_model.per_proj.0.weight", None, "per_proj.0.weight"),
    ],
)
def test_a_renamed_or_missing_tensor_is_named(system, tmp_path, capsys, role, old, new, named):
    tensors, meta = system
    contents = released(tensors, meta)
    state = contents[role]
    value = state.pop(old)
    if new is not None:
        state[new] = value
    src = write_released(tmp_path / "src", contents)
    rc, _, err = run_import(["--from-dir", str(src), "--out", str(tmp_path / "o")], capsys)
    assert rc == 1
    assert str(src / WHERE[role]) in err and f"'{named}'" in err


def test_the_widths_must_chain(system, tmp_path, capsys):
    tensors, meta = system
    contents = released(tensors, meta)
    contents["fusion"]["projectors.face.0.proj.0.weight"] = torch.zeros(16, 22)
    src = write_released(tmp_path / "src", contents)
    rc, _, err = run_import(["--from-dir", str(src), "--out", str(tmp_path / "o")], capsys)
    assert rc == 1
    assert "'projectors.face.0.proj.0.weight' takes 22-d face features" in err
    assert "the face bridge gives 20" in err


def test_another_modalitys_file_is_caught(system, tmp_path, capsys):
    tensors, meta = system
    contents = released(tensors, meta)
    contents["face"], contents["scene"] = contents["scene"], contents["face"]
    src = write_released(tmp_path / "src", contents)
    rc, _, err = run_import(["--from-dir", str(src), "--out", str(tmp_path / "o")], capsys)
    assert rc == 1
    assert str(src / WHERE["scene"]) in err
    assert "tensor 'emo_proj.0.weight' makes its bridge 10 wide" in err


def test_an_existing_output_is_kept_without_force(imported, capsys):
    src, out = imported
    before = (out / "fusion" / "model.safetensors").read_bytes()
    rc, _, err = run_import(["--from-dir", str(src), "--out", str(out)], capsys)
    assert rc == 1 and "--force" in err
    assert (out / "fusion" / "model.safetensors").read_bytes() == before


# --------------------------------------------------------------------------- on a real video
def _tiny_text_encoder(out: Path, width: int) -> Path:
    """A BERT of `width` with a small word-piece vocabulary, in transformers' format."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    out.mkdir(parents=True)
    words = [
        "[PAD]",
        "[UNK]",
        "[CLS]",
        "[SEP]",
        "[MASK]",
        "i",
        "am",
        "talking",
        "about",
        "my",
        "day",
        "it",
        "was",
        "good",
        "and",
    ]
    (out / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(out / "vocab.txt")).save_pretrained(out)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(words), hidden_size=width, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=2 * width,
                        max_position_embeddings=64)  # fmt: skip
    BertModel(config).eval().save_pretrained(out, safe_serialization=True)
    return out


@pytest.fixture(scope="module")
def their_widths_config(system, tmp_path_factory):
    """A workflow config whose encoders give the parity system's input widths (CLIP 16,
    wav2vec2 20, text 12): tiny random encoders in the real formats, loaded through the real
    code, so their system runs end to end on a video."""
    import yaml

    from mepr.embed.demo_models import build_demo_encoder

    tensors, _ = system
    dims = {m: int(tensors[f"input/{m}/x"].shape[2]) for m in ("face", "audio", "text")}
    root = tmp_path_factory.mktemp("encoders")
    clip = build_demo_encoder("tiny-clip", root / "clip", width=dims["face"])
    wav2vec2 = build_demo_encoder("tiny-wav2vec2", root / "wav2vec2", width=dims["audio"])
    text = _tiny_text_encoder(root / "text", dims["text"])
    image = {"kind": "open_clip", "model": f"local-dir:{clip}", "pretrained": None}
    encoders = {
        **{m: image for m in ("face", "body", "scene")},
        "audio": {"kind": "wav2vec2", "model": str(wav2vec2), "window_s": 0.5},
        "text": {"kind": "hf_text", "model": str(text), "pooling": "token", "max_tokens": 32},
    }
    path = root / "their-widths.yaml"
    path.write_text(yaml.safe_dump({"encoders": encoders, "frames": {"n_frames": 4}}))
    return path


def test_mepr_predict_runs_the_imported_system_on_a_video(
    system, their_widths_config, media, tmp_path, capsys
):
    import shutil

    tensors, meta = system
    src = write_released(tmp_path / "src", released(tensors, meta))
    out = tmp_path / "imported"
    rc, _, err = run_import(
        ["--from-dir", str(src), "--out", str(out), "--config", str(their_widths_config)], capsys
    )
    assert rc == 0, err
    video = tmp_path / "clip.mp4"  # a face, a body and speech (conftest's astronaut clip)
    shutil.copy(media["good"], video)
    video.with_suffix(".txt").write_text("i am talking about my day and it was good")
    pred = tmp_path / "predicted"
    rc = main(["predict", str(video), "--model", str(out / "fusion"), "--out", str(pred),
               "--quiet"])  # fmt: skip
    assert rc == 0, capsys.readouterr().err[-3000:]
    record = json.loads(next(pred.glob("*/prediction.json")).read_text())
    assert record["missing_modalities"] == []  # every one of their five models ran
    probs = np.array(list(record["emotion"]["probabilities"].values()))
    assert probs.shape == (7,) and abs(probs.sum() - 1) < 1e-6
    assert len(record["personality"]["scores"]) == 5
    assert record["model"]["encoders"]["face"] == f"local-dir:{their_widths_config.parent / 'clip'}"
    assert next(pred.glob("*/report.html")).stat().st_size > 0
