"""CLIP image features as the reference computes them: transformers' CLIPModel of
openai/clip-vit-base-patch32 (QuickGELU) behind CLIPProcessor.

A tiny open_clip architecture with random weights stands in for ViT-B-32 (no hub here): its
weights are served as the pretrained tag `openai` (and as a GELU-trained tag) through the
model store, and loaded by `ClipImageEncoder` exactly as the paper config's ViT-B-32 +
`openai` is. The same weights, renamed, go into a transformers `CLIPModel` with
`hidden_act="quick_gelu"`. The reference pins transformers 4.52.4, whose CLIPProcessor is the
slow (PIL) one; the installed transformers' `CLIPImageProcessorPil` gives bit-identical
pixel values on the images below (checked once against 4.52.4 outside the repository), so it
stands in for it.
"""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from mepr.config import EncoderParams
from mepr.embed import fetch as mf
from mepr.embed import store as ms
from mepr.embed.image import ClipImageEncoder, quick_gelu_for, tower_activation

NAME = "mepr-parity-clip"
WIDTH, LAYERS, HEADS, EMBED = 64, 2, 2, 48
TINY = {
    "embed_dim": EMBED,
    "vision_cfg": {
        "image_size": 224,
        "layers": LAYERS,
        "width": WIDTH,
        "head_width": 32,
        "patch_size": 32,
    },  # fmt: skip
    "text_cfg": {"context_length": 16, "vocab_size": 1000, "width": 32, "heads": 2, "layers": 1},
}
# openai/clip-vit-base-patch32's preprocessor_config.json
PROCESSOR = {
    "size": 224,
    "crop_size": 224,
    "resample": 3,  # bicubic
    "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711],
}


