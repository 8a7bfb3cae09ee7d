"""The authors' released checkpoints as mepr model folders (``mepr import-reference``).

What their app (github.com/LEYA-HSE/SSL-MEPR, branch ``app``, b423b35) loads, and how
(``core/runtime.py`` and ``core/modalities/{video,audio,text}/model_loader.py``):

* fusion: ``best_ep9_emo0.6390_pkl0.8269.pt`` (app.py's default; ``ssl_mepr_ckpt.pt`` in
  the branch), a bare state dict of their multi-task fusion built with ``num_heads=8``,
  ``dropout=0.2``, ``hidden_dim=256`` and ``disable_guide_pkl`` on: its personality guide
  bank is stored but never read.
* video: one bare state dict per modality, their video ``FusionTransformer`` with its two
  frozen stage-1 models inside (``emo_model.*``, ``per_model.*``): face
  ``clip_face_mamba_transformer_fusion_model.pt`` and body
  ``clip_body_mamba_transformer_fusion_model.pt`` (gated emotion + gated personality
  model), scene ``clip_fusion_transformer_transformer_mamba_best_model_dev.pt``
  (transformer emotion + gated personality model).  Widths and depths are in the tensors;
  heads and activations in ``video/config/inference_config_{face,body,scene}.toml``
  (:data:`APP_ARGS`).
* audio: ``best_fusion_overall_mamba.pt`` = ``{'config': {...}, 'state_dict': {...}}``, the
  audio bridge (heads ``config['tr_heads']``) with its stage-1 models under ``emo_enc.*`` /
  ``per_enc.*``; the stage-1 files ``final_best_model_uni_mamba.pt``
  (``{'model_state_dict': ...}``, the classifier) and ``best_mamba_regressor.pth`` (bare,
  the regressor).
* text: ``Mamba_Transformer_bge-small_fusion.pt`` (bare, the text bridge with 4 heads and
  its stage-1 models under ``emo_model.*`` / ``per_model.*``), the stage-1 files
  ``Mamba_bge-small_emotion.pt`` (``{'model_state_dict': ...}`` or bare) and
  ``Transformer_bge-small_personality.pt`` (bare, 8 heads).

The app loads each audio/text stage-1 file into its stage-1 model and then the bridge's
file into the bridge, which overwrites them with the copies it holds: the copies are what
runs, so they are what is imported; a stage-1 file given is only compared with them.

How the app feeds its fusion, one video at a time: each stage-2 model runs on the whole
embedding sequence (CLIP image features of the sampled frames, wav2vec2 frames, bge
tokens); the fusion's features are the step means of the bridge's emotion and personality
outputs, concatenated (width 2 x the bridge's hidden width; body, face, scene, audio, text,
an order the fusion does not depend on); its emotion logits and personality scores are the
stage-2 predictions, except that a modality's scores that all lie in [0, 1] are replaced by
their logits first (:func:`app_personality_inputs`).  mepr's predictor forms the same
features (masked step means) but passes the scores on unchanged.

Everything is loaded with ``torch.load(weights_only=True)``: a file that needs more (a
pickled model object) is refused.  Names are mapped strictly by :mod:`mepr.reference`; any
tensor that does not fit is an error naming the file and the tensor.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mepr.files import sha256_file
from mepr.reference import ReferenceMappingError

MODALITIES = ("face", "body", "scene", "audio", "text")
# role -> the file names their app loads (the first is the app's default)
APP_FILES: dict[str, tuple[str, ...]] = {
    "fusion": ("best_ep9_emo0.6390_pkl0.8269.pt", "ssl_mepr_ckpt.pt"),
    "face": ("clip_face_mamba_transformer_fusion_model.pt",),
    "body": ("clip_body_mamba_transformer_fusion_model.pt",),
    "scene": ("clip_fusion_transformer_transformer_mamba_best_model_dev.pt",),
    "audio": ("best_fusion_overall_mamba.pt",),
    "audio.emotion": ("final_best_model_uni_mamba.pt",),
    "audio.personality": ("best_mamba_regressor.pth",),
    "text": ("Mamba_Transformer_bge-small_fusion.pt",),
    "text.emotion": ("Mamba_bge-small_emotion.pt",),
    "text.personality": ("Transformer_bge-small_personality.pt",),
}
REQUIRED = ("fusion", *MODALITIES)
# Their constructor arguments that the tensors cannot tell, as the app passes them (the
# video .toml files; the text loader, whose bridge keeps its defaults: dropout 0.1, sigmoid).
# Dropout is inert in eval mode but kept for the record.  Audio's bridge reads its file.
APP_ARGS: dict[str, dict[str, dict[str, Any]]] = {
    "face": {
        "emotion": {"num_transformer_heads": 2, "dropout": 0.15},
        "personality": {"num_transformer_heads": 16, "dropout": 0.15, "per_activation": "sigmoid"},
        "cross": {"num_transformer_heads": 2, "dropout": 0.15, "per_activation": "sigmoid"},
    },
    "body": {  # its .toml has no best_per_activation: their loader's default, sigmoid
        "emotion": {"num_transformer_heads": 2, "dropout": 0.15},
        "personality": {"num_transformer_heads": 2, "dropout": 0.15, "per_activation": "sigmoid"},
        "cross": {"num_transformer_heads": 16, "dropout": 0.15, "per_activation": "sigmoid"},
    },
    "scene": {
        "emotion": {"num_transformer_heads": 4, "dropout": 0.1},
        "personality": {"num_transformer_heads": 16, "dropout": 0.1, "per_activation": "relu"},
        "cross": {"num_transformer_heads": 4, "dropout": 0.1, "per_activation": "relu"},
    },
    "text": {
        "emotion": {"dropout": 0.2},
        "personality": {"num_transformer_heads": 8, "dropout": 0.2},
        "cross": {"num_transformer_heads": 4},
    },
    "audio": {
        "emotion": {"dropout": 0.2, "num_classes": 7},
        "personality": {"dropout": 0.2, "num_targets": 5},
    },
}
APP_FUSION = {"num_heads": 8, "dropout": 0.2, "disable_guide_pkl": True}
# the app never subsamples a sequence: mepr's cap on steps is set beyond any real one
WHOLE_SEQUENCE = 1_000_000
_AUDIO_CONFIG_USED = ("hidden_dim", "dropout", "tr_heads", "num_emotions", "num_traits")
_PREFIXES = {"audio": ("emo_enc", "per_enc")}  # video and text: emo_model / per_model


class ReferenceFileError(ValueError):
    """A checkpoint file that is refused before any tensor is looked at."""


# --------------------------------------------------------------------------- files
@dataclass(frozen=True)
class ReferenceFiles:
    """Their checkpoint files by role (a key of :data:`APP_FILES`); stage-1 roles optional."""

    paths: dict[str, Path]

    def __post_init__(self) -> None:
        unknown = sorted(set(self.paths) - set(APP_FILES))
        if unknown:
            raise ReferenceFileError(f"unknown checkpoint roles {unknown}")
        missing = [r for r in REQUIRED if r not in self.paths]
        if missing:
            raise ReferenceFileError(f"no checkpoint given for {', '.join(missing)}")
        for role, p in self.paths.items():
            if not Path(p).is_file():
                raise ReferenceFileError(f"{p}: no such file (the {role} checkpoint)")

    @classmethod
    def find(cls, root: str | Path) -> ReferenceFiles:
        """The files under `root` (any depth) by the names their app loads them by."""
        root = Path(root)
        if not root.is_dir():
            raise ReferenceFileError(f"{root}: no such folder")
        paths: dict[str, Path] = {}
        for role, names in APP_FILES.items():
            hits = sorted(p for n in names for p in root.rglob(n) if p.is_file())
            if len(hits) > 1:
                raise ReferenceFileError(
                    f"several {role} checkpoints under {root} ({', '.join(map(str, hits))}): "
                    f"name one with --{role.split('.')[0]}"
                )
            if hits:
                paths[role] = hits[0]
        missing = [r for r in REQUIRED if r not in paths]
        if missing:
            want = "; ".join(f"{r}: {' or '.join(APP_FILES[r])}" for r in missing)
            raise ReferenceFileError(f"not found under {root}: {want}")
        return cls(paths)


def load_checkpoint(path: str | Path) -> Any:
    """``torch.load(weights_only=True)`` on CPU; anything it refuses is refused here too."""
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(e))
        what = f"it holds a pickled {found.group(1)} object" if found else "it is not plain data"
        raise ReferenceFileError(
            f"{path}: refused: torch.load(weights_only=True) cannot read it ({what}); mepr "
            "does not unpickle arbitrary objects. Save the model's state_dict() instead."
        ) from None
    except Exception as e:  # torch raises several types for files that are not checkpoints
        raise ReferenceFileError(f"{path}: not a PyTorch checkpoint ({type(e).__name__})") from e


def _is_state(obj: Any) -> bool:
    import torch

    return (
        isinstance(obj, Mapping)
        and bool(obj)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


@dataclass
class Loaded:
    """One of their files: its state dict, how it was wrapped, what else it held."""

    role: str
    path: Path
    state: dict[str, Any]
    container: str  # "state dict" | "{'KEY': state dict, ...}"
    extra: dict[str, Any] = field(default_factory=dict)  # the other top-level entries


def read_state(role: str, path: str | Path) -> Loaded:
    """A file that is a state dict, or a dict holding one under model_state_dict/state_dict."""
    path = Path(path)
    obj = load_checkpoint(path)
    if _is_state(obj):
        return Loaded(role, path, dict(obj), "state dict")
    if isinstance(obj, Mapping):
        for key in ("model_state_dict", "state_dict"):
            if _is_state(obj.get(key)):
                rest = {k: v for k, v in obj.items() if k != key}
                return Loaded(role, path, dict(obj[key]), f"{{'{key}': state dict, ...}}", rest)
        keys = sorted(map(str, obj))[:8]
        raise ReferenceFileError(f"{path}: a dict without a state dict (keys {keys})")
    raise ReferenceFileError(f"{path}: holds a {type(obj).__name__}, not a state dict")


def app_personality_inputs(scores):
    """The app's personality-score step before its fusion, per video and modality (`scores`
    (B, 5), one row per video): a row whose values all lie in [0, 1] is replaced by its
    logits, clamped 1e-4 away from 0 and 1; other rows pass unchanged."""
    import torch

    inside = ((scores >= 0) & (scores <= 1)).all(dim=-1, keepdim=True)
    return torch.where(inside, torch.logit(scores.clamp(1e-4, 1 - 1e-4)), scores)


# --------------------------------------------------------------------------- models
def _stage1_class(state: Mapping[str, Any], prefix: str, task: str, what: str) -> str:
    enc, base = (
        ("emotion_encoder", "Emotion")
        if task == "emotion"
        else ("personality_encoder", "Personality")
    )
    if f"{prefix}.{enc}.0.self_attention.in_proj_weight" in state:
        return f"{base}Transformer"
    if f"{prefix}.{enc}.0.in_proj.weight" in state:
        return f"{base}Mamba"
    raise ReferenceMappingError(
        f"{what}: no tensor '{prefix}.{enc}.0.in_proj.weight' (gated) or "
        f"'{prefix}.{enc}.0.self_attention.in_proj_weight' (transformer): cannot tell their "
        f"stage-1 {task} model"
    )


@dataclass
class ImportedCross:
    modality: str
    model: Any  # mepr CrossDomainModel, eval mode
    config: dict[str, Any]  # its config.json
    classes: tuple[str, str]  # their stage-1 classes
    notes: list[str]


def _audio_args(loaded: Loaded) -> dict[str, Any]:
    cfg = loaded.extra.get("config")
    if not isinstance(cfg, Mapping):
        raise ReferenceFileError(f"{loaded.path}: no 'config' entry (their audio bridge's)")
    missing = [k for k in ("tr_heads", "dropout", "hidden_dim") if k not in cfg]
    if missing:
        raise ReferenceFileError(f"{loaded.path}: its 'config' lacks {missing}")
    for key, want in (("num_emotions", 7), ("num_traits", 5)):
        if cfg.get(key, want) != want:
            raise ReferenceMappingError(
                f"{loaded.path}: config {key}={cfg[key]}, mepr predicts {want}"
            )
    width = (
        int(loaded.state["emo_proj.0.weight"].shape[0])
        if "emo_proj.0.weight" in loaded.state
        else None
    )
    if width is not None and int(cfg["hidden_dim"]) != width:
        raise ReferenceMappingError(
            f"{loaded.path}: tensor 'emo_proj.0.weight' is {width} wide, config hidden_dim="
            f"{cfg['hidden_dim']}"
        )
    return dict(cfg)


def import_cross(modality: str, loaded: Loaded, stage1: dict[str, Loaded], max_steps: int):
    """Their stage-2 file (+ optional stage-1 files) -> :class:`ImportedCross`."""
    from mepr.reference.unimodal import (
        ReferenceCrossArgs,
        ReferenceUnimodalArgs,
        load_reference_cross,
    )

    family = modality if modality in ("audio", "text") else "video"
    state, args = loaded.state, APP_ARGS[modality]
    prefixes = _PREFIXES.get(modality, ("emo_model", "per_model"))
    what = f"{loaded.path}"
    notes: list[str] = []
    try:
        if family == "audio":
            classes = ("CustomMambaClassifier", "CustomMambaRegressor")
            bridge = _audio_args(loaded)
            ignored = sorted(set(bridge) - set(_AUDIO_CONFIG_USED))
            if ignored:
                notes.append(f"config entries not needed to run it, ignored: {ignored}")
        else:
            classes = (
                _stage1_class(state, prefixes[0], "emotion", what),
                _stage1_class(state, prefixes[1], "personality", what),
            )
            bridge = args["cross"]
        _check_heads(state, prefixes, classes, args, bridge)
        emo = ReferenceUnimodalArgs.from_kwargs(family, classes[0], args["emotion"])
        per = ReferenceUnimodalArgs.from_kwargs(family, classes[1], args["personality"])
        model = load_reference_cross(ReferenceCrossArgs.from_kwargs(emo, per, bridge), state)
    except ReferenceMappingError as e:
        raise ReferenceMappingError(f"{loaded.path}: {e}") from None
    other = sorted(set(loaded.extra) - {"config"})
    if other:
        notes.append(f"entries besides the weights, ignored: {other}")
    for task, prefix in zip(("emotion", "personality"), prefixes, strict=True):
        if task in stage1:
            notes.append(_compare_stage1(stage1[task], state, prefix, loaded.path))
    config = {
        "stage": "cross",
        "modality": modality,
        "model": {
            "emotion": model.emotion_base.cfg.to_dict(),
            "personality": model.personality_base.cfg.to_dict(),
            "cross": model.cfg.to_dict(),
        },
        "params": {"max_steps": int(max_steps)},
        "imported": _provenance([loaded, *stage1.values()], classes, bridge),
    }
    return ImportedCross(modality, model, config, classes, notes)


def _check_heads(state, prefixes, classes, args, bridge) -> None:
    """Each attention width must split into the app's heads (else: another modality's file?)."""
    heads = int(bridge.get("tr_heads", bridge.get("num_transformer_heads", 4)))
    checks = [("emo_proj.0.weight", heads, "its bridge")]
    for task, prefix, cls in zip(("emotion", "personality"), prefixes, classes, strict=True):
        if cls.endswith("Transformer"):
            proj = "emo_proj" if task == "emotion" else "per_proj"
            n = int(args[task].get("num_transformer_heads", 4))
            checks.append((f"{prefix}.{proj}.0.weight", n, f"its stage-1 {task} model"))
    for name, n, what in checks:
        if name in state and int(state[name].shape[0]) % n:
            raise ReferenceMappingError(
                f"tensor '{name}' makes {what} {int(state[name].shape[0])} wide, which the "
                f"app's {n} attention heads do not divide: is it another modality's file?"
            )


def _compare_stage1(s1: Loaded, state: Mapping[str, Any], prefix: str, bridge: Path) -> str:
    """A stage-1 file against the copy inside the bridge's file (the copy is what runs)."""
    import torch

    inner = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(f"{prefix}.")}
    for name in sorted(set(inner) ^ set(s1.state)):
        where = bridge.name if name in inner else s1.path.name
        raise ReferenceMappingError(
            f"{s1.path}: tensor '{name}' is only in {where}: it is not the stage-1 model "
            f"inside {bridge.name} ('{prefix}.*')"
        )
    for name in sorted(inner):
        if tuple(inner[name].shape) != tuple(s1.state[name].shape):
            raise ReferenceMappingError(
                f"{s1.path}: tensor '{name}' is {list(s1.state[name].shape)}, the copy inside "
                f"{bridge.name} is {list(inner[name].shape)}"
            )
    differ = [n for n in sorted(inner) if not torch.equal(inner[n], s1.state[n])]
    if not differ:
        return (
            f"{s1.path.name}: {len(s1.state)} tensors, identical to '{prefix}.*' in {bridge.name}"
        )
    return (
        f"{s1.path.name}: {len(differ)} of {len(s1.state)} tensors differ from '{prefix}.*' in "
        f"{bridge.name} (first '{differ[0]}'); the copy inside {bridge.name} is used, as the "
        "app's loading order does"
    )


