"""Training-step throughput at the paper's sizes (batch 32, hidden 256), CPU or CUDA.

    .venv/bin/python benchmarks/train.py [--device cpu|cuda] [--threads 1 2] [--steps 20]

Measures samples/s of one optimisation step (forward, loss, backward, Adam) for
- stage-1 unimodal models over 30 CLIP frames (512-d): Mamba and Transformer encoders,
- the stage-3 fusion model over five modalities with the reference's stage-2 widths
  (face 1024, body 2048, scene 1536, audio 512, text 512),
and, for Mamba, the share of time spent in the selective scan. Reports numbers measured in
this one run; it asserts nothing about speed.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.nn.functional as F

from mepr.models.fusion import FusionConfig, FusionModel
from mepr.models.unimodal import UnimodalConfig, UnimodalModel

BATCH, HIDDEN, FRAMES, CLIP_DIM = 32, 256, 30, 512
FUSION_DIMS = {"face": 1024, "body": 2048, "scene": 1536, "audio": 512, "text": 512}


def _time(step, steps: int, device: str) -> float:
    for _ in range(3):  # warm-up (allocator, kernels)
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device == "cuda":
        torch.cuda.synchronize()
    return BATCH * steps / (time.perf_counter() - t0)


def unimodal_step(encoder: str, device: str):
    cfg = UnimodalConfig(
        in_dim=CLIP_DIM,
        task="emotion",
        encoder=encoder,
        hidden_dim=HIDDEN,
        out_features=HIDDEN,
        heads=8,
    )
    model = UnimodalModel(cfg).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)
    x = torch.randn(BATCH, FRAMES, CLIP_DIM, device=device)
    mask = torch.ones(BATCH, FRAMES, dtype=torch.bool, device=device)
    y = torch.randint(0, 7, (BATCH,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x, mask)["output"], y).backward()
        opt.step()

    return step


def fusion_step(device: str):
    cfg = FusionConfig(
        modalities=tuple(FUSION_DIMS),
        input_dims=tuple(FUSION_DIMS.values()),
        hidden_dim=HIDDEN,
        heads=8,
    )
    model = FusionModel(cfg).to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-5)
    feats = {m: torch.randn(BATCH, d, device=device) for m, d in FUSION_DIMS.items()}
    logits = torch.randn(BATCH, len(FUSION_DIMS), 7, device=device)
    scores = torch.rand(BATCH, len(FUSION_DIMS), 5, device=device)
    present = torch.ones(BATCH, len(FUSION_DIMS), dtype=torch.bool, device=device)
    y, traits = torch.randint(0, 7, (BATCH,), device=device), torch.rand(BATCH, 5, device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(feats, logits, scores, present)
        loss = (
            F.cross_entropy(out["emotion_logits"], y)
            + (out["personality_scores"] - traits).abs().mean()
        )
        loss.backward()
        opt.step()

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json", help="also write the results here")
    a = ap.parse_args()
    torch.manual_seed(0)
    rows = []
    for threads in a.threads if a.device == "cpu" else [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        for name, make in (
            ("stage1 mamba", lambda: unimodal_step("mamba", a.device)),
            ("stage1 transformer", lambda: unimodal_step("transformer", a.device)),
            ("stage3 fusion", lambda: fusion_step(a.device)),
        ):
            rows.append(
                {
                    "model": name,
                    "device": a.device,
                    "threads": threads,
                    "samples_per_s": _time(make(), a.steps, a.device),
                }
            )
    print(f"{'model':<20} {'device':<6} {'threads':>7} {'samples/s':>10}")
    for r in rows:
        print(f"{r['model']:<20} {r['device']:<6} {r['threads']:>7} {r['samples_per_s']:>10.1f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
