"""GPU checks and timings: the mamba_ssm kernel against our scan, training steps, embedding.

    python benchmarks/gpu.py --frames FRAMES.parquet --audio AUDIO.parquet [--json OUT]

Needs a CUDA device (exits 2 without one). FRAMES / AUDIO are real shards of the demo corpus
(e.g. from ``benchmarks/extract.py``); their crops and tracks are tiled into larger shards here.

1. **Selective scan.** ``mamba_ssm``'s CUDA ``selective_scan_fn`` against
   ``mepr.models.encoders.selective_scan`` (the chunked torch form used on GPUs without the
   kernel) on the same random inputs: outputs and the gradients of every input, fp32, as
   max |difference| / max |value|; then a ``MambaMixer`` with masked steps, kernel on/off.
   Exits 1 when a relative difference exceeds 1e-3 (the kernel's own tests use 1e-3 .. 5e-3).
2. **Training steps** (``benchmarks/train.py``'s models, batch 32, hidden 256): samples/s of
   stage-1 Mamba with the kernel and with the torch scan, stage-1 Transformer, stage-3 fusion.
3. **Embedding vs the bare forward** at the paper's encoder sizes with random weights (no
   downloads here): open_clip ViT-B-32 in fp16 on face crops (ours = ``embed_image_shard``:
   read, JPEG-decode (nvJPEG on a side stream, or CPU threads), crop, normalise, forward;
   bare = ``encode_image`` on ready fp16 tensors on the GPU), the cosine between embeddings
   of nvJPEG- and OpenCV-decoded crops, JPEG decoding alone (nvJPEG, one OpenCV thread), and a wav2vec2-large-robust-sized
   Wav2Vec2 (24 layers, 1024 wide, layer-norm feature encoder) in fp16 on audio tracks.

Nothing about speed is asserted; the numbers are what this one run measured.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from extract import _compare  # noqa: E402  (benchmarks/extract.py: alternate, keep minima)
from train import _time, fusion_step, unimodal_step  # noqa: E402

from mepr import shards  # noqa: E402
from mepr.config import EncoderParams, parse  # noqa: E402
from mepr.models import encoders  # noqa: E402


# ---------------------------------------------------------------------------------------------
# 1. selective scan: kernel vs torch
def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def scan_check(b: int, d: int, length: int, n: int = 16) -> dict:
    g = torch.Generator(device="cuda").manual_seed(0)

    def rand(*shape, scale=1.0):
        return (torch.randn(*shape, device="cuda", generator=g) * scale).requires_grad_()

    u, z = rand(b, d, length), rand(b, d, length)
    delta = (torch.rand(b, d, length, device="cuda", generator=g) * 0.1).requires_grad_()
    A = (-torch.rand(d, n, device="cuda", generator=g) - 0.5).requires_grad_()
    B, C, D = rand(b, n, length), rand(b, n, length), rand(d)
    inputs = {"u": u, "delta": delta, "A": A, "B": B, "C": C, "D": D, "z": z}
    grad_out = torch.randn(b, d, length, device="cuda", generator=g)
    results = {}
    for name, fn in (
        ("kernel", encoders.selective_scan_kernel),
        ("torch", encoders.selective_scan),
    ):
        for t in inputs.values():
            t.grad = None
        y = fn(u, delta, A, B, C, D, z=z)
        y.backward(grad_out)
        results[name] = {"y": y.detach(), **{k: t.grad.clone() for k, t in inputs.items()}}
    return {f"{k}": _rel(results["kernel"][k], results["torch"][k]) for k in ["y", *inputs]} | {
        "shape": [b, d, length, n]
    }


def mixer_check() -> float:
    torch.manual_seed(0)
    mixer = encoders.MambaMixer(256).cuda()
    x = torch.randn(8, 40, 256, device="cuda")
    mask = torch.ones(8, 40, dtype=torch.bool, device="cuda")
    mask[1, 10:20] = False  # a gap in the middle
    mask[2, 25:] = False  # padding
    mask[3] = False  # a video missing from the modality
    with torch.no_grad():
        mixer.use_kernel = True
        with_kernel = mixer(x, mask)
        mixer.use_kernel = False
        without = mixer(x, mask)
    return _rel(with_kernel, without)


# ---------------------------------------------------------------------------------------------
# 2. training steps
def train_rows(steps: int) -> list[dict]:
    kernel = encoders.selective_scan_kernel
    rows = []
    for name, make, use_kernel in (
        ("stage1 mamba (mamba_ssm kernel)", lambda: unimodal_step("mamba", "cuda"), True),
        ("stage1 mamba (torch scan)", lambda: unimodal_step("mamba", "cuda"), False),
        ("stage1 transformer", lambda: unimodal_step("transformer", "cuda"), True),
        ("stage3 fusion", lambda: fusion_step("cuda"), True),
    ):
        encoders.selective_scan_kernel = kernel if use_kernel else None
        try:
            rows.append({"model": name, "samples_per_s": _time(make(), steps, "cuda")})
        finally:
            encoders.selective_scan_kernel = kernel
    return rows


# ---------------------------------------------------------------------------------------------
# 3. embedding vs the bare forward
def tiled_frames(source: Path, n_crops: int, out: Path, per_video: int = 30) -> Path:
    """A frames shard of n_crops face crops: the source's real crops, repeated."""
    crops = [
        c for c in shards.read_table(source, shards.FRAMES).column("face_jpeg").to_pylist() if c
    ]
    rows = []
    for i in range(n_crops):
        rows.append(
            {"video_id": f"v{i // per_video:05d}", "step": i % per_video, "frame_index": i,
             "timestamp": 0.0, "width": 224, "height": 224, "scene_jpeg": None,
             "face_jpeg": crops[i % len(crops)], "face_box": None, "face_score": 1.0,
             "body_jpeg": None, "body_box": None, "body_score": None}
        )  # fmt: skip
    shards.write_table(pa.Table.from_pylist(rows, schema=shards.FRAMES.arrow), shards.FRAMES, out)
    return out


