"""The paper's ablations (mepr.sweep.ablations, rules ablation_row / ablation_table): which
rows the config plans, skipped rows, the table's columns, the DAG, and one real table on
tiny synthetic stage-2 features (tests/test_sweep.py's)."""

from __future__ import annotations

import csv
import json

import pytest
from test_sweep import TRAIN, fake_stage2, planned, snakemake, write_config

from mepr import layout
from mepr.config.sweeps import ABLATION_ROWS
from mepr.sweep.ablations import plan_rows, trained_rows
from mepr.sweep.grid import with_overrides

SINGLE = "results/fusion_single/{task}/metrics.json"


def _plan(train=TRAIN, rows=ABLATION_ROWS, single=SINGLE):
    return plan_rows(
        list(rows),
        train,
        full_metrics=layout.FUSION_METRICS,
        row_status=layout.ABLATION_ROW,
        single_task_metrics=single,
        seed=42,
    )


def test_default_rows_are_the_papers_with_full_first():
    plan = _plan()
    assert [p.row for p in plan] == ["full", *ABLATION_ROWS]
    assert plan[0].source == layout.FUSION_METRICS and plan[0].kind == "metrics"
    kinds = {p.row: p.kind for p in plan}
    # the demo config has the personality guide off already: nothing to ablate
    assert kinds["no_guide_personality"] == "skipped"
    assert [p.row for p in trained_rows(plan)] == [
        "no_graph_attention", "no_cross_attention", "no_predict_projection_emotion",
        "no_predict_projection_personality", "no_guide_emotion",
        "without_face", "without_body", "without_scene", "without_audio", "without_text",
    ]  # fmt: skip
    by_row = {p.row: p for p in plan}
    assert by_row["no_cross_attention"].values == {"fusion.cross_attention": False}
    assert by_row["without_text"].values == {"fusion.drop_modalities": ["text"]}
    assert with_overrides(TRAIN, by_row["without_text"].values)["fusion"]["drop_modalities"] == [
        "text"
    ]
    assert all(p.seed == 42 for p in trained_rows(plan))  # the full system's seed


def test_single_task_rows_read_the_single_task_fusions_metrics():
    rows = {p.row: p for p in _plan()}
    for task in ("emotion", "personality"):
        row = rows[f"single_task_{task}"]
        assert (row.kind, row.source) == ("metrics", f"results/fusion_single/{task}/metrics.json")


def test_modality_rows_add_to_what_the_config_leaves_out():
    train = with_overrides(TRAIN, {"fusion.drop_modalities": ["body", "scene", "audio"]})
    plan = {p.row: p for p in _plan(train)}
    assert plan["without_face"].values == {
        "fusion.drop_modalities": ["face", "body", "scene", "audio"]
    }
    assert (
        plan["without_body"].kind == "skipped" and "already left out" in plan["without_body"].reason
    )
    last = with_overrides(TRAIN, {"fusion.drop_modalities": ["body", "scene", "audio", "text"]})
    face = {p.row: p for p in _plan(last)}["without_face"]
    assert face.kind == "skipped" and "no modality is left" in face.reason


def test_dry_run_plans_one_job_per_row(tmp_path):
    write_config(tmp_path)
    jobs = planned(snakemake(tmp_path, "-n", "results/ablations/table.md"))
    assert jobs["ablation_row"] == 10 and jobs["ablation_table"] == 1
    assert jobs["train_fusion"] == 1  # the 'full' row is the main run's fusion
    write_config(tmp_path, ablations={"rows": ["without_face", "no_guide_personality"]})
    jobs = planned(snakemake(tmp_path, "-n", "results/ablations/table.md"))
    assert jobs["ablation_row"] == 1


@pytest.fixture(scope="module")
def ablated(tmp_path_factory):
    work = tmp_path_factory.mktemp("ablations")
    fake_stage2(work)
    rows = ["no_graph_attention", "without_text", "no_guide_personality", "single_task_emotion"]
    write_config(work, ablations={"rows": rows})
    proc = snakemake(
        work, "results/ablations/table.md", "--cores", "2",
        "--allowed-rules", "ablation_row", "ablation_table", "train_fusion", "train_fusion_single",
    )  # fmt: skip
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    return work


def test_ablation_table_has_every_row_and_the_columns_others_read(ablated):
    with (ablated / "results/ablations/table.csv").open() as f:
        rows = list(csv.DictReader(f))
    need = {"row", "label", "status", "reason", "dev_selection", "test_mWACC", "test_mF1",
            "test_mACC", "test_mCCC"}  # fmt: skip
    assert need <= set(rows[0])
    by_row = {r["row"]: r for r in rows}
    assert [r["row"] for r in rows][:3] == ["full", "no_graph_attention", "without_text"]
    full = json.loads((ablated / layout.FUSION_METRICS).read_text())
    assert float(by_row["full"]["test_mWACC"]) == pytest.approx(
        full["test"]["emotion"]["mWACC"], abs=5e-5
    )
    for name in ("no_graph_attention", "without_text"):
        assert by_row[name]["status"] == "ok" and 0 < float(by_row[name]["dev_selection"]) <= 1
        status = json.loads((ablated / f"results/ablations/{name}/status.json").read_text())
        assert status["status"] == "ok"
    assert by_row["no_guide_personality"]["status"] == "skipped"
    assert by_row["single_task_emotion"]["status"] in ("ok", "skipped")
    text = json.loads((ablated / "results/ablations/without_text/metrics.json").read_text())
    assert text["modalities"] == ["face", "body", "scene", "audio"]
    assert "| full |" in (ablated / "results/ablations/table.md").read_text()
