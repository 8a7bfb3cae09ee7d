"""Sweeps (mepr.sweep, workflow/rules/sweep.smk): grid expansion, greedy rounds, planning
errors, failure rows and the ranked table; the DAG by dry runs; one real 2-trial sweep on
tiny synthetic stage-2 features (not the demo DAG); 4 trials through SLURM: tests/test_slurm.py."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from mepr import layout, shards
from mepr.config import ConfigError, TrainParams, load_workflow_config
from mepr.labels import EMOTIONS, MODALITIES, TRAITS
from mepr.models.checkpoints import CheckpointError
from mepr.sweep.grid import (
    Sweep,
    check_sweep,
    exhaustive,
    greedy_round,
    pick_winner,
    trial_id,
    trial_seed,
    with_overrides,
)
from mepr.sweep.outcome import Outcome, divergence, failure_reason, read_status, write_status
from mepr.sweep.plan import round_plan
from mepr.sweep.table import PlannedRow, build_rows, round_result, write_table
from mepr.train.data import CROSS_FEATURES

REPO = Path(__file__).resolve().parents[1]
TRAIN = load_workflow_config([])["train"]  # the demo's train section, defaults filled


def sweep(grid: dict, mode: str = "exhaustive", **kw) -> Sweep:
    return Sweep.from_config("s", {"grid": grid, "mode": mode, **kw})


# --------------------------------------------------------------------------- grid expansion
def test_exhaustive_is_the_product_in_grid_order():
    s = sweep({"lr": [0.001, 0.003], "fusion.hidden_dim": [32, 64]})
    trials = exhaustive(s, TRAIN)
    assert [t.values for t in trials] == [
        {"lr": 0.001, "fusion.hidden_dim": 32},
        {"lr": 0.001, "fusion.hidden_dim": 64},
        {"lr": 0.003, "fusion.hidden_dim": 32},
        {"lr": 0.003, "fusion.hidden_dim": 64},
    ]
    # the demo config has lr 0.001 and fusion.hidden_dim 64: that trial changes nothing
    assert trials[1].overrides == {} and trials[1].id.startswith("base-")
    assert trials[2].overrides == {"lr": 0.003, "fusion.hidden_dim": 32}
    assert len({t.id for t in trials}) == 4
    train = with_overrides(TRAIN, trials[2].overrides)
    assert train["lr"] == 0.003 and train["fusion"]["hidden_dim"] == 32
    assert train["fusion"]["heads"] == TRAIN["fusion"]["heads"]  # the rest: the config's


def test_trial_ids_are_readable_stable_and_name_only_what_changes():
    a = trial_id({"lr": 0.003, "fusion.drop_modalities": ["face", "text"]})
    assert re.fullmatch(r"drop_modalities-face\+text_lr-0\.003-[0-9a-f]{8}", a), a
    assert a == trial_id({"fusion.drop_modalities": ["face", "text"], "lr": 0.003})
    assert a != trial_id({"lr": 0.003, "fusion.drop_modalities": ["face"]})
    assert trial_id({}) == trial_id({})
    # a grid value equal to the config's (1 == 1.0 as JSON sees it) is no override
    s = sweep({"lr": [0.001, 0.003]})
    assert [t.id for t in exhaustive(s, TRAIN)][0] == trial_id({})


def test_greedy_rounds_fix_earlier_winners_and_retry_the_current_value_first():
    s = sweep({"lr": [0.003, 0.01], "fusion.heads": [2, 4, 8]}, mode="greedy")
    r0 = greedy_round(s, TRAIN, 0, {})
    assert [t.values for t in r0] == [
        {"lr": 0.003, "fusion.heads": 4},
        {"lr": 0.01, "fusion.heads": 4},
    ]  # the listed values only; the later key stays at the config's value
    r1 = greedy_round(s, TRAIN, 1, {"lr": 0.01})
    assert [t.values["fusion.heads"] for t in r1] == [4, 2, 8]  # current value first
    assert {t.values["lr"] for t in r1} == {0.01}
    assert r1[0].id == r0[1].id  # the previous winner's trial: the same job, run once
    assert all(t.round == 1 for t in r1)


def test_pick_winner_and_round_result(tmp_path):
    assert pick_winner([0.5, 0.7, 0.7, None]) == 1  # the first of equal scores
    assert pick_winner([None, float("nan")]) is None
    s = sweep({"lr": [0.003, 0.01], "fusion.heads": [2, 8]}, mode="greedy")
    trials = greedy_round(s, TRAIN, 1, {"lr": 0.01})
    plan = round_plan(s, TRAIN, 1, trials, {"lr": 0.01}, seed=42)
    for t, score in zip(plan["trials"], [0.6, 0.6, 0.9], strict=True):
        t["source"] = str(tmp_path / f"{t['row']}.json")
        write_status(Path(t["source"]), Outcome("ok", dev_selection=score))
    result = round_result(plan)
    assert result["value"] == 8 and result["winner"] == trials[2].id
    assert result["winners"] == {"lr": 0.01, "fusion.heads": 8}
    for t in plan["trials"]:  # every trial failed: the key keeps its current value
        write_status(Path(t["source"]), Outcome.failed("out of memory: x"))
    assert round_result(plan)["value"] == TRAIN["fusion"]["heads"]


def test_trial_seeds():
    t = exhaustive(sweep({"lr": [0.003, 0.01]}), TRAIN)
    per_trial = sweep({"lr": [0.003, 0.01]})
    seeds = [trial_seed(per_trial, 42, x) for x in t]
    assert seeds[0] != seeds[1] and seeds == [trial_seed(per_trial, 42, x) for x in t]
    assert {trial_seed(sweep({"lr": [1]}, seeds="shared"), 42, x) for x in t} == {42}


# --------------------------------------------------------------------------- planning errors
@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"fusion.hiden_dim": [32]}, "unknown key 'sweeps.s.grid.fusion.hiden_dim'"),
        ({"lr": [0.01], "nope.lr": [1]}, "unknown key 'sweeps.s.grid.nope.lr'"),
        ({"fusion.heads.x": [1]}, "unknown key 'sweeps.s.grid.fusion.heads.x'"),
        ({"lr": []}, "empty list for 'sweeps.s.grid.lr'"),
        ({"fusion.heads": [2, 0]}, "bad value for 'train.fusion.heads'.*'sweeps.s.grid"),
        ({}, "empty grid 'sweeps.s.grid'"),
    ],
)
def test_planning_errors_are_one_line_naming_the_key(grid, message):
    with pytest.raises(ConfigError, match=message) as e:
        check_sweep(sweep(grid), TRAIN)
    assert "\n" not in str(e.value)


# --------------------------------------------------------------------------- failure rows
def test_failure_reasons():
    import torch

    assert failure_reason(torch.OutOfMemoryError("CUDA out of memory. Tried")).startswith(
        "out of memory"
    )
    assert failure_reason(RuntimeError("DefaultCPUAllocator: can't allocate: out of memory"))
    assert failure_reason(ValueError("hidden size 16 is not divisible by 3 heads")) == (
        "invalid settings: hidden size 16 is not divisible by 3 heads"
    )
    # the workflow's problems fail the job instead
    assert failure_reason(CheckpointError("bad folder")) is None
    assert failure_reason(RuntimeError("boom")) is None
    assert failure_reason(FileNotFoundError("x")) is None


def test_divergence_is_read_from_the_curves(tmp_path):
    curves = tmp_path / "curves.csv"
    curves.write_text("epoch,lr,train_loss,dev_selection\n1,0.001,1.2,0.3\n2,0.001,nan,0.2\n")
    assert divergence(curves) == "diverged: training loss nan at epoch 2"
    curves.write_text("epoch,lr,train_loss,dev_selection\n1,0.001,1.2,0.3\n")
    assert divergence(curves) is None


def test_a_failing_trial_writes_its_status_and_an_error_of_the_workflow_fails(
    tmp_path, monkeypatch
):
    import torch

    from mepr.sweep.trial import run_fusion_trial
    from mepr.train import stages

    def oom(**_):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(stages, "train_fusion", oom)
    args = dict(cross=[], manifests=[], params=TrainParams(), seed=3)
    out = run_fusion_trial(**args, out=tmp_path / "a")
    assert read_status(tmp_path / "a/status.json") == out
    assert out.status == "failed" and out.reason.startswith("out of memory: CUDA out of memory")

    def nan_loss(*, out, **_):
        (out / "curves.csv").write_text("epoch,lr,train_loss,dev_selection\n1,0.1,inf,0.5\n")
        return {"dev": {"selection": 0.5}, "test": {}}

    monkeypatch.setattr(stages, "train_fusion", nan_loss)
    assert run_fusion_trial(**args, out=tmp_path / "b").reason.startswith("diverged")

    def broken(**_):
        raise CheckpointError("results/unimodal/face/cross: no config.json")

    monkeypatch.setattr(stages, "train_fusion", broken)
    with pytest.raises(CheckpointError):
        run_fusion_trial(**args, out=tmp_path / "c")
    assert not (tmp_path / "c/status.json").exists()


# --------------------------------------------------------------------------- the table
def _metrics(sel, wacc=0.5, acc=0.8):
    return {
        "dev": {"selection": sel},
        "test": {
            "emotion": {"mWACC": wacc, "mF1": 0.4, "mUAR": 0.4},
            "personality": {"mACC": acc, "mCCC": 0.1},
        },
    }


def test_table_ranks_on_dev_score_with_failed_and_skipped_rows_after(tmp_path):
    rows = []
    for name, outcome in [
        ("a", Outcome("ok", dev_selection=0.6, test={"mWACC": 0.9}, seed=1)),
        ("b", Outcome.failed("diverged: training loss nan at epoch 3", 2)),
        ("c", Outcome("ok", dev_selection=0.7, test={"mWACC": 0.1}, seed=3)),
    ]:
        write_status(tmp_path / f"{name}.json", outcome)
        rows.append(PlannedRow(name, name, "status", str(tmp_path / f"{name}.json")))
    (tmp_path / "m.json").write_text(json.dumps(_metrics(0.65)))
    rows.append(PlannedRow("m", "metrics", "metrics", str(tmp_path / "m.json")))
    rows.append(PlannedRow("s", "skip", "skipped", reason="already off"))
    table = build_rows(rows, rank=True)
    # the dev score ranks, never the test metrics (a has the best test mWACC)
    assert [r["row"] for r in table] == ["c", "m", "a", "b", "s"]
    assert [r["rank"] for r in table] == [1, 2, 3, None, None]
    write_table(table, tmp_path / "t.md", tmp_path / "t.csv", "T", ["note"])
    with (tmp_path / "t.csv").open() as f:
        got = list(csv.DictReader(f))
    assert got[3]["status"] == "failed" and got[3]["reason"].startswith("diverged")
    assert got[1]["test_mWACC"] == "0.5000" and got[1]["test_mACC"] == "0.8000"
    assert got[4]["status"] == "skipped" and got[4]["reason"] == "already off"
    md = (tmp_path / "t.md").read_text()
    assert "| b | 4 |" not in md and "diverged: training loss nan at epoch 3" in md


# --------------------------------------------------------------------------- the DAG
def snakemake(work: Path, *args: str, config: str = "config.yaml", timeout: int = 600):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        *args,
        "--configfile",
        str(work / config),
    ]  # fmt: skip (--configfile last: it ends a list-taking flag such as --allowed-rules)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)


def planned(proc) -> dict[str, int]:
    """rule -> jobs a dry run plans (its job stats table)."""
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    if "Nothing to be done" in out:
        return {}
    stats = out.split("Job stats:", 1)[1].split("total", 1)[0]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", stats, re.M)}


# tiny and fast: the real runs below train a few epochs of a 16-wide fusion
SMALL_TRAIN = {
    "device": "cpu",
    "max_epochs": 3,
    "patience": 3,
    "fusion": {"hidden_dim": 16, "heads": 2, "max_epochs": 3},
}


def write_config(work: Path, name: str = "config.yaml", **sections) -> str:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["train"] = {**cfg["train"], **SMALL_TRAIN}
    cfg.update(sections)
    (work / name).write_text(yaml.safe_dump(cfg, sort_keys=False))
    return name


def fake_stage2(work: Path, seed: int = 0) -> None:
    """Stage-2 outputs of every modality for the demo corpora, as the main run leaves them
    (config.json + features.parquet), and their manifests: noisy features that carry each
    clip's labels, so a fusion trains on them in seconds."""
    rng = np.random.default_rng(seed)
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    videos = []
    for corpus, c in sorted(cfg["corpora"].items()):
        task = c["task"]
        rows = []
        for split, n in (("train", 24), ("dev", 8), ("test", 8)):
            for _ in range(n):
                vid = f"{corpus}_{len(rows):03d}"
                emotion = np.eye(len(EMOTIONS))[rng.integers(len(EMOTIONS))]
                traits = rng.uniform(0, 1, len(TRAITS))
                rows.append(
                    {
                        "video_id": vid, "corpus": corpus, "path": f"/v/{vid}.mp4",
                        "split": split, "task": task, "size_bytes": 1,
                        "shard": shards.shard_of(vid, 2),
                        "emotion": emotion.tolist() if task == "emotion" else None,
                        "traits": traits.tolist() if task == "personality" else None,
                        "transcript": None,
                    }
                )  # fmt: skip
                videos.append((vid, corpus, split, emotion, traits))
        shards.write_table(rows, shards.MANIFEST, work / layout.MANIFEST.format(corpus=corpus))
    for m in MODALITIES:
        folder = work / layout.CROSS_DIR.format(modality=m)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps({"stage": "cross", "modality": m}))
        feats = []
        for vid, corpus, split, emotion, traits in videos:
            signal = np.concatenate([emotion, traits, np.zeros(4)])
            feats.append(
                {
                    "video_id": vid, "corpus": corpus, "split": split, "present": True,
                    "emotion_features": (signal[:8] + rng.normal(0, 0.5, 8)).tolist(),
                    "personality_features": (signal[8:] + rng.normal(0, 0.5, 8)).tolist(),
                    "emotion_logits": (3 * emotion + rng.normal(0, 1, 7)).tolist(),
                    "personality_scores": np.clip(traits + rng.normal(0, 0.1, 5), 0, 1).tolist(),
                }
            )  # fmt: skip
        shards.write_table(feats, CROSS_FEATURES, folder / "features.parquet")


