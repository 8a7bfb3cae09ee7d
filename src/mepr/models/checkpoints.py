"""Model folders: the one writer and reader of ``config.json`` + ``model.safetensors``.

Every stage saves its best weights here (:func:`save_model`) and every consumer (stage 2
reading stage 1, stage 3 reading stage 2, ``mepr predict`` reading stages 2 and 3) loads them
here (:func:`load_model`), so all of them apply the same checks:

* ``config.json`` must exist, be valid JSON and name the expected ``stage``;
* the model it describes must be buildable;
* ``model.safetensors`` must hold exactly the tensors of that model, with the same shapes
  (no missing, no extra tensor).

Any problem is one :class:`CheckpointError` naming the folder or file.  Weights are never
unpickled: safetensors only.  torch is imported inside the functions, so reading a config
(:func:`read_config`, e.g. for the pipeline spec) stays light.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mepr import __version__
from mepr.files import atomic_path, write_json_atomic

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
STAGES = {
    "unimodal": "stage-1 (train-unimodal)",
    "cross": "stage-2 (train-cross)",
    "fusion": "stage-3 (train-fusion)",
    "fusion_single": "stage-3 single-task (train-fusion-single)",
}
_SHOWN_PROBLEMS = 3  # tensor mismatches spelled out in an error; the rest are counted


class CheckpointError(ValueError):
    """A model folder that cannot be loaded as the model it should hold."""


# --------------------------------------------------------------------------- saving
def save_model(model, directory: str | Path, config: dict[str, Any]) -> None:
    """Write `model`'s weights and `config` (+ the mepr version) into `directory`.

    Both files go through :func:`mepr.files.atomic_path`: a reader never sees half a file.
    """
    from safetensors.torch import save_file

    from mepr.train.loop import to_jsonable  # JSON types for numpy/torch values

    d = Path(directory)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(d / WEIGHTS_FILE) as tmp:
        # one metadata key only: safetensors does not keep the order of several (byte-identical)
        save_file(state, str(tmp), metadata={"format": "pt"})
    write_json_atomic(d / CONFIG_FILE, to_jsonable({**config, "mepr_version": __version__}))


# --------------------------------------------------------------------------- reading
def read_config(directory: str | Path, stage: str) -> dict[str, Any]:
    """A model folder's config.json, checked to come from `stage` (a key of STAGES)."""
    d = Path(directory)
    path = d / CONFIG_FILE
    if not path.exists():
        raise CheckpointError(f"{path}: no such file (the {STAGES[stage]} model's config)")
    try:
        cfg = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(cfg, dict):
        raise CheckpointError(f"{path}: not a model config (a JSON object)")
    if cfg.get("stage") != stage:
        raise CheckpointError(
            f"{d}: a '{cfg.get('stage')}' model folder, expected a {STAGES[stage]} one"
        )
    return cfg


def build_model(stage: str, cfg: dict[str, Any]):
    """The (untrained) model a `stage` folder's config.json describes."""
    from mepr.models.fusion import FusionConfig, FusionModel
    from mepr.models.fusion_single import SingleTaskFusionConfig, SingleTaskFusionModel
    from mepr.models.unimodal import CrossConfig, CrossDomainModel, UnimodalConfig, UnimodalModel

    mc = cfg["model"]
    if stage == "unimodal":
        return UnimodalModel(UnimodalConfig(**mc))
    if stage == "cross":
        return CrossDomainModel(
            UnimodalModel(UnimodalConfig(**mc["emotion"])),
            UnimodalModel(UnimodalConfig(**mc["personality"])),
            CrossConfig(**mc["cross"]),
        )
    if stage == "fusion":
        return FusionModel(FusionConfig(**mc))
    if stage == "fusion_single":
        return SingleTaskFusionModel(SingleTaskFusionConfig(**mc))
    raise ValueError(f"unknown model stage '{stage}'")


def _tensor_problems(expected: dict, state: dict) -> list[str]:
    """How the tensors of a checkpoint differ from those of the model (empty: they fit)."""
    problems = []
    for key in sorted(set(expected) | set(state)):
        if key not in state:
            problems.append(f"'{key}' is missing from the checkpoint")
        elif key not in expected:
            problems.append(f"the checkpoint has '{key}', which the config's model lacks")
        elif tuple(state[key].shape) != tuple(expected[key].shape):
            problems.append(
                f"'{key}' is {list(state[key].shape)} in the checkpoint but "
                f"{list(expected[key].shape)} in the model the config builds"
            )
    return problems


def load_weights(model, directory: str | Path):
    """Load `directory`'s model.safetensors into `model` (strict); returns it in eval mode."""
    from safetensors.torch import load_file

    d = Path(directory)
    path = d / WEIGHTS_FILE
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
    problems = _tensor_problems(model.state_dict(), state)
    if problems:
        shown = "; ".join(problems[:_SHOWN_PROBLEMS])
        if len(problems) > _SHOWN_PROBLEMS:
            shown += f"; and {len(problems) - _SHOWN_PROBLEMS} more"
        raise CheckpointError(
            f"{path} was saved from a model built with a different config than "
            f"{d / CONFIG_FILE} ({len(problems)} tensor(s) differ: {shown}). Use the "
            "config.json saved with these weights, or retrain."
        )
    model.load_state_dict(state, strict=True)
    return model.eval()


def load_model(directory: str | Path, stage: str, device="cpu") -> tuple[Any, dict[str, Any]]:
    """(model in eval mode on `device`, its config.json) from a `stage` model folder."""
    d = Path(directory)
    cfg = read_config(d, stage)
    try:
        model = build_model(stage, cfg)
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"{d / CONFIG_FILE}: cannot build the model it describes ({e}); was it "
            "written by another mepr version?"
        ) from e
    return load_weights(model, d).to(device), cfg
