"""The paper comparison (`mepr paper-compare`, rule paper_comparison): its data, its numbers,
its banner, its tolerance of missing results, and its place in the DAG."""

from __future__ import annotations

import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mepr.cli import main
from mepr.labels import MODALITIES
from mepr.report import paper

REPO = Path(__file__).resolve().parents[1]
DEMO = (
    paper.Corpus("demo_emo", "demo", "emotion"),
    paper.Corpus("demo_pers", "demo", "personality"),
)
PAPER = (paper.Corpus("mosei", "mosei", "emotion"), paper.Corpus("fiv2", "fiv2", "personality"))


# --------------------------------------------------------------------------- the data file
def test_every_published_number_has_its_table_row_and_source():
    pubs = paper.load_published()
    assert pubs, "the data file holds no rows"
    for p in pubs:
        assert p.table and p.row and p.metric
        assert p.source_url.startswith("https://"), p
        assert p.source_section, p
        # a reachable table holds numbers only; an unreachable one holds none (no guesses)
        if p.reachable:
            assert p.value is not None and math.isfinite(p.value), p
        else:
            assert p.value is None, p
    keys = [(p.table, p.row, p.metric) for p in pubs]
    assert len(keys) == len(set(keys)), "a (table, row, metric) appears twice"


def test_the_abstracts_headline_numbers_are_stored():
    got = {(p.row, p.metric): p.value for p in paper.load_published() if p.table == "headline"}
    assert got == {
        ("single_task_cross_domain", "mWACC"): 70.26,
        ("single_task_cross_domain", "mACC"): 92.88,
        ("multi_task_cross_domain", "mWACC"): 64.26,
        ("multi_task_cross_domain", "mACC"): 92.00,
    }


def test_text_readme_averages_agree_with_their_rows():
    """A typo in one of the text table's numbers breaks its row's published Average."""
    rows: dict[str, dict[str, float]] = {}
    for p in paper.load_published():
        if p.table == "text_modality":
            rows.setdefault(p.row, {})[p.metric] = p.value
    assert len(rows) == 4
    for row, v in rows.items():
        parts = [v[m] for m in ("mUAR", "mF1", "mACC", "mCCC")]
        assert round(sum(parts) / 4, 2) == pytest.approx(v[paper.AVERAGE]), row


def test_every_mepr_locator_names_a_result_mepr_writes():
    run = paper.RunMetrics(paper.RunFiles(corpora=DEMO))
    for p in paper.load_published():
        if p.mepr is None:
            continue
        kind, _, arg = p.mepr.partition(":")
        assert kind in {"fusion", "fusion_single", "stage1", "stage2", "ablation"}, p.mepr
        if kind in {"stage1", "stage2"}:
            assert arg in MODALITIES, p.mepr
        if p.metric != paper.AVERAGE:
            assert run.cell(p.mepr, p.metric).note == "not run"  # nothing on disk


def test_ablation_rows_are_the_ablation_tables_row_ids():
    """The published ablation rows stand beside mepr's rows of the same id (config
    ablations.rows, declared in the schema), so no row of either side goes unmatched."""
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    rows = schema["properties"].get("ablations", {}).get("properties", {}).get("rows")
    if rows is None:
        pytest.skip("the ablation rows are not declared in this checkout")
    ours = {
        p.mepr.removeprefix("ablation:")
        for p in paper.load_published()
        if p.mepr and p.mepr.startswith("ablation:")
    }
    assert ours == set(rows["default"])


def test_a_value_without_a_source_or_an_unknown_metric_is_refused(tmp_path):
    data = yaml.safe_load(paper.DATA_FILE.read_text())
    data["tables"][0]["rows"][0]["values"] = {"mBOGUS": 1.0}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(ValueError, match="unknown metric 'mBOGUS'"):
        paper.load_published(bad)
    data = yaml.safe_load(paper.DATA_FILE.read_text())
    data["tables"][0]["source"] = "nowhere"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises(KeyError, match="nowhere"):
        paper.load_published(bad)


# ----------------------------------------------------------------------- synthetic results
def _split(wacc=None, f1=None, uar=None, acc=None, ccc=None) -> dict:
    out = {}
    if wacc is not None:
        out["emotion"] = {"mWACC": wacc, "mF1": f1, "mUAR": uar}
    if acc is not None:
        out["personality"] = {"mACC": acc, "mCCC": ccc}
    return out