# jobs that may run: everything upstream of the stage-2 folders is taken as given (a flag
# taking a list: the targets go before it)
SWEEP_RULES = ("--allowed-rules", "fusion_trial", "sweep_round", "sweep_table")


def test_dry_run_plans_one_job_per_trial(tmp_path):
    grid = {"lr": [0.001, 0.003], "fusion.hidden_dim": [16, 32]}
    write_config(tmp_path, sweeps={"x": {"grid": grid}, "g": {"mode": "greedy", "grid": grid}})
    jobs = planned(snakemake(tmp_path, "-n", "results/sweeps/x/table.md"))
    assert jobs["fusion_trial"] == 4 and jobs["sweep_table"] == 1
    assert "sweep_round" not in jobs
    # greedy: round 0's two trials now, round 1's after the checkpoint
    jobs = planned(snakemake(tmp_path, "-n", "results/sweeps/g/table.md"))
    assert jobs["fusion_trial"] == 2 and jobs["sweep_round"] == 2, jobs


def test_a_bad_grid_fails_at_planning_with_one_line(tmp_path):
    write_config(tmp_path, sweeps={"x": {"grid": {"fusion.hiden_dim": [16]}}})
    proc = snakemake(tmp_path, "-n", "results/fusion/metrics.json")
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if "config error" in line]
    assert errors == [
        "config error: unknown key 'sweeps.x.grid.fusion.hiden_dim': train has no 'fusion.hiden_dim'"
    ]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """A 2-trial sweep run for real: heads 2 trains, heads 3 cannot (16 is not divisible)."""
    work = tmp_path_factory.mktemp("sweep")
    fake_stage2(work)
    write_config(work, sweeps={"heads": {"grid": {"fusion.heads": [2, 3]}}})
    proc = snakemake(work, "results/sweeps/heads/table.md", "--cores", "2", *SWEEP_RULES)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return work


