"""Model folders (config.json + model.safetensors): one writer, one strict reader for every stage.

Small stage-1 models are built in the test; the reader must refuse a folder of another stage,
weights with a missing or an extra tensor, and a config that is not JSON, each time with a
message that names the folder or file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from mepr import __version__
from mepr.models.checkpoints import CheckpointError, load_model, read_config, save_model
from mepr.models.unimodal import UnimodalConfig, UnimodalModel


def small_model(task: str = "emotion") -> UnimodalModel:
    torch.manual_seed(0)
    cfg = UnimodalConfig(in_dim=6, task=task, encoder="transformer", hidden_dim=8,
                         out_features=8, layers=1, heads=2, dropout=0.0, d_state=4, d_conv=2,
                         expand=2)  # fmt: skip
    return UnimodalModel(cfg)


@pytest.fixture
def folder(tmp_path) -> Path:
    """A stage-1 model folder, as train-unimodal writes it."""
    model = small_model()
    d = tmp_path / "face-emo"
    config = {"stage": "unimodal", "modality": "face", "corpus": "c", "task": "emotion",
              "model": model.cfg.to_dict(), "seed": 0}  # fmt: skip
    save_model(model, d, config)
    return d


def test_saved_folder_reloads_to_the_same_outputs(folder):
    model, cfg = load_model(folder, "unimodal")
    assert cfg["stage"] == "unimodal" and cfg["mepr_version"] == __version__
    assert not model.training
    x, mask = torch.randn(2, 3, 6), torch.ones(2, 3, dtype=torch.bool)
    with torch.no_grad():
        want = small_model().eval()(x, mask)["output"]
        torch.testing.assert_close(model(x, mask)["output"], want)


def test_saving_writes_the_bytes_it_always_wrote(folder, tmp_path):
    """safetensors with one metadata key, then sorted, indented JSON (stable across runs)."""
    model = small_model()
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(tmp_path / "ref.safetensors"), metadata={"format": "pt"})
    assert (folder / "model.safetensors").read_bytes() == (
        tmp_path / "ref.safetensors"
    ).read_bytes()
    cfg = json.loads((folder / "config.json").read_text())
    assert (folder / "config.json").read_text() == json.dumps(cfg, indent=2, sort_keys=True) + "\n"
    assert not list(folder.glob(".*.tmp"))  # no temporary file left behind


def test_a_folder_of_another_stage_is_refused(folder):
    with pytest.raises(CheckpointError, match="expected a stage-2 \\(train-cross\\) one") as e:
        load_model(folder, "cross")
    assert str(folder) in str(e.value) and "'unimodal' model folder" in str(e.value)
    from mepr.train.stages import load_fusion

    with pytest.raises(CheckpointError, match=str(folder)):
        load_fusion(folder)  # training's loaders are the same reader


@pytest.mark.parametrize("change", ["missing", "extra"])
def test_weights_with_a_missing_or_extra_tensor_are_refused(folder, change):
    path = folder / "model.safetensors"
    state = load_file(str(path))
    if change == "missing":
        dropped = sorted(state)[0]
        del state[dropped]
        expected = f"'{dropped}' is missing from the checkpoint"
    else:
        state["surplus.weight"] = torch.zeros(2)
        expected = "the checkpoint has 'surplus.weight', which the config's model lacks"
    save_file(state, str(path), metadata={"format": "pt"})
    with pytest.raises(CheckpointError) as e:
        load_model(folder, "unimodal")
    msg = str(e.value)
    assert str(path) in msg and expected in msg and "1 tensor(s) differ" in msg


def test_unreadable_files_name_the_file(folder):
    (folder / "config.json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="config.json: not valid JSON") as e:
        read_config(folder, "unimodal")
    assert str(folder) in str(e.value)
    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json: no such file"):
        load_model(folder, "unimodal")


def test_a_config_that_builds_no_model_is_refused(folder):
    cfg = json.loads((folder / "config.json").read_text())
    cfg["model"]["unknown_field"] = 1
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="cannot build the model it describes"):
        load_model(folder, "unimodal")