def _write(path: Path, obj: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


@pytest.fixture
def run(tmp_path) -> paper.RunFiles:
    """A run with the multi-task fusion, text stage 1, the emotion single-task fusion only
    (no personality file) and an ablation table with a failed row and rows left out."""
    r = tmp_path / "results"
    fusion = _write(
        r / "fusion/metrics.json",
        {
            "dev": _split(0.5, 0.5, 0.5, 0.8, 0.1),
            "test": _split(0.6012345, 0.55, 0.6, 0.9134, 0.25),
            "unimodal": {"text": {"test": _split(0.6, 0.5848, 0.648149, 0.8883, 0.3097)}},
        },
    )
    s1 = [
        _write(
            r / "unimodal/text/emo/metrics.json",
            {"modality": "text", "task": "emotion", "test": _split(0.61, 0.5978, 0.6502)},
        ),
        _write(
            r / "unimodal/text/pers/metrics.json",
            {"modality": "text", "task": "personality", "test": _split(acc=0.889, ccc=0.2683)},
        ),
        _write(
            r / "unimodal/face/emo/metrics.json",
            {"modality": "face", "task": "emotion", "test": _split(0.7, 0.6, 0.5)},
        ),
    ]
    single = {
        "emotion": _write(
            r / "fusion_single/emotion/metrics.json", {"test": _split(0.7126, 0.6, 0.6)}
        )
    }
    single["personality"] = r / "fusion_single/personality/metrics.json"  # never written
    abl = r / "ablations/table.csv"
    abl.parent.mkdir(parents=True)
    cols = ["row", "label", "status", "reason", "dev_selection", "test_mWACC", "test_mF1",
            "test_mACC", "test_mCCC"]  # fmt: skip
    with abl.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(cols)
        w.writerow(["no_graph_attention", "x", "ok", "", "0.7", "0.6", "0.5", "0.9", "0.2"])
        w.writerow(["without_face", "x", "failed", "loss diverged (NaN)", "", "", "", "", ""])
    return paper.RunFiles(DEMO, fusion=fusion, single=single, stage1=tuple(s1), ablations=abl)


def _lines(files: paper.RunFiles) -> dict[tuple[str, str, str], paper.Line]:
    lines = paper.compare(paper.load_published(), paper.RunMetrics(files))
    return {(ln.pub.table, ln.pub.row, ln.pub.metric): ln for ln in lines}


def test_numbers_and_differences(run):
    got = _lines(run)
    multi = got["headline", "multi_task_cross_domain", "mWACC"]
    assert multi.mepr.value == pytest.approx(60.12345)
    assert multi.difference == pytest.approx(60.12 - 64.26)  # as shown: two decimals each
    assert got["headline", "multi_task_cross_domain", "mACC"].difference == pytest.approx(-0.66)
    single = got["headline", "single_task_cross_domain", "mWACC"]
    assert single.mepr.value == pytest.approx(71.26) and single.difference == pytest.approx(1.0)
    # stage 2 text from the fusion's unimodal block, stage 1 text per task's corpus
    md = got["text_modality", "mamba_transformer_md", "mUAR"]
    assert md.mepr.value == pytest.approx(64.8149) and md.difference == pytest.approx(0.0)
    assert got["text_modality", "mamba_transformer_sd", "mACC"].mepr.value == pytest.approx(88.9)
    assert got["text_modality", "mamba_transformer_sd", "mCCC"].difference == pytest.approx(0.0)
    # Average: the mean of mepr's four values of that row, as shown (two decimals each)
    avg = got["text_modality", "mamba_transformer_sd", paper.AVERAGE]
    assert avg.mepr.value == pytest.approx((59.78 + 65.02 + 88.90 + 26.83) / 4)
    assert got["text_modality", "transformer_sd", "mUAR"].mepr.note == "no counterpart"
    assert got["text_modality", "transformer_sd", "mUAR"].difference is None


def test_missing_results_read_not_run(run):
    got = _lines(run)
    assert got["headline", "single_task_cross_domain", "mACC"].mepr.note == "not run"
    ok = got["fusion_ablations", "no_graph_attention", "mWACC"]
    assert ok.mepr.value == pytest.approx(60.0) and ok.pub.value is None and ok.difference is None
    failed = got["fusion_ablations", "without_face", "mACC"].mepr
    assert failed.value is None and failed.note == "failed: loss diverged (NaN)"
    assert got["fusion_ablations", "without_body", "mACC"].mepr.note == "not run"  # row left out
    assert got["fusion_ablations", "full", "mACC"].mepr.value == pytest.approx(91.34)
    assert got["unimodal_single_domain", "face", "mWACC"].mepr.value == pytest.approx(70.0)
    assert got["unimodal_single_domain", "body", "mWACC"].mepr.note == "not run"
    assert got["unimodal_cross_domain", "face", "mACC"].mepr.note == "face not fused"
    # an ablation table without the ablations at all
    none = paper.RunMetrics(paper.RunFiles(DEMO, ablations=Path("/nonexistent/table.csv")))
    assert none.cell("ablation:no_graph_attention", "mWACC").note == "not run"


def test_files_written_and_the_demo_banner(run, tmp_path):
    md_path, csv_path, html_path = paper.paper_compare(run, tmp_path / "paper")
    md = md_path.read_text()
    assert paper.DEMO_BANNER in md and "shape only" in html_path.read_text()
    assert "`demo_emo` (demo, emotion)" in md
    assert re.search(
        r"\| multi-task cross-domain fusion .* \| mWACC \| 64\.26 \| 60\.12 \| -4\.14 \|", md
    )
    assert "| not reachable offline | 60.00 |" in md
    assert "## Not reachable offline" in md
    rows = list(csv.DictReader(csv_path.open()))
    assert len(rows) == len(paper.load_published())
    head = next(
        r for r in rows if r["row"] == "single_task_cross_domain" and r["metric"] == "mWACC"
    )
    assert (head["published"], head["mepr"], head["difference"]) == ("70.26", "71.26", "+1.00")
    assert head["source_url"].startswith("https://github.com/LEYA-HSE/SSL-MEPR/")


def test_no_banner_on_the_papers_corpora(run, tmp_path):
    files = paper.RunFiles(PAPER, fusion=run.fusion, stage1=run.stage1)
    md = paper.paper_compare(files, tmp_path)[0].read_text()
    assert paper.DEMO_BANNER not in md and "shape only" not in md
    assert "`mosei` (mosei, emotion), `fiv2` (fiv2, personality)" in md
    assert "not exactly the paper's pair" not in md


def test_the_command(run, tmp_path):
    out = tmp_path / "cmd"
    argv = ["paper-compare", "--corpus", "mosei=mosei:emotion", "fiv2=fiv2:personality",
            "--fusion", str(run.fusion), "--stage1", *map(str, run.stage1),
            "--single", f"emotion={run.single['emotion']}", "--ablations", str(run.ablations),
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    rows = list(csv.DictReader((out / "comparison.csv").open()))
    got = {(r["table"], r["row"], r["metric"]): r for r in rows}
    assert got["headline", "single_task_cross_domain", "mWACC"]["mepr"] == "71.26"
    assert got["headline", "single_task_cross_domain", "mACC"]["mepr_note"] == "not run"
    assert "Demo corpora" not in (out / "comparison.md").read_text()
    assert main(["paper-compare", "--corpus", "x=demo", "--out", str(out)]) == 1


# ------------------------------------------------------------------------------ the DAG
def _dry_run(workdir: Path, snakefile: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory",
           str(workdir), "--configfile", str(workdir / "config.yaml"), "-n", "-p",
           "results/paper/comparison.md"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _paper_job(log: str) -> str:
    return log.split("rule paper_comparison:")[1].split("\n\n")[0]


def test_dry_run_plans_the_comparison(tmp_path):
    (tmp_path / "config.yaml").write_text((REPO / "config.yaml").read_text())
    job = _paper_job(_dry_run(tmp_path, REPO / "Snakefile"))
    assert "results/fusion/metrics.json" in job
    assert "results/unimodal/text/demo_pers/metrics.json" in job
    assert "output: results/paper/comparison.md, results/paper/comparison.html" in job
    assert "--corpus demo_emo=demo:emotion demo_pers=demo:personality" in job
    # the report collects it: it is among the report_plots aggregate's inputs
    block = (REPO / "workflow/rules/report.smk").read_text().split("rule report_plots:")[1]
    assert 'layout.file_in(layout.PAPER_DIR, "comparison.md")' in block


def test_dry_run_wires_the_single_task_fusions_and_the_ablations(tmp_path):
    """Their outputs are inputs and command-line arguments of the comparison."""
    (tmp_path / "config.yaml").write_text((REPO / "config.yaml").read_text())
    job = _paper_job(_dry_run(tmp_path, REPO / "Snakefile"))
    single = "results/fusion_single/{t}/metrics.json"
    assert single.format(t="emotion") in job and single.format(t="personality") in job
    assert "results/ablations/table.csv" in job
    assert (
        f"--single emotion={single.format(t='emotion')} "
        f"personality={single.format(t='personality')} --ablations results/ablations/table.csv"
    ) in job
