"""Shapes, masking and ablation switches of the stage 1-3 models; the selective scan."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from mepr.config import TrainParams, pick
from mepr.models.encoders import (
    ENCODERS,
    MambaMixer,
    build_encoder,
    masked_mean,
    selective_scan,
)
from mepr.models.fusion import FusionConfig, FusionModel
from mepr.models.reference_layers import GatedMLPBlock, PostNormBlock
from mepr.models.unimodal import CrossConfig, CrossDomainModel, UnimodalConfig, UnimodalModel

# Model configs have no defaults of their own: the tests build them as training does, from
# the train section's (schema-checked) defaults.
DEFAULTS = TrainParams()


def unimodal_cfg(**given) -> UnimodalConfig:
    return pick(UnimodalConfig, DEFAULTS, DEFAULTS.mamba, **given)


def cross_cfg(**given) -> CrossConfig:
    return pick(CrossConfig, DEFAULTS.cross, DEFAULTS, **given)


def fusion_cfg(**given) -> FusionConfig:
    return pick(FusionConfig, DEFAULTS.fusion, DEFAULTS, **given)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _batch(b=4, t=7, d=12):
    x = torch.randn(b, t, d)
    mask = torch.ones(b, t, dtype=torch.bool)
    mask[1, 4:] = False  # padded tail
    mask[2] = False  # video missing from the modality
    mask[3, 2] = False  # a frame without a face, mid-sequence
    mask[3, 5] = False
    return x, mask


# --------------------------------------------------------------------------- selective scan
def scan_step_by_step(u, delta, A, B, C, D, z, delta_bias):
    """Textbook recurrence, one step at a time (the reference for the chunked scan)."""
    delta = F.softplus(delta + delta_bias[:, None])
    b, d, length = u.shape
    h = torch.zeros(b, d, A.shape[1], dtype=u.dtype)
    ys = []
    for t in range(length):
        decay = torch.exp(delta[:, :, t, None] * A)  # (b, d, n)
        h = decay * h + delta[:, :, t, None] * B[:, None, :, t] * u[:, :, t, None]
        ys.append((h * C[:, None, :, t]).sum(-1) + D * u[:, :, t])
    return torch.stack(ys, dim=-1) * F.silu(z)


@pytest.mark.parametrize(
    "length,chunk", [(1, None), (9, None), (37, None), (37, 8), (37, 5), (40, 16)]
)
def test_selective_scan_matches_recurrence(length, chunk):
    b, d, n = 2, 6, 4
    g = torch.Generator().manual_seed(length)
    u = torch.randn(b, d, length, generator=g, dtype=torch.float64)
    delta = torch.randn(b, d, length, generator=g, dtype=torch.float64)
    A = -torch.rand(d, n, generator=g, dtype=torch.float64) * 3
    B = torch.randn(b, n, length, generator=g, dtype=torch.float64)
    C = torch.randn(b, n, length, generator=g, dtype=torch.float64)
    D = torch.randn(d, generator=g, dtype=torch.float64)
    z = torch.randn(b, d, length, generator=g, dtype=torch.float64)
    bias = torch.randn(d, generator=g, dtype=torch.float64)
    ref = scan_step_by_step(u, delta, A, B, C, D, z, bias)
    got = selective_scan(
        u, delta, A, B, C, D, z=z, delta_bias=bias, delta_softplus=True, chunk_size=chunk
    )
    assert got.dtype == u.dtype
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-5)


def test_selective_scan_gradients_match_recurrence():
    b, d, n, length = 1, 3, 2, 11
    args = [
        torch.randn(b, d, length, dtype=torch.float64),
        torch.randn(b, d, length, dtype=torch.float64),
        -torch.rand(d, n, dtype=torch.float64),
        torch.randn(b, n, length, dtype=torch.float64),
        torch.randn(b, n, length, dtype=torch.float64),
        torch.randn(d, dtype=torch.float64),
        torch.randn(b, d, length, dtype=torch.float64),
        torch.randn(d, dtype=torch.float64),
    ]
    a1 = [a.clone().requires_grad_() for a in args]
    a2 = [a.clone().requires_grad_() for a in args]
    scan_step_by_step(*a1).sum().backward()
    u, de, A, B, C, D, z, bias = a2
    selective_scan(
        u, de, A, B, C, D, z=z, delta_bias=bias, delta_softplus=True, chunk_size=4
    ).sum().backward()
    for x, y in zip(a1, a2, strict=True):
        assert torch.isfinite(y.grad).all()
        torch.testing.assert_close(y.grad, x.grad, rtol=1e-6, atol=1e-6)


def test_mamba_mixer_has_mamba_ssm_parameter_layout():
    m = MambaMixer(d_model=40, d_state=8, d_conv=4, expand=2)
    d_inner, dt_rank = 80, math.ceil(40 / 16)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {
        "A_log": (d_inner, 8),
        "D": (d_inner,),
        "in_proj.weight": (2 * d_inner, 40),
        "conv1d.weight": (d_inner, 1, 4),
        "conv1d.bias": (d_inner,),
        "x_proj.weight": (dt_rank + 16, d_inner),
        "dt_proj.weight": (d_inner, dt_rank),
        "dt_proj.bias": (d_inner,),
        "out_proj.weight": (40, d_inner),
    }
    # A = -exp(A_log) starts at -(1..d_state); Δ = softplus(bias) starts in [1e-3, 0.1]
    torch.testing.assert_close(-torch.exp(m.A_log[0]), -torch.arange(1.0, 9.0))
    dt = F.softplus(m.dt_proj.bias.detach())
    assert float(dt.min()) >= 1e-4 - 1e-7 and float(dt.max()) <= 0.1 + 1e-6


def test_mamba_masked_steps_are_transparent():
    m = MambaMixer(d_model=8, d_state=4).eval()
    x = torch.randn(1, 6, 8)
    mask = torch.tensor([[True, True, False, False, True, True]])
    y = m(x, mask)
    x2 = x.clone()
    x2[:, 2:4] = 100.0  # garbage in the masked steps
    torch.testing.assert_close(m(x2, mask)[:, mask[0]], y[:, mask[0]])


# --------------------------------------------------------------------------- encoders
@pytest.mark.parametrize("name", ENCODERS)
def test_encoder_shapes_and_masking(name):
    enc = build_encoder(name, 16, layers=2, heads=4, dropout=0.0, d_state=4, block_width=8).eval()
    x, mask = _batch(d=16)
    y = enc(x, mask)
    assert y.shape == x.shape and torch.isfinite(y).all()
    x2 = x.clone()
    x2[~mask] = 50.0  # values at masked steps must not leak into valid steps
    torch.testing.assert_close(enc(x2, mask)[mask], y[mask])
    pooled = masked_mean(y, mask)
    assert pooled.shape == (4, 16)
    assert torch.all(pooled[2] == 0)  # fully masked row pools to zeros


def test_unknown_encoder_is_refused():
    with pytest.raises(ValueError, match="unknown temporal encoder"):
        build_encoder("lstm", 8)


def test_gated_mlp_is_the_authors_position_wise_block():
    block = GatedMLPBlock(6, 4, dropout=0.0).eval()
    x = torch.randn(2, 5, 6)
    with torch.no_grad():
        h = block.in_proj(x)
        inner = F.relu(h + block.gate_b(h) + block.gate_c(h))
        want = F.layer_norm(x + block.out_proj(inner), (6,), block.norm.weight, block.norm.bias)
        torch.testing.assert_close(block(x), want)
        # no mixing across time: reversing the steps reverses the output
        enc = build_encoder("gated_mlp", 6, layers=2, block_width=4, dropout=0.0).eval()
        mask = torch.ones(2, 5, dtype=torch.bool)
        torch.testing.assert_close(enc(x.flip(1), mask), enc(x, mask).flip(1))


def test_postnorm_block_trains_with_dropout():
    """Training mode: their dropout sits on the skip inputs and the position encoding."""
    block = PostNormBlock(8, 2, dropout=0.5, positional=True).train()
    x = torch.randn(2, 5, 8, requires_grad=True)
    a, b = block(x), block(x)
    assert not torch.allclose(a, b)  # dropout draws differ
    a.sum().backward()
    assert torch.isfinite(x.grad).all() and all(p.grad is not None for p in block.parameters())
    block.eval()
    torch.testing.assert_close(block(x), block(x))


@pytest.mark.parametrize("positional", [False, True])
def test_postnorm_block_is_post_norm_with_an_outer_residual(positional):
    block = PostNormBlock(8, 2, dropout=0.0, positional=positional).eval()
    x, ctx = torch.randn(2, 5, 8), torch.randn(2, 3, 8)
    with torch.no_grad():
        q, kv = x, ctx
        if positional:
            q = x + block._encode(torch.zeros_like(x))
            kv = ctx + block._encode(torch.zeros_like(ctx))
        a, _ = block.attn(q, kv, kv, need_weights=False)
        h = block.norm_attn(a + q)
        want = x + block.norm_ff(block.ff(h) + h)
        torch.testing.assert_close(block(x, ctx), want)
        # an all-true mask is no mask; a padded key changes nothing it is masked from
        full = torch.ones(2, 3, dtype=torch.bool)
        torch.testing.assert_close(block(x, ctx, full), want)
        part = full.clone()
        part[:, 2] = False
        ctx2 = ctx.clone()
        ctx2[:, 2] = 99.0
        torch.testing.assert_close(block(x, ctx2, part), block(x, ctx, part))


# --------------------------------------------------------------------------- stage 1 / 2
def _unimodal(task, encoder, in_dim=12, hidden=16):
    cfg = unimodal_cfg(
        in_dim=in_dim, task=task, encoder=encoder, hidden_dim=hidden, out_features=8, d_state=4
    )
    return UnimodalModel(cfg)


@pytest.mark.parametrize("encoder", ENCODERS)
def test_unimodal_outputs(encoder):
    x, mask = _batch()
    emo = _unimodal("emotion", encoder)(x, mask)
    assert emo["output"].shape == (4, 7)
    assert emo["features"].shape == (4, 16) and emo["sequence"].shape == (4, 7, 16)
    per = _unimodal("personality", encoder)(x, mask)["output"]
    assert per.shape == (4, 5) and bool(((per >= 0) & (per <= 1)).all())
    for out in (emo["output"], per):
        assert torch.isfinite(out).all()


def test_unimodal_rejects_unknown_task():
    with pytest.raises(ValueError):
        _unimodal("age", "mamba")


def test_unimodal_authors_options():
    """Bare Linear projection and head (their audio), relu / no personality activation."""
    x, mask = _batch()
    given = {"in_dim": 12, "task": "personality", "encoder": "gated_mlp", "hidden_dim": 16}
    lin = UnimodalModel(unimodal_cfg(**given, projection="linear", head="linear"))
    assert isinstance(lin.proj, torch.nn.Linear) and isinstance(lin.head, torch.nn.Linear)
    assert sum(p.numel() for p in lin.head.parameters()) == 16 * 5 + 5
    torch.manual_seed(1)
    raw = UnimodalModel(unimodal_cfg(**given, personality_activation="none")).eval()
    torch.manual_seed(1)
    relu = UnimodalModel(unimodal_cfg(**given, personality_activation="relu")).eval()
    with torch.no_grad():
        out = raw(x, mask)["output"]
        torch.testing.assert_close(out, raw.head(raw(x, mask)["features"]))
        torch.testing.assert_close(relu(x, mask)["output"], torch.relu(out))
    assert bool((out < 0).any())  # no activation: scores are not squashed
    with pytest.raises(ValueError, match="unknown projection"):
        UnimodalModel(unimodal_cfg(**given, projection="conv"))
    with pytest.raises(ValueError, match="unknown personality activation"):
        UnimodalModel(unimodal_cfg(**given, personality_activation="tanh"))


@pytest.mark.parametrize(
    "block,positional,act",
    [("postnorm", True, "sigmoid"), ("postnorm", False, "relu"), ("mha", False, "none")],
)
def test_cross_domain_bridge_blocks(block, positional, act):
    emo = _unimodal("emotion", "gated_mlp")
    per = _unimodal("personality", "postnorm_transformer", hidden=8)
    cfg = cross_cfg(
        hidden_dim=16, out_features=8, heads=2, layers=2, block=block, positional=positional,
        head_activation="silu", personality_activation=act,
    )  # fmt: skip
    model = CrossDomainModel(emo, per, cfg).eval()
    kinds = {type(b).__name__ for b in (*model.emo_blocks, *model.per_blocks)}
    assert kinds == {"postnorm": {"PostNormBlock"}, "mha": {"ResidualAttention"}}[block]
    assert isinstance(model.emotion_head[2], torch.nn.SiLU)
    x, mask = _batch()
    with torch.no_grad():
        out = model(x, mask)
        assert all(torch.isfinite(v).all() for v in out.values())
        pooled = torch.cat([out["emotion_features"], out["personality_features"]], -1)
        new = model.personality_head(pooled)
        new = {"sigmoid": torch.sigmoid(new), "relu": torch.relu(new), "none": new}[act]
        torch.testing.assert_close(
            out["personality_scores"], (new + out["base_personality_scores"]) / 2
        )
        # steps masked out of the clip do not reach the valid ones
        x2 = x.clone()
        x2[~mask] = 50.0
        torch.testing.assert_close(model(x2, mask)["emotion_logits"], out["emotion_logits"])
    with pytest.raises(ValueError, match="no position encoding"):
        CrossDomainModel(emo, per, cross_cfg(hidden_dim=16, heads=2, positional=True))


def test_cross_domain_model():
    emo, per = _unimodal("emotion", "mamba"), _unimodal("personality", "transformer", hidden=8)
    model = CrossDomainModel(emo, per, cross_cfg(hidden_dim=16, out_features=8, heads=2))
    model.train()
    assert not emo.training and not per.training  # frozen models never use dropout
    x, mask = _batch()
    out = model(x, mask)
    assert out["emotion_logits"].shape == (4, 7)
    assert out["personality_scores"].shape == (4, 5)
    assert out["emotion_features"].shape == (4, 16)
    assert out["personality_features"].shape == (4, 16)
    assert all(torch.isfinite(v).all() for v in out.values())
    assert bool(((out["personality_scores"] >= 0) & (out["personality_scores"] <= 1)).all())
    assert torch.all(out["emotion_features"][2] == 0)  # missing video: zero features
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and not any(
        n.startswith(("emotion_base", "personality_base")) for n in trainable
    )
    out["emotion_logits"].sum().backward()
    assert all(p.grad is None for p in emo.parameters())
    # prediction = mean of the bridge head and the frozen model
    model.eval()
    with torch.no_grad():
        o = model(x, mask)
        torch.testing.assert_close(
            2 * o["emotion_logits"] - o["base_emotion_logits"],
            model.emotion_head(torch.cat([o["emotion_features"], o["personality_features"]], -1)),
        )
        # training feeds cached stage-1 outputs: same result as encoding on the fly
        cached = model(None, mask, base=model.base_outputs(x, mask))
        for k, v in o.items():
            torch.testing.assert_close(cached[k], v)
    with pytest.raises(ValueError):
        CrossDomainModel(per, emo, cross_cfg())


# the authors' widths (their inference_config_*.toml and text/audio model_loader.py):
# modality, task -> encoder, hidden_dim, layers, block_width or heads, activation
AUTHORS_STAGE1 = {
    ("face", "emotion"): ("gated_mlp", 1024, 1, 16, "sigmoid"),
    ("face", "personality"): ("gated_mlp", 256, 1, 8, "sigmoid"),
    ("body", "emotion"): ("gated_mlp", 256, 2, 8, "sigmoid"),
    ("body", "personality"): ("gated_mlp", 1024, 1, 4, "sigmoid"),
    ("scene", "emotion"): ("postnorm_transformer", 512, 5, 4, "sigmoid"),
    ("scene", "personality"): ("gated_mlp", 512, 7, 4, "relu"),
    ("audio", "emotion"): ("gated_mlp", 256, 3, 256, "sigmoid"),
    ("audio", "personality"): ("gated_mlp", 256, 3, 256, "none"),
    ("text", "emotion"): ("gated_mlp", 256, 4, 256, "sigmoid"),
    ("text", "personality"): ("postnorm_transformer", 512, 1, 8, "sigmoid"),
}
# modality -> block, hidden_dim, heads, layers, out_features, head activation, activation
AUTHORS_STAGE2 = {
    "face": ("postnorm", 512, 2, 3, 256, "gelu", "sigmoid"),
    "body": ("postnorm", 1024, 16, 1, 128, "gelu", "sigmoid"),
    "scene": ("postnorm", 768, 4, 5, 256, "gelu", "relu"),
    "text": ("postnorm", 256, 4, 2, 256, "silu", "sigmoid"),
    "audio": ("mha", 256, 4, 1, 256, "silu", "none"),  # heads: in their checkpoint only
}


def test_paper_config_selects_the_authors_models():
    from mepr.config import REPO_ROOT, load_workflow_config, parse_params
    from mepr.train.stages import unimodal_config

    train = load_workflow_config([REPO_ROOT / "configs" / "paper.yaml"])["train"]
    params = parse_params(train)
    for (modality, task), want in AUTHORS_STAGE1.items():
        # a stage-1 job receives its modality's encoder entry alone (common.smk)
        job = parse_params({**train, "encoder": train["encoder"][modality]})
        cfg = unimodal_config(job, modality, task, in_dim=512)
        assert cfg == unimodal_config(params, modality, task, in_dim=512)
        width = cfg.block_width if cfg.encoder == "gated_mlp" else cfg.heads
        got = (cfg.encoder, cfg.hidden_dim, cfg.layers, width, cfg.personality_activation)
        assert got == want, (modality, task)
        linear = ("linear", "linear") if modality == "audio" else ("norm", "mlp")
        assert (cfg.projection, cfg.head) == linear
    assert not unimodal_config(params, "scene", "emotion", 512).positional
    for modality, want in AUTHORS_STAGE2.items():
        c = pick(CrossConfig, params.cross, params, **params.cross.given(modality))
        got = (c.block, c.hidden_dim, c.heads, c.layers, c.out_features)
        assert (*got, c.head_activation, c.personality_activation) == want, modality
        assert c.positional == (modality != "audio")
    # the demo's defaults stay mepr's own models
    default = TrainParams()
    assert unimodal_config(default, "face", "emotion", 8).encoder == "mamba"
    assert pick(CrossConfig, default.cross, default, **default.cross.given("face")).block == (
        "prenorm"
    )


# --------------------------------------------------------------------------- stage 3
MODS = ("face", "audio", "text")
DIMS = (10, 6, 8)


def _fusion_inputs(b=5):
    feats = {m: torch.randn(b, d) for m, d in zip(MODS, DIMS, strict=True)}
    logits = torch.randn(b, len(MODS), 7)
    scores = torch.rand(b, len(MODS), 5)
    present = torch.ones(b, len(MODS), dtype=torch.bool)
    present[1, 1] = False  # audio missing
    present[2, :2] = False  # only text
    present[3] = False  # nothing at all
    return feats, logits, scores, present


SWITCHES = [
    "graph_attention",
    "cross_attention",
    "predict_projection_emotion",
    "predict_projection_personality",
    "guide_emotion",
    "guide_personality",
]


@pytest.mark.parametrize("switch", [None, *SWITCHES])
def test_fusion_ablation_switches(switch):
    defaults = fusion_cfg(modalities=MODS, input_dims=DIMS)
    flags = {s: getattr(defaults, s) for s in SWITCHES}
    if switch is not None:
        flags[switch] = not flags[switch]
    cfg = fusion_cfg(modalities=MODS, input_dims=DIMS, hidden_dim=16, heads=4, **flags)
    model = FusionModel(cfg).eval()
    feats, logits, scores, present = _fusion_inputs()
    out = model(feats, logits, scores, present)
    assert out["emotion_logits"].shape == (5, 7)
    assert out["personality_scores"].shape == (5, 5)
    assert torch.isfinite(out["emotion_logits"]).all()
    p = out["personality_scores"]
    assert bool(((p >= 0) & (p <= 1)).all())
    names = {n.split(".")[0] for n, _ in model.named_parameters()}
    component = {
        "graph_attention": "graph",
        "cross_attention": "attn",
        "predict_projection_emotion": "emotion_predict_proj",
        "predict_projection_personality": "personality_predict_proj",
        "guide_emotion": "emotion_guide",
        "guide_personality": "personality_guide",
    }
    for s, name in component.items():
        assert (name in names) == flags[s], s
    # an absent modality does not influence the prediction
    feats2 = dict(feats)
    feats2["audio"] = feats["audio"].clone()
    feats2["audio"][1] += 100.0
    logits2 = logits.clone()
    logits2[1, 1] += 100.0
    out2 = model(feats2, logits2, scores, present)
    torch.testing.assert_close(out2["emotion_logits"][1], out["emotion_logits"][1])
    torch.testing.assert_close(out2["personality_scores"][1], out["personality_scores"][1])
    # ... but a present one does
    feats2["face"] = feats["face"] + 5.0
    assert not torch.allclose(
        model(feats2, logits, scores, present)["emotion_logits"][0], out["emotion_logits"][0]
    )


def test_fusion_guide_blends_cosine():
    cfg = fusion_cfg(
        modalities=MODS,
        input_dims=DIMS,
        hidden_dim=8,
        heads=2,
        guide_emotion=True,
        guide_personality=True,
        predict_projection_emotion=False,
        predict_projection_personality=False,
        cross_attention=False,
        graph_attention=False,
    )
    model = FusionModel(cfg).eval()
    feats, logits, scores, present = _fusion_inputs()
    with torch.no_grad():
        out = model(feats, logits, scores, present)
        nodes = torch.stack([model.projectors[m](feats[m]) for m in MODS], 1)
        w = present.float().unsqueeze(-1)
        r = (nodes * w).sum(1) / w.sum(1).clamp_min(1)
        cos = F.cosine_similarity(r.unsqueeze(1), model.emotion_guide.unsqueeze(0), dim=-1)
        torch.testing.assert_close(out["emotion_logits"], (model.emotion_head(r) + cos) / 2)


def test_fusion_config_validates_dims():
    with pytest.raises(ValueError):
        fusion_cfg(modalities=("face",), input_dims=())