def real_images() -> dict[str, np.ndarray]:
    """Real photos cut to the aspect ratios frames and boxes have (RGB uint8)."""
    ast, cof, cat, roc = (skimage.data.astronaut(), skimage.data.coffee(),
                          skimage.data.chelsea(), skimage.data.rocket())  # fmt: skip
    return {
        "square 512x512": ast,
        "3:2 400x600": cof,
        "640x427 (odd excess after resize)": roc,
        "16:9 337x600": cof[30:367],
        "portrait 427x241": roc[:, 200:441],
        "face box 137x121": ast[40:177, 170:291],
        "box 97x150": cat[60:157, 150:300],
        "crop-sized 224x224": cat[20:244, 100:324],
    }


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A model store holding the tiny weights under the tags `openai` (trained with
    QuickGELU, as open_clip records every openai tag) and `gelu_tag` (trained with GELU)."""
    import open_clip
    from open_clip import pretrained
    from safetensors.torch import save_file

    root = tmp_path_factory.mktemp("store") / "models"
    weights = root / "open_clip" / "tiny.safetensors"
    weights.parent.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(open_clip.factory._MODEL_CONFIGS, NAME, TINY)
        torch.manual_seed(0)
        model = open_clip.create_model(NAME)
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(weights))
        tags = {
            "openai": pretrained._pcfg(file=str(weights), quick_gelu=True),
            "gelu_tag": pretrained._pcfg(file=str(weights)),
        }
        mp.setitem(pretrained._PRETRAINED, NAME, tags)
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # fetching refuses offline
            mp.delenv(var, raising=False)
        for tag in tags:
            mf.fetch(ms.Entry("open_clip", NAME, pretrained=tag), root)
        yield root


def _encoder(store, tag: str, **kw) -> ClipImageEncoder:
    params = EncoderParams(kind="open_clip", model=NAME, pretrained=tag, device="cpu", **kw)
    return ClipImageEncoder(params, store=store)


def _hf_clip(state: dict[str, torch.Tensor]):
    """transformers' CLIPModel (QuickGELU) carrying the open_clip image tower's weights."""
    from transformers import CLIPConfig, CLIPModel

    vision = {"hidden_size": WIDTH, "intermediate_size": 4 * WIDTH, "num_hidden_layers": LAYERS,
              "num_attention_heads": HEADS, "image_size": 224, "patch_size": 32,
              "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5}  # fmt: skip
    text = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
            "num_attention_heads": 2, "vocab_size": 1000, "max_position_embeddings": 16,
            "bos_token_id": 0, "eos_token_id": 1}  # fmt: skip
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=EMBED))
    v = {k.removeprefix("visual."): t for k, t in state.items() if k.startswith("visual.")}
    hf = {
        "vision_model.embeddings.class_embedding": v["class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": v["conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": v["positional_embedding"],
        "visual_projection.weight": v["proj"].T,  # open_clip: x @ proj; HF: Linear
    }
    for ours, theirs in (("ln_pre", "pre_layrnorm"), ("ln_post", "post_layernorm")):
        for p in ("weight", "bias"):
            hf[f"vision_model.{theirs}.{p}"] = v[f"{ours}.{p}"]
    for i in range(LAYERS):
        src, dst = f"transformer.resblocks.{i}.", f"vision_model.encoder.layers.{i}."
        for p in ("weight", "bias"):
            q, k, val = v[f"{src}attn.in_proj_{p}"].chunk(3)  # packed q, k, v
            hf |= {f"{dst}self_attn.q_proj.{p}": q, f"{dst}self_attn.k_proj.{p}": k,
                   f"{dst}self_attn.v_proj.{p}": val}  # fmt: skip
            for ours, theirs in (("attn.out_proj", "self_attn.out_proj"), ("ln_1", "layer_norm1"),
                                 ("ln_2", "layer_norm2"), ("mlp.c_fc", "mlp.fc1"),
                                 ("mlp.c_proj", "mlp.fc2")):  # fmt: skip
                hf[f"{dst}{theirs}.{p}"] = v[f"{src}{ours}.{p}"]
    missing, unexpected = model.load_state_dict(hf, strict=False)
    assert not unexpected
    assert all(k.startswith(("text_", "logit_scale")) for k in missing), missing
    return model.eval()


def _hf_features(model, pixels: torch.Tensor) -> np.ndarray:
    with torch.inference_mode():
        out = model.get_image_features(pixel_values=pixels)
    out = getattr(out, "pooler_output", out)  # transformers 5: an output object
    return out.numpy()


def _processor():
    from transformers import CLIPImageProcessorPil

    return CLIPImageProcessorPil(**PROCESSOR)


def test_openai_weights_get_quick_gelu_other_weights_gelu(store):
    openai, other = _encoder(store, "openai"), _encoder(store, "gelu_tag")
    assert tower_activation(openai.model.visual) == "quick_gelu"
    assert openai.identity()["activation"] == "quick_gelu"
    assert tower_activation(other.model.visual) == "gelu"
    # the option overrides what the weights' origin says
    forced = _encoder(store, "openai", activation="gelu")
    assert tower_activation(forced.model.visual) == "gelu"
    assert tower_activation(_encoder(store, "gelu_tag", activation="quick_gelu").model.visual) == (
        "quick_gelu"
    )


@pytest.mark.parametrize(
    ("model", "pretrained", "quick"),
    [
        ("ViT-B-32", "openai", True),  # the paper's encoder: open_clip's config says GELU
        ("ViT-L-14", "OpenAI", True),  # any model name; tags are case-insensitive
        ("ViT-B-32", "laion400m_e32", True),  # open_clip lists it as trained with QuickGELU
        ("ViT-B-32", "laion2b_s34b_b79k", False),
        ("hf-hub:timm/vit_base_patch32_clip_224.openai", None, True),
        ("hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", None, False),
        ("local-dir:/models/vit_base_patch32_clip_224.openai", None, True),
        ("demo:tiny-clip", None, False),  # the demo's encoder: unchanged
        ("ViT-B-32", None, False),  # random weights
    ],
)
def test_which_weights_count_as_quick_gelu(model, pretrained, quick):
    assert (
        quick_gelu_for(EncoderParams(kind="open_clip", model=model, pretrained=pretrained)) is quick
    )


def test_image_features_are_transformers_clipmodels(store):
    """(b) the QuickGELU build equals CLIPModel within 1e-4 on the same pixels, and end to end
    (raw images -> clip_processor preprocessing -> features) equals CLIPProcessor ->
    CLIPModel.get_image_features; (c) the GELU build of the same weights does not."""
    from safetensors.torch import load_file

    hf = _hf_clip(load_file(str(store / "open_clip" / "tiny.safetensors")))
    ours = _encoder(store, "openai", preprocess="clip_processor")
    gelu = _encoder(store, "gelu_tag", preprocess="clip_processor")
    images = list(real_images().values())
    pixels = ours.preprocess_batch(images)
    theirs = _hf_features(hf, pixels)
    same_pixels = np.abs(ours.forward(pixels) - theirs).max()
    reference = _hf_features(hf, torch.from_numpy(_processor()(images, return_tensors="np")["pixel_values"]))  # fmt: skip
    end_to_end = np.abs(ours.encode(images) - reference).max()
    gelu_off = np.abs(gelu.encode(images) - reference).max()
    print(
        f"max |diff|: same pixels {same_pixels:.2e}, end to end {end_to_end:.2e}, GELU {gelu_off:.2e}"
    )
    assert same_pixels < 1e-4 and end_to_end < 1e-4
    assert gelu_off > 10 * 1e-4  # random weights: a real tower's MLPs would differ far more


def test_clip_processor_preprocessing_is_clipprocessors(store):
    """open_clip's transform is CLIPProcessor's but for the centre crop's rounding (a pixel
    off where the resized long side exceeds 224 by 3 mod 4); `clip_processor` crops at
    CLIPProcessor's floor offsets, on the PIL path (images to resize) and on the fast path
    (images already 224 on the short side) alike."""
    processor = _processor()
    default = _encoder(store, "openai")
    floor = _encoder(store, "openai", preprocess="clip_processor")
    for name, image in real_images().items():
        want = processor(image, return_tensors="np")["pixel_values"][0]
        assert np.abs(floor.preprocess_batch([image])[0].numpy() - want).max() < 1e-5, name
        off = np.abs(default.preprocess_batch([image])[0].numpy() - want).max()
        assert (off > 1.0) if name.startswith("640x427") else (off < 1e-5), name
    # short side already 224 (the crops mepr stores): the crop-only path, floor vs round
    wide = skimage.data.rocket()[:224, :299]  # offset 37.5: round (half to even) 38, floor 37
    want = processor(wide, return_tensors="np")["pixel_values"][0]
    assert floor.crop_batch([wide]) is not None  # the crop-only path, not PIL
    assert np.abs(floor.preprocess_batch([wide])[0].numpy() - want).max() < 1e-5
    assert np.abs(default.preprocess_batch([wide])[0].numpy() - want).max() > 1.0