def tiled_audio(source: Path, n_clips: int, out: Path, seed: int = 0) -> Path:
    """An audio shard of n_clips tracks of 3-15 s (MOSEI-like lengths), tiled from real ones."""
    pcm = b"".join(r for r in shards.read_table(source, shards.AUDIO).column("pcm_s16le").to_pylist() if r)  # fmt: skip
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_clips):
        n = int(rng.uniform(3, 15) * 16000)
        start = int(rng.integers(0, len(pcm) // 2 - n)) * 2
        data = (pcm * (1 + 2 * n // len(pcm)))[start : start + 2 * n]
        rows.append({"video_id": f"a{i:05d}", "sample_rate": 16000, "n_samples": n,
                     "has_audio": True, "pcm_s16le": data})  # fmt: skip
    shards.write_table(pa.Table.from_pylist(rows, schema=shards.AUDIO.arrow), shards.AUDIO, out)
    return out


def bench_vit(frames: Path, batch_size: int, threads: int, gpu_decode: bool = True) -> dict:
    from mepr.embed import shard as embed_shard
    from mepr.embed.image import ClipImageEncoder

    p = parse(EncoderParams, {"kind": "open_clip", "model": "ViT-B-32", "pretrained": None,
                                  "batch_size": batch_size, "device": "cuda"})  # fmt: skip
    enc = ClipImageEncoder(p)
    if not gpu_decode:
        enc._decode_stream = None  # JPEGs decoded by CPU threads
    n = shards.read_table(frames, shards.FRAMES).num_rows
    batches = [
        torch.randn(min(batch_size, n - i), 3, 224, 224, device="cuda", dtype=enc.dtype)
        for i in range(0, n, batch_size)
    ]

    @torch.inference_mode()
    def bare():
        for x in batches:
            enc.model.encode_image(x).float().cpu()
        torch.cuda.synchronize()

    ours, bare_s = _compare(
        lambda: embed_shard.embed_image_shard(frames, "face", p, encoder=enc, threads=threads),
        bare,
        repeats=3,
    )
    return {"items": n, "batch_size": batch_size, "threads": threads,
            "decode": "nvjpeg" if gpu_decode else "cpu", "ours_s": ours,
            "bare_s": bare_s, "ratio": ours / bare_s, "ours_items_per_s": n / ours,
            "bare_items_per_s": n / bare_s}  # fmt: skip


def decode_rates(frames: Path, batch_size: int = 256) -> dict:
    """JPEG decoding alone, crops per second: nvJPEG in batches on the GPU, and one OpenCV
    thread on the CPU (what each decode thread of the CPU path manages)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    from mepr.media import jpeg

    data = [c for c in shards.read_table(frames, shards.FRAMES).column("face_jpeg").to_pylist() if c]  # fmt: skip
    raw = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in data]

    def nvjpeg() -> float:
        t0 = time.perf_counter()
        for i in range(0, len(raw), batch_size):
            decode_jpeg(raw[i : i + batch_size], mode=ImageReadMode.RGB, device="cuda")
        torch.cuda.synchronize()
        return time.perf_counter() - t0

    nvjpeg()  # warm-up
    gpu_s = min(nvjpeg() for _ in range(3))
    sample = data[:2048]
    t0 = time.perf_counter()
    for d in sample:
        jpeg.decode(d)
    cpu_s = time.perf_counter() - t0
    return {"crops": len(data), "batch_size": batch_size, "nvjpeg_per_s": len(data) / gpu_s,
            "cpu_thread_per_s": len(sample) / cpu_s}  # fmt: skip


def decode_difference(frames: Path) -> dict:
    """nvJPEG and libjpeg-turbo (OpenCV) do not decode to identical pixels: how far apart
    are the embeddings of the same crops decoded either way?"""
    from mepr.embed import shard as embed_shard
    from mepr.embed.image import ClipImageEncoder

    p = parse(EncoderParams, {"kind": "open_clip", "model": "ViT-B-32", "pretrained": None,
                                  "batch_size": 256, "device": "cuda"})  # fmt: skip
    enc = ClipImageEncoder(p)
    gpu = embed_shard.embed_image_shard(frames, "face", p, encoder=enc, threads=8)
    enc._decode_stream = None
    cpu = embed_shard.embed_image_shard(frames, "face", p, encoder=enc, threads=8)
    a = np.concatenate([np.stack(r["values"]) for r in gpu.rows])
    b = np.concatenate([np.stack(r["values"]) for r in cpu.rows])
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {"min_cosine": float(cos.min()), "mean_cosine": float(cos.mean()),
            "max_rel_diff": float(np.abs(a - b).max() / np.abs(b).max())}  # fmt: skip


def bench_wav2vec2(audio: Path, batch_size: int) -> dict:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from mepr.embed import shard as embed_shard
    from mepr.embed.audio import Wav2Vec2Encoder

    model_dir = Path(tempfile.mkdtemp()) / "w2v2-large-robust-random"
    config = Wav2Vec2Config(
        hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
        feat_extract_norm="layer", do_stable_layer_norm=True, conv_bias=True,
    )  # fmt: skip
    torch.manual_seed(0)
    Wav2Vec2Model(config).save_pretrained(model_dir, safe_serialization=True)
    Wav2Vec2FeatureExtractor(return_attention_mask=True, do_normalize=True).save_pretrained(
        model_dir
    )
    p = parse(EncoderParams, {"kind": "wav2vec2", "model": str(model_dir), "window_s": 0.5,
                                  "batch_size": batch_size, "device": "cuda"})  # fmt: skip
    enc = Wav2Vec2Encoder(p)
    lengths = shards.read_table(audio, shards.AUDIO).column("n_samples").to_pylist()
    inputs = []
    for b in enc.batch_plan(lengths):
        longest = max(lengths[i] for i in b)
        mask = torch.zeros(len(b), longest, dtype=torch.long)
        for r, i in enumerate(b):
            mask[r, : lengths[i]] = 1
        inputs.append((torch.randn(len(b), longest), mask))

    def bare():
        for v, m in inputs:
            enc.forward(v, m)
        torch.cuda.synchronize()

    ours, bare_s = _compare(
        lambda: embed_shard.embed_audio_shard(audio, p, encoder=enc), bare, repeats=3
    )
    seconds = sum(lengths) / 16000
    return {"items": len(lengths), "audio_s": seconds, "batch_size": batch_size,
            "ours_s": ours, "bare_s": bare_s, "ratio": ours / bare_s,
            "ours_audio_s_per_s": seconds / ours}  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=Path, required=True)
    ap.add_argument("--audio", type=Path, required=True)
    ap.add_argument("--crops", type=int, default=8192)
    ap.add_argument("--clips", type=int, default=256)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--json", type=Path)
    ap.add_argument(
        "--parts", nargs="+", choices=["scan", "train", "embed"], default=["scan", "train", "embed"]
    )
    a = ap.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device", file=sys.stderr)
        return 2
    report: dict = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                    "cpus": os.cpu_count(), "kernel": encoders.selective_scan_kernel is not None}  # fmt: skip
    ok = True
    if "scan" in a.parts and encoders.selective_scan_kernel is not None:
        report["scan"] = [scan_check(4, 128, 30), scan_check(4, 128, 257), scan_check(2, 512, 1000)]
        report["mixer_rel_diff"] = mixer_check()
        worst = max(v for r in report["scan"] for k, v in r.items() if k != "shape")
        ok = max(worst, report["mixer_rel_diff"]) < 1e-3
        print(f"scan: worst relative difference {worst:.2e}; mixer {report['mixer_rel_diff']:.2e}")
    for r in report.setdefault("train", train_rows(a.steps) if "train" in a.parts else []):
        print(f"{r['model']:<34} {r['samples_per_s']:>10.0f} samples/s")
    if "embed" not in a.parts:
        return finish(report, a.json, ok)
    work = Path(tempfile.mkdtemp())
    frames = tiled_frames(a.frames, a.crops, work / "frames.parquet")
    report["embed_image"] = [
        bench_vit(frames, bs, th, gpu)
        for bs, th, gpu in ((256, 8, False), (256, 16, False), (64, 4, True), (256, 4, True))
    ]
    report["decode_difference"] = decode_difference(frames)
    report["decode_rates"] = decode_rates(frames)
    audio = tiled_audio(a.audio, a.clips, work / "audio.parquet")
    report["embed_audio"] = [bench_wav2vec2(audio, 16)]
    print("decode difference:", report["decode_difference"])
    print("decode alone:", report["decode_rates"])
    for r in report["embed_image"] + report["embed_audio"]:
        print({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()})
    return finish(report, a.json, ok)


def finish(report: dict, path: Path | None, ok: bool) -> int:
    if path:
        path.write_text(json.dumps(report, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    t0 = time.perf_counter()
    code = main()
    print(f"done in {time.perf_counter() - t0:.0f} s")
    sys.exit(code)
