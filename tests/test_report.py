"""Reports: the prediction pages rendered by a real headless Chromium, and `snakemake --report`.

One module fixture makes a finished workdir cheaply: the small system of test_predict's
`build_run` (stages trained in-process), plus placeholder files for the extraction outputs
it was not made from. Snakemake then runs the real report, pipeline-spec and predict rules
in it. Those files carry no Snakemake metadata, so the runs use `--rerun-triggers mtime`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import browser  # tests/browser.py
import numpy as np
import pytest
import yaml
from conftest import REPO
from test_predict import N_FRAMES, build_run

from mepr.labels import EMOTIONS, MODALITIES, TRAITS

CORPORA = ("demo_emo", "demo_pers")
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def chromium() -> str:
    exe = browser.find_chromium()
    if exe is None:
        script = REPO / "workflow/scripts/install-test-deps.sh"
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, check=False)
        exe = browser.find_chromium()
        if exe is None:
            pytest.skip(
                f"chromium is not installed and could not be installed: {proc.stderr.strip()[-300:]}"
            )
    return exe


def snakemake(work: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
           "--directory", str(work), "--configfile", str(work / "config.yaml"),
           "--rerun-triggers", "mtime", *args]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        logs = "\n".join(p.read_text()[-2000:] for p in (work / "results/logs").rglob("*.log")
                         if "report" in str(p) or "predict" in str(p))  # fmt: skip
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stderr[-4000:]}\n{logs}")
    return proc


def _age(paths, t: float) -> None:
    for p in paths:
        for f in [p, *(p.rglob("*") if p.is_dir() else [])]:
            os.utime(f, (t, t))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, demo_encoders, media) -> Path:
    """A finished demo-layout workdir, then `snakemake report_plots` and a predict target."""
    work = tmp_path_factory.mktemp("smk")
    results = build_run(work, demo_encoders)
    clips = work / "clips"
    clips.mkdir()
    shutil.copy(media["good"], clips / "astronaut.mp4")
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["n_shards"] = 1
    cfg["frames"]["n_frames"] = N_FRAMES
    cfg["predict"] = {"videos": {"clips": str(clips)}, "chunk": 8}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    # what the extraction stages would have left (build_run wrote the shards themselves)
    stages = ["manifest/all"] + [f"{s}/shard-0" for s in ("frames", "audio", "transcripts")]
    stages += [f"embed_{m}/shard-0" for m in MODALITIES]
    for c in CORPORA:
        (results / f"demo/{c}").mkdir(parents=True)
        (results / f"demo/{c}/labels.csv").write_text("video_id\n")
        for s in stages:
            (results / f"failures/{c}/{s}.parquet").parent.mkdir(parents=True, exist_ok=True)
            (results / f"failures/{c}/{s}.parquet").write_bytes(b"")
    # modification times in DAG order, all in the past
    t = time.time() - 3600
    order = [
        [results / "encoders", *results.glob("demo/*/labels.csv")],
        [*results.glob("corpora/*/manifest.parquet"), *results.glob("failures/*/manifest")],
        [
            results / "frames",
            results / "audio",
            *results.glob("failures/*/frames"),
            *results.glob("failures/*/audio"),
        ],
        [results / "transcripts", *results.glob("failures/*/transcripts")],
        [results / "embeddings", *results.glob("failures/*/embed_*")],
        [p for p in results.glob("unimodal/*/*") if p.name != "cross"],
        list(results.glob("unimodal/*/cross")),
        [results / "fusion"],
    ]
    for i, paths in enumerate(order):
        _age(paths, t + 10 * i)
    ran = snakemake(work, "--cores", "2", "report_plots", "results/predict/clips/index.html")
    jobs = set(re.findall(r"^(?:local)?rule (\w+):", ran.stdout + ran.stderr, flags=re.M))
    # the paper comparison of the report trains the ablation rows and single-task fusions
    assert jobs == {"report_stage1", "report_stage2", "report_fusion", "report_metrics",
                    "report_plots", "pipeline_spec", "predict", "paper_comparison",
                    "ablation_row", "ablation_table", "train_fusion_single"}, \
        ran.stderr[-3000:]  # fmt: skip
    return work


class Dom(HTMLParser):
    """Elements of a dumped DOM with their attributes and the chart (svg data-chart) they are in."""

    def __init__(self, text: str):
        super().__init__()
        self.elements: list[tuple[str, dict[str, str], str | None]] = []
        self._stack: list[tuple[str, str | None]] = []
        self.texts: dict[str | None, list[str]] = {}
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        chart = a.get("data-chart") if tag == "svg" else None
        chart = chart or (self._stack[-1][1] if self._stack else None)
        self.elements.append((tag, a, chart))
        if tag not in VOID:
            self._stack.append((tag, chart))

    def handle_endtag(self, tag):
        while self._stack:
            if self._stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        chart = self._stack[-1][1] if self._stack else None
        if data.strip():
            self.texts.setdefault(chart, []).append(data.strip())

    def find(self, tag: str, cls: str | None = None, chart: str | None = None):
        return [
            a for t, a, c in self.elements
            if t == tag and (cls is None or cls in a.get("class", "").split()) and (chart is None or c == chart)
        ]  # fmt: skip


# --------------------------------------------------------------------------- browser
def test_video_report_renders_its_charts_in_chromium(workdir, chromium, tmp_path):
    page = workdir / "results/predict/clips/astronaut/report.html"
    record = json.loads(page.with_name("prediction.json").read_text())
    dom = Dom(browser.dump_dom(page))
    root = dom.find("html")[0]
    assert int(root["data-scroll-width"]) <= int(root["data-inner-width"])  # no sideways scrolling

    bars = dom.find("rect", "bar", chart="emotion")
    assert [b["data-label"] for b in bars] == list(EMOTIONS)
    probs = record["emotion"]["probabilities"]
    widths = np.array([float(b["data-rendered-width"]) for b in bars])
    values = np.array([probs[e] for e in EMOTIONS])
    px_per_unit = widths / values  # laid out to scale: one width per unit of probability
    assert px_per_unit.min() > 200 and np.ptp(px_per_unit) / px_per_unit.mean() < 0.03
    labels = dom.texts["emotion"]
    assert {"Neutral", "Happiness", "Surprise", "1/7"} <= set(labels)

    trait_bars = dom.find("rect", "bar", chart="traits")
    assert [b["data-label"] for b in trait_bars] == list(TRAITS)
    assert all(float(b["data-rendered-width"]) > 0 for b in trait_bars)
    assert {"Openness", "Non-neuroticism"} <= set(dom.texts["traits"])

    cells = {c: dom.find("rect", "cell", chart=c) for c in
             ("modality-emotion", "modality-traits", "graph-attention", "query-attention", "contributions")}  # fmt: skip
    assert len(cells["modality-emotion"]) == 6 * 7 and len(cells["modality-traits"]) == 6 * 5
    assert len(cells["graph-attention"]) == 25 and len(cells["query-attention"]) == 10
    assert len(cells["contributions"]) == 5 * 12
    assert all(float(c["data-rendered-width"]) > 10 for cs in cells.values() for c in cs)
    fused = [c for c in cells["modality-emotion"] if c["data-row"] == "fused"]
    assert [float(c["data-value"]) for c in fused] == pytest.approx(values, abs=1e-5)

    assert len(dom.find("path", "wave", chart="waveform")) == 1  # the clip has speech
    assert len(dom.find("svg", "keyframe-scene")) == N_FRAMES
    faces = dom.find("img", "face")
    assert len(faces) == N_FRAMES and all(int(f["data-natural-width"]) > 0 for f in faces)
    for tag, a, _ in dom.elements:  # self-contained: nothing to fetch
        for key in ("src", "href"):
            assert not re.match(r"^(https?:)?//", a.get(key, "")), (tag, a)
    from mepr.report.summary import summarize

    assert summarize(record)["headline"] in dom.texts[None]  # the plain-language summary

    png = browser.screenshot(page, tmp_path / "report.png", height=1600)
    import cv2

    img = cv2.imread(str(png))
    assert img.shape[:2] == (1600, 1280)
    assert img.std() > 30  # a page with content, not a blank canvas
    header = img[20:60, 200:1000].reshape(-1, 3).mean(0)
    assert header[0] > header[2] + 30  # the indigo header band (BGR: blue > red)


def test_index_lists_every_video_in_chromium(workdir, chromium):
    page = workdir / "results/predict/clips/index.html"
    dom = Dom(browser.dump_dom(page))
    rows = dom.find("tr")
    assert [r["data-video"] for r in rows if "data-video" in r] == ["astronaut"]
    assert len(dom.find("rect", "bar", chart="emotion-mini")) == 7
    assert len(dom.find("rect", "bar", chart="traits-mini")) == 5
    links = [a["href"] for a in dom.find("a")]
    assert "astronaut/report.html" in links and (page.parent / "astronaut/report.html").exists()


# --------------------------------------------------------------------------- snakemake
def test_snakemake_report_has_plots_and_metrics(workdir):
    report = workdir / "report.html"
    snakemake(workdir, f"--report={report}", "report_plots")
    text = report.read_text()
    for name in ("curves.svg", "confusion.svg", "scores.svg", "metrics.html", "metrics.json",
                 "comparison.html", "paper comparison"):  # fmt: skip
        assert name in text
    for category in ("Stage 1", "Stage 2", "Stage 3 (fusion)", "Metrics", "Raw metrics"):
        assert category in text
    figures = workdir / "results/report"
    for stage in ("stage1", "stage2", "fusion"):
        for fig in ("curves", "confusion", "scores"):
            svg = (figures / stage / f"{fig}.svg").read_text()
            assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    table = (figures / "metrics.html").read_text()
    assert table.count("<tr class='stage1'>") == 10 and table.count("<tr class='stage2'>") == 5
    assert "mWACC" in table and "baseline" in table


def test_predict_rule_output_matches_the_cli(workdir):
    summary = json.loads((workdir / "results/predict/clips/summary.json").read_text())
    assert summary["n_ok"] == 1 and summary["failed"] == []
    assert (workdir / "results/fusion/pipeline.json").exists()


# --------------------------------------------------------------------------- pieces
def test_svg_charts_escape_labels_and_mark_missing_cells():
    from mepr.report import svg

    chart = svg.hbar_chart("x", [("a", "<b>&", 0.5, "#123456")], title="t<")
    assert "&lt;b&gt;&amp;" in chart and "<b>" not in chart
    hm = svg.heatmap("h", ["r"], ["c1", "c2"], [[0.2, None]], title="h")
    assert hm.count('class="cell na"') == 1 and hm.count('class="cell"') == 1


def test_summary_speaks_plainly():
    from mepr.report.summary import emotion_headline

    probs = dict.fromkeys(EMOTIONS, 0.0)
    assert emotion_headline({**probs, "happiness": 0.7, "neutral": 0.3}) == "Clearly happy (70 %)"
    assert emotion_headline({**probs, "sadness": 0.4, "fear": 0.35, "neutral": 0.25}).startswith(
        "Between sad"
    )
    assert emotion_headline({**probs, "neutral": 0.9, "anger": 0.1}).startswith(
        "Comes across as neutral"
    )
