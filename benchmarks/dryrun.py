"""How long `snakemake -n` takes on a paper-scale corpus: 30,000 videos, two corpora, 64 shards.

    .venv/bin/python benchmarks/dryrun.py [--videos 30000] [--shards 64] [--repeat 3] [--keep DIR]
                                          [--slurm]

No real videos are needed. The manifest stage only finds and stats a corpus's videos (decoding
starts in `frames`), so the benchmark lays out a CMU-MOSEI-like and a FIv2-like corpus in the
reference's layout (`{split}_full.csv` label files, `video/{split}/NAME.mp4`) with 1 KiB stub
files for videos, and builds both manifests with the workflow's own `manifest` checkpoint
(`snakemake --cores 2 results/corpora/*/manifest.parquet`). Manifests, failures tables and
Snakemake's metadata are then exactly those of a real run at that point. The timed dry run
plans everything downstream: per shard frames, audio, transcripts and five embeddings, then
the three training stages; each shard job's params include mepr.shards.shard_fingerprint of
its manifest (read once per corpus and cached).

Prints the set-up time, then each dry run's wall time and the number of jobs it planned. The
README's figure ("Scale") comes from this script.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SPLITS = ("train", "dev", "test")
EMOTION_COLUMNS = ["Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise"]
TRAIT_COLUMNS = [
    "openness", "conscientiousness", "extraversion", "agreeableness", "non-neuroticism",
]  # fmt: skip


def write_corpus(root: Path, corpus: str, n: int, columns: list[str]) -> None:
    """`{split}_full.csv` label files and one stub file per video under video/{split}/."""
    stub = bytes(1024)
    rows = {split: [] for split in SPLITS}
    for i in range(n):
        split = SPLITS[0] if i % 20 < 14 else SPLITS[1] if i % 20 < 17 else SPLITS[2]
        name = f"{corpus}_{i:06d}"
        rows[split].append([name, *(f"{(i * (k + 3)) % 7 / 6:.3f}" for k in range(len(columns)))])
        video = root / "video" / split / f"{name}.mp4"
        video.parent.mkdir(parents=True, exist_ok=True)
        video.write_bytes(stub)
    for split, split_rows in rows.items():
        with open(root / f"{split}_full.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["video_name", *columns, "text"])
            w.writerows(r + ["a sentence that was said"] for r in split_rows)


def setup(work: Path, n_videos: int, n_shards: int) -> list[str]:
    """A workdir whose manifests are built and up to date; returns snakemake's base command."""
    cfg = yaml.safe_load((REPO / "configs/paper.yaml").read_text())
    cfg["n_shards"] = n_shards
    sizes = {"mosei": n_videos * 2 // 3, "fiv2": n_videos - n_videos * 2 // 3}
    columns = {"mosei": EMOTION_COLUMNS, "fiv2": TRAIT_COLUMNS}
    for corpus, corpus_cfg in cfg["corpora"].items():
        corpus_cfg["root"] = str(work / "corpora" / corpus)
        write_corpus(Path(corpus_cfg["root"]), corpus, sizes[corpus], columns[corpus])
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    base = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(work), "--configfile", str(work / "config.yaml"),
    ]  # fmt: skip
    targets = [f"results/corpora/{c}/manifest.parquet" for c in cfg["corpora"]]
    proc = subprocess.run(
        [*base, "--cores", "2", *targets], capture_output=True, text=True, env=_env()
    )
    if proc.returncode != 0:
        raise SystemExit(f"building the manifests failed:\n{proc.stderr[-4000:]}")
    return base


def _env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def dry_run(base: list[str], profile: list[str]) -> tuple[float, int, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*base, *profile, "-n", "results/fusion/metrics.json"],
        capture_output=True,
        text=True,
        env=_env(),
        check=False,
    )
    elapsed = time.perf_counter() - t0
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise SystemExit(f"dry run failed:\n{out[-4000:]}")
    m = re.search(r"^total\s+(\d+)", out, re.M)
    return elapsed, int(m.group(1)) if m else -1, out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=30_000)
    p.add_argument("--shards", type=int, default=64)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--keep", type=Path, help="work in this directory and keep it")
    p.add_argument(
        "--slurm",
        action="store_true",
        help="dry-run through workflow/profiles/slurm (needs the slurm plugin): also counts "
        "the SLURM submissions its job groups make",
    )
    a = p.parse_args()
    profile = ["--profile", str(REPO / "workflow/profiles/slurm")] if a.slurm else []
    with tempfile.TemporaryDirectory(prefix="mepr-dryrun-") as tmp:
        work = a.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        base = setup(work, a.videos, a.shards)
        print(f"set-up: {a.videos} videos, 2 corpora, {a.shards} shards: "
              f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
        times = []
        for i in range(a.repeat):
            elapsed, n_jobs, out = dry_run(base, profile)
            times.append(elapsed)
            groups = len(re.findall(r"Group job \w+ \(", out))
            bundled = f" ({groups} group submissions)" if a.slurm else ""
            print(f"snakemake -n #{i + 1}: {elapsed:.1f} s, {n_jobs} jobs planned{bundled}")
            planned = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
            if "manifest" in planned or "missing provenance" in out:
                raise SystemExit("the manifests do not look up to date:\n" + out[-3000:])
            if i == 0:
                print("  " + ", ".join(f"{k} {v}" for k, v in planned.items()))
        print(f"median {statistics.median(times):.1f} s (limit 30 s)")


if __name__ == "__main__":
    main()