def _provenance(files: list[Loaded], classes, args) -> dict[str, Any]:
    return {
        "from": "github.com/LEYA-HSE/SSL-MEPR (app b423b35) checkpoints",
        "files": {f.path.name: sha256_file(f.path) for f in files},
        "their_classes": list(classes),
        "their_arguments": dict(args),
    }


def import_fusion(loaded: Loaded, cross: dict[str, ImportedCross]):
    """Their fusion file -> (mepr FusionModel in eval mode, its config.json, notes)."""
    from mepr.models.fusion import FusionModel
    from mepr.reference.fusion import ReferenceFusionArgs, map_reference_fusion

    try:
        mapped = map_reference_fusion(loaded.state, ReferenceFusionArgs(**APP_FUSION))
    except ReferenceMappingError as e:
        raise ReferenceMappingError(f"{loaded.path}: {e}") from None
    cfg = mapped.config
    for m, width in zip(cfg.modalities, cfg.input_dims, strict=True):
        if m not in cross:
            raise ReferenceMappingError(f"{loaded.path}: fuses '{m}', which has no stage-2 model")
        gives = 2 * cross[m].model.cfg.hidden_dim
        if gives != width:
            raise ReferenceMappingError(
                f"{loaded.path}: tensor 'projectors.{m}.0.proj.0.weight' takes {width}-d {m} "
                f"features, the {m} bridge gives {gives} (2 x its hidden width)"
            )
    model = FusionModel(cfg)
    model.load_state_dict(mapped.state_dict, strict=True)
    notes = [
        f"'{n}' stored but never read by the app (disable_guide_pkl): ignored"
        for n in mapped.unused
    ]
    if loaded.extra:
        notes.append(f"entries besides the weights, ignored: {sorted(loaded.extra)}")
    config = {
        "stage": "fusion",
        "modalities": list(cfg.modalities),
        "model": cfg.to_dict(),
        "imported": _provenance([loaded], ("MultiModalFusionModelWithAblation",), APP_FUSION),
    }
    return model.eval(), config, notes
