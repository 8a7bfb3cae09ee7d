"""The whole demo DAG through Snakemake: metrics, nothing-to-do, determinism, incrementality."""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mepr import shards

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def snakemake(
    workdir: Path, *args: str, check: bool = True, config: str = "config.yaml"
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--configfile", str(workdir / config), *args,
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        )
    return proc


def planned(proc: subprocess.CompletedProcess) -> dict[str, list[dict[str, str]]]:
    """rule -> wildcards of each job a dry run plans."""
    jobs: dict[str, list[dict[str, str]]] = {}
    rule = None
    for line in (proc.stdout + proc.stderr).splitlines():
        if m := re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):", line):
            rule = m.group(1)
            jobs.setdefault(rule, [])
        elif rule and (m := re.match(r"^\s+wildcards: (.*)", line)):
            jobs[rule].append(dict(kv.split("=", 1) for kv in m.group(1).split(", ")))
    return jobs


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """A small demo (fewer, shorter clips) run once to results/fusion/metrics.json."""
    work = tmp_path_factory.mktemp("dag")
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["demo"].update(clips=28, seconds=1.5)
    cfg["frames"]["n_frames"] = 4
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(work, "--cores", "2", "results/fusion/metrics.json")
    return work


def test_metrics_are_well_formed_and_beat_chance(demo_run):
    metrics = json.loads((demo_run / "results/fusion/metrics.json").read_text())
    for split in ("dev", "test"):
        emo, per = metrics[split]["emotion"], metrics[split]["personality"]
        assert set(emo["per_class"]) == {
            "anger",
            "disgust",
            "fear",
            "happiness",
            "sadness",
            "surprise",
        }
        assert set(per["per_class"]) == {
            "openness",
            "conscientiousness",
            "extraversion",
            "agreeableness",
            "non_neuroticism",
        }
        assert emo["mWACC"] == pytest.approx(emo["mUAR"])
        for value in (emo["mWACC"], emo["mF1"], per["mACC"]):
            assert 0.0 <= value <= 1.0
    # chance: uniform emotion probabilities give mWACC 0.5; the train-mean predictor's mACC
    dev, base = metrics["dev"], metrics["baseline"]["dev"]
    assert base["emotion"]["mWACC"] == pytest.approx(0.5)
    assert dev["emotion"]["mWACC"] > 0.65
    assert dev["personality"]["mACC"] > base["personality"]["mACC"]
    for name in ("model.safetensors", "config.json", "curves.csv", "predictions.parquet"):
        assert (demo_run / "results/fusion" / name).stat().st_size > 0
    for m in ("face", "body", "scene", "audio", "text"):
        assert (demo_run / f"results/unimodal/{m}/cross/model.safetensors").exists()
        for corpus in ("demo_emo", "demo_pers"):
            assert (demo_run / f"results/unimodal/{m}/{corpus}/metrics.json").exists()


def test_unchanged_rerun_has_nothing_to_do(demo_run):
    proc = snakemake(demo_run, "-n", "results/fusion/metrics.json")
    out = proc.stdout + proc.stderr
    assert "Nothing to be done" in out, [line for line in out.splitlines() if "reason:" in line]


def test_same_inputs_give_identical_metrics(demo_run):
    metrics = demo_run / "results/fusion/metrics.json"
    before = metrics.read_bytes()
    snakemake(demo_run, "--cores", "2", "--forcerun", "train_fusion", "results/fusion/metrics.json")
    assert metrics.read_bytes() == before


def test_one_modality_hyperparameter_reruns_that_modality_and_fusion(demo_run):
    cfg = yaml.safe_load((demo_run / "config.yaml").read_text())
    cfg["train"]["encoder"]["face"] = "transformer"
    (demo_run / "face-transformer.yaml").write_text(yaml.safe_dump(cfg))
    jobs = planned(
        snakemake(demo_run, "-n", "results/fusion/metrics.json", config="face-transformer.yaml")
    )
    assert sorted(j["corpus"] for j in jobs["train_unimodal"]) == ["demo_emo", "demo_pers"]
    assert {j["modality"] for j in jobs["train_unimodal"]} == {"face"}
    assert jobs["train_cross"] == [{"modality": "face"}]
    assert "train_fusion" in jobs
    assert set(jobs) <= {"train_unimodal", "train_cross", "train_fusion", "all"}


def _plan_with(demo_run, name: str, change) -> dict[str, list[dict[str, str]]]:
    """The dry-run plan under the demo config changed by change(cfg)."""
    cfg = yaml.safe_load((demo_run / "config.yaml").read_text())
    change(cfg)
    (demo_run / name).write_text(yaml.safe_dump(cfg))
    return planned(snakemake(demo_run, "-n", "results/fusion/metrics.json", config=name))


def test_changing_one_encoder_reembeds_only_that_modality(demo_run):
    jobs = _plan_with(
        demo_run, "face-encoder.yaml", lambda c: c["encoders"]["face"].update(pretrained="openai")
    )
    assert {j["modality"] for j in jobs["embed"]} == {"face"}
    assert len(jobs["embed"]) == 2 * 2  # both corpora, every shard
    assert {j["modality"] for j in jobs["train_unimodal"]} == {"face"}
    assert set(jobs) - {"all"} == {"embed", "train_unimodal", "train_cross", "train_fusion"}


def test_changing_frame_sampling_reruns_frames_and_image_modalities_only(demo_run):
    jobs = _plan_with(demo_run, "frames5.yaml", lambda c: c["frames"].update(n_frames=5))
    assert len(jobs["frames"]) == 2 * 2
    assert {j["modality"] for j in jobs["embed"]} == {"face", "body", "scene"}
    assert len(jobs["embed"]) == 3 * 2 * 2
    assert not {"audio", "transcripts", "manifest"} & set(jobs)


def test_adding_one_video_reextracts_only_its_shard(demo_run):
    root = demo_run / "results/demo/demo_emo"
    rows = list(csv.DictReader((root / "labels.csv").open()))
    new = dict(rows[0], video_id="demo_emo_added")
    shutil.copy(
        root / "videos" / f"{rows[0]['video_id']}.mp4", root / "videos" / "demo_emo_added.mp4"
    )
    with (root / "labels.csv").open("a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(rows[0])).writerow(new)
    snakemake(demo_run, "--cores", "1", "results/corpora/demo_emo/manifest.parquet")
    proc = snakemake(demo_run, "-n", "results/fusion/metrics.json")
    jobs = planned(proc)
    k = shards.shard_of("demo_emo_added", 2)
    shard = {"corpus": "demo_emo", "k": str(k)}
    assert jobs["frames"] == [shard] and jobs["audio"] == [shard] and jobs["transcripts"] == [shard]
    assert "train_fusion" in jobs
    added = [j for j in jobs["embed"] if j["corpus"] == "demo_emo" and j["k"] == str(k)]
    assert sorted(j["modality"] for j in added) == ["audio", "body", "face", "scene", "text"]
    assert jobs["embed"] == added, "other shards' embeddings planned again:\n" + "\n".join(
        line for line in (proc.stdout + proc.stderr).splitlines() if "reason:" in line
    )


def test_config_error_names_the_key(demo_run):
    proc = snakemake(demo_run, "-n", "--config", "n_shards=0", check=False)
    assert proc.returncode != 0
    assert "config error: bad value for 'n_shards'" in proc.stdout + proc.stderr
