"""The paper rehearsal: configs/paper.yaml on miniature replicas of the official MOSEI (SDK
.csd files, full + segmented videos) and FIv2 (Python 2 pickles, train-N/training80_NN/)
layouts, end to end, with only configs/rehearsal.yaml swapped in (offline encoders and ASR,
one shard)."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from mepr import shards

pytestmark = pytest.mark.e2e
PAPER = ("--configfile", "configs/paper.yaml")
REHEARSAL = (*PAPER, "configs/rehearsal.yaml")


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ},
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"snakemake {' '.join(args)} failed:\n{out[-6000:]}"
    return proc


def planned_rules(proc: subprocess.CompletedProcess) -> Counter:
    text = proc.stdout + proc.stderr
    return Counter(re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", text, re.M))


def planned_corpora(proc: subprocess.CompletedProcess) -> set[str]:
    text = proc.stdout + proc.stderr
    return set(re.findall(r"corpus=(\w+)", text))


def test_paper_dry_run_plans_exactly_the_paper_corpora(rehearsal_checkout):
    proc = snakemake(rehearsal_checkout, "-n", "results/fusion/metrics.json", *PAPER)
    assert planned_corpora(proc) == {"mosei", "fiv2"}
    per_shard = 2 * 64  # two corpora, n_shards: 64
    assert planned_rules(proc) == {
        "manifest": 2,
        "frames": per_shard,
        "audio": per_shard,
        "transcripts": per_shard,
        "embed": 5 * per_shard,
        "train_unimodal": 10,
        "train_cross": 5,
        "train_fusion": 1,
        # one ViT-B-32 'openai' for the three image modalities, wav2vec2, BGE, and for
        # WhisperX its faster-whisper model, the aligner and NLTK's sentence splitter
        "fetch_model": 6,
    }


@pytest.fixture(scope="module")
def rehearsal_run(rehearsal_checkout) -> Path:
    snakemake(rehearsal_checkout, "--cores", "2", "results/fusion/metrics.json", *REHEARSAL)
    return rehearsal_checkout


@pytest.fixture(scope="module")
def expected(rehearsal_checkout) -> dict:
    return json.loads((rehearsal_checkout / "data" / "rehearsal.json").read_text())


def _manifest(work: Path, corpus: str) -> dict[str, dict]:
    table = shards.read_table(work / f"results/corpora/{corpus}/manifest.parquet", shards.MANIFEST)
    return {r["video_id"]: r for r in table.to_pylist()}


def test_no_demo_job_ran(rehearsal_run):
    assert not (rehearsal_run / "results" / "demo").exists()
    assert sorted(p.name for p in (rehearsal_run / "results" / "corpora").iterdir()) == [
        "fiv2",
        "mosei",
    ]
    logs = "\n".join(p.read_text() for p in (rehearsal_run / ".snakemake" / "log").glob("*.log"))
    assert "demo_corpus" not in logs and "demo_emo" not in logs and "demo_pers" not in logs


@pytest.mark.parametrize("corpus", ["mosei", "fiv2"])
def test_rows_per_split(rehearsal_run, expected, corpus):
    rows = _manifest(rehearsal_run, corpus)
    assert sorted(rows) == sorted(expected[corpus])
    want = Counter(v["split"] for v in expected[corpus].values())
    assert Counter(r["split"] for r in rows.values()) == want
    assert set(want) == {"train", "dev", "test"}


def test_mosei_labels_transcripts_and_videos(rehearsal_run, expected):
    rows = _manifest(rehearsal_run, "mosei")
    want = expected["mosei"]
    interval = [v for v, e in want.items() if e["interval"]]
    clip = [v for v, e in want.items() if not e["interval"]]
    assert interval and clip, "the rehearsal covers full videos and segment clips"
    for vid in (interval[0], clip[0], sorted(want)[-1]):
        row, e = rows[vid], want[vid]
        assert row["emotion"] == pytest.approx(e["emotion"], abs=1e-6)
        assert math.isclose(sum(row["emotion"][1:]), 1.0, abs_tol=1e-5) or row["emotion"][0] == 1
        assert row["transcript"] == e["transcript"] and row["transcript"]
        assert row["path"] == e["path"]
        assert re.fullmatch(r".+_\d+\.\d{4}_\d+\.\d{4}", vid)
    for vid in interval:
        assert rows[vid]["start"] == pytest.approx(want[vid]["start"])
        assert rows[vid]["end"] == pytest.approx(want[vid]["end"])
        assert "/Full/Combined/" in rows[vid]["path"]
    for vid in clip:
        assert rows[vid]["start"] is None and "/Segmented/Combined/" in rows[vid]["path"]


def test_fiv2_labels_and_transcripts(rehearsal_run, expected):
    rows = _manifest(rehearsal_run, "fiv2")
    for vid, e in sorted(expected["fiv2"].items())[:3]:
        assert rows[vid]["traits"] == pytest.approx(e["traits"], abs=1e-6)
        assert rows[vid]["transcript"] == e["text"]
        assert re.search(
            r"/(train|val|test)-\d/(training|validation|test)80_\d\d/", rows[vid]["path"]
        )


def test_interval_frames_come_from_inside_the_interval(rehearsal_run, expected):
    want = {v: e for v, e in expected["mosei"].items() if e["interval"]}
    frames = shards.read_table(
        rehearsal_run / "results/frames/mosei/shard-0.parquet", shards.FRAMES
    )
    by_video: dict[str, list[float]] = {}
    for r in frames.select(["video_id", "timestamp"]).to_pylist():
        by_video.setdefault(r["video_id"], []).append(r["timestamp"])
    for vid, e in want.items():
        times = by_video[vid]
        assert len(times) == 30  # paper.yaml: 30 frames per video
        assert e["start"] - 1e-3 <= min(times) and max(times) < e["end"]


def test_transcripts_come_from_the_corpus(rehearsal_run):
    for corpus in ("mosei", "fiv2"):
        table = shards.read_table(
            rehearsal_run / f"results/transcripts/{corpus}/shard-0.parquet", shards.TRANSCRIPTS
        )
        assert set(table.column("source").to_pylist()) == {"corpus"}


def test_metrics_of_the_rehearsal(rehearsal_run):
    metrics = json.loads((rehearsal_run / "results/fusion/metrics.json").read_text())
    for split in ("dev", "test"):
        assert 0 <= metrics[split]["emotion"]["mWACC"] <= 1
        assert 0 <= metrics[split]["personality"]["mACC"] <= 1