def _table(work: Path, name: str) -> list[dict]:
    with (work / f"results/sweeps/{name}/table.csv").open() as f:
        return list(csv.DictReader(f))


def test_real_sweep_ranks_trials_and_keeps_the_failed_one(swept):
    rows = _table(swept, "heads")
    assert [r["status"] for r in rows] == ["ok", "failed"]
    assert rows[0]["rank"] == "1" and json.loads(rows[0]["overrides"]) == {"fusion.heads": 2}
    assert rows[0]["row"].startswith("base-")  # 2 heads is the SMALL_TRAIN value
    assert 0 < float(rows[0]["dev_selection"]) <= 1 and rows[0]["test_mACC"]
    assert rows[1]["reason"] == "invalid settings: train.fusion.hidden_dim: hidden size 16 " \
        "is not divisible by 3 heads"  # fmt: skip
    metrics = json.loads(
        (swept / f"results/sweeps/heads/{rows[0]['row']}/metrics.json").read_text()
    )
    assert metrics["dev"]["selection"] == pytest.approx(float(rows[0]["dev_selection"]), abs=1e-4)
    assert "heads" in (swept / "results/sweeps/heads/table.md").read_text()


def test_editing_one_trial_reruns_that_trial_and_the_table_only(swept):
    assert planned(snakemake(swept, "results/sweeps/heads/table.md", "-n", *SWEEP_RULES)) == {}
    name = write_config(swept, "edited.yaml", sweeps={"heads": {"grid": {"fusion.heads": [2, 4]}}})
    proc = snakemake(swept, "results/sweeps/heads/table.md", "-n", *SWEEP_RULES, config=name)
    assert planned(proc) == {"fusion_trial": 1, "sweep_table": 1}
    assert "results/sweeps/heads/heads-4-" in proc.stdout
