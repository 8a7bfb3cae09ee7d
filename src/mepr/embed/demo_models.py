"""Tiny randomly initialised encoders for the offline demo.

They are built from the real libraries' configs and saved in the real formats, so the demo
loads them through exactly the code path the paper setup uses (open_clip local-dir,
transformers from_pretrained). Their embeddings are random projections, not CLIP/Wav2Vec2
semantics: demo numbers say the pipeline works, never what the paper models achieve.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import torch

TINY_CLIP = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 224, "layers": 2, "width": 64, "head_width": 32, "patch_size": 32},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 1},
}


def _build_tiny_clip(out: Path, width: int | None = None) -> None:
    import open_clip
    from safetensors.torch import save_file

    cfg = {**TINY_CLIP, "embed_dim": width or TINY_CLIP["embed_dim"]}
    name = f"mepr-tiny-clip-{cfg['embed_dim']}"
    open_clip.factory._MODEL_CONFIGS[name] = cfg  # register the config for create_model
    model = open_clip.create_model(name, pretrained=None)
    (out / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": cfg, "preprocess_cfg": {}}, indent=2)
    )
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / "open_clip_model.safetensors"))


def _build_tiny_wav2vec2(out: Path, width: int | None = None) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    config = Wav2Vec2Config(
        hidden_size=width or 64,  # 4 attention heads and 4 position groups: a multiple of 4
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        # the architecture of wav2vec2-large-robust (the paper's audio encoder): layer norm in
        # the feature encoder, so padded batches with an attention mask are exact
        feat_extract_norm="layer",
        do_stable_layer_norm=True,
        conv_bias=True,
    )
    Wav2Vec2Model(config).save_pretrained(out, safe_serialization=True)
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
        return_attention_mask=True,
    ).save_pretrained(out)  # fmt: skip


BUILDERS = {"tiny-clip": _build_tiny_clip, "tiny-wav2vec2": _build_tiny_wav2vec2}


def build_demo_encoder(
    name: str, out_dir: str | Path, seed: int = 0, width: int | None = None
) -> Path:
    """Build `name` into out_dir atomically (a half-built folder never looks finished).
    `width`: the embedding width, where not the demo's 64 (tests that feed models trained
    at other widths)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown demo encoder '{name}', known: {sorted(BUILDERS)}")
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        torch.manual_seed(seed)
        BUILDERS[name](tmp, width)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
