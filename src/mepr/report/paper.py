"""The paper's published results beside this run's (`mepr paper-compare`).

Reads the published numbers (data/paper_results.yaml: table, row, metric, value, source) and
this run's metrics files, and writes results/paper/comparison.{md,csv,html}: per published
metric the value, mepr's value (percent, two decimals, as the paper) and the difference.
Every input of the run may be missing (a rule that has not landed, an ablation row that
failed): its cell then says so instead of failing the report.
"""

from __future__ import annotations

import csv
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

DATA_FILE = Path(__file__).with_name("data") / "paper_results.yaml"

# The metric names the task of a published number: the paper reports emotion metrics on MOSEI
# and personality metrics on FIv2, mepr on the run's emotion / personality corpus.
METRIC_TASK = {"mWACC": "emotion", "mF1": "emotion", "mUAR": "emotion"}
METRIC_TASK.update({"mACC": "personality", "mCCC": "personality"})
AVERAGE = "Average"  # the mean of a row's other metrics (the text README's last column)
PAPER_ADAPTERS = {"mosei": "emotion", "fiv2": "personality"}
DEMO_BANNER = (
    "**Demo corpora: the published column is there for shape only.** This run used the"
    " offline demo corpora (adapter `demo`), not CMU-MOSEI and ChaLearn FIv2; its numbers"
    " and the differences say nothing about how close mepr comes to the paper."
)


# ------------------------------------------------------------------------- published data
@dataclass(frozen=True)
class Published:
    """One published number (or a row of a table not reachable offline: value None)."""

    table: str
    table_title: str
    row: str
    label: str
    metric: str
    value: float | None
    source_url: str
    source_section: str
    mepr: str | None
    reachable: bool
    split: str


def load_published(path: Path = DATA_FILE) -> list[Published]:
    """Every (table, row, metric) of the data file, in its order, with its table's source."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    sources = data["sources"]
    out: list[Published] = []
    for t in data["tables"]:
        src = sources[t["source"]]
        for r in t["rows"]:
            values = r.get("values") or dict.fromkeys(t.get("metrics", ()))
            if not values:
                raise ValueError(f"{path}: {t['id']}/{r['row']}: no values and no metrics")
            for metric, value in values.items():
                if metric != AVERAGE and metric not in METRIC_TASK:
                    raise ValueError(f"{path}: {t['id']}/{r['row']}: unknown metric {metric!r}")
                out.append(
                    Published(
                        table=t["id"],
                        table_title=t["title"],
                        row=r["row"],
                        label=r.get("label", r["row"]),
                        metric=metric,
                        value=None if value is None else float(value),
                        source_url=src["url"],
                        source_section=" ".join(str(src["section"]).split()),
                        mepr=r.get("mepr"),
                        reachable=bool(t["reachable"]),
                        split=t["split"],
                    )
                )
    return out


# ---------------------------------------------------------------------------- this run
@dataclass(frozen=True)
class Corpus:
    name: str
    adapter: str
    task: str


@dataclass(frozen=True)
class RunFiles:
    """This run's metrics files; any of them may be absent on disk."""

    corpora: tuple[Corpus, ...]
    fusion: Path | None = None
    single: dict[str, Path] = field(default_factory=dict)  # task -> metrics.json
    stage1: tuple[Path, ...] = ()
    ablations: Path | None = None


@dataclass(frozen=True)
class Cell:
    """mepr's value in percent, or why there is none."""

    value: float | None
    note: str = ""


def _read_json(path: Path | None) -> dict[str, Any] | None:
    if path is None or not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def _pct(split: dict[str, Any] | None, metric: str) -> Cell:
    task_metrics = (split or {}).get(METRIC_TASK[metric])
    if not task_metrics or task_metrics.get(metric) is None:
        return Cell(None, "not reported")
    v = float(task_metrics[metric])
    return Cell(None, "not a number") if math.isnan(v) else Cell(100.0 * v)


class RunMetrics:
    """Looks up mepr's value of a `mepr:` locator (see the data file's header)."""

    def __init__(self, files: RunFiles):
        self.files = files
        self.fusion = _read_json(files.fusion)
        self.single = {t: _read_json(p) for t, p in files.single.items()}
        self.stage1 = [m for m in (_read_json(p) for p in files.stage1) if m]
        self.ablations = _read_ablations(files.ablations)

    def cell(self, locator: str | None, metric: str) -> Cell:
        if locator is None:
            return Cell(None, "no counterpart")
        kind, _, arg = locator.partition(":")
        task = METRIC_TASK[metric]
        if kind == "fusion":
            return _pct((self.fusion or {}).get("test"), metric) if self.fusion else _not_run()
        if kind == "fusion_single":
            m = self.single.get(task)
            return _pct(m.get("test"), metric) if m else _not_run()
        if kind == "stage2":
            if not self.fusion:
                return _not_run()
            m = self.fusion.get("unimodal", {}).get(arg)
            return _pct(m.get("test"), metric) if m else Cell(None, f"{arg} not fused")
        if kind == "stage1":
            for m in self.stage1:
                if m.get("modality") == arg and m.get("task") == task:
                    return _pct(m.get("test"), metric)
            return _not_run()
        if kind == "ablation":
            return self._ablation(arg, metric)
        raise ValueError(f"unknown mepr locator {locator!r}")

    def _ablation(self, row: str, metric: str) -> Cell:
        if self.ablations is None or row not in self.ablations:
            return _not_run()
        r = self.ablations[row]
        if (r.get("status") or "ok") != "ok":
            reason = f": {r['reason']}" if r.get("reason") else ""
            return Cell(None, f"{r['status']}{reason}")
        raw = r.get(f"test_{metric}")
        if raw in (None, ""):
            return Cell(None, "not in the ablation table")
        v = float(raw)
        # the table holds metrics.json's fractions, like every other mepr metrics file
        return Cell(None, "not a number") if math.isnan(v) else Cell(100.0 * v)


def _not_run() -> Cell:
    return Cell(None, "not run")


def _read_ablations(path: Path | None) -> dict[str, dict[str, str]] | None:
    if path is None or not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as f:
        return {r["row"]: r for r in csv.DictReader(f)}


# ---------------------------------------------------------------------------- comparison
@dataclass(frozen=True)
class Line:
    """One line of the comparison: a published number and mepr's beside it."""

    pub: Published
    mepr: Cell

    @property
    def difference(self) -> float | None:
        if self.pub.value is None or self.mepr.value is None:
            return None
        # the difference of the two numbers as shown (both two decimals)
        return round(round(self.mepr.value, 2) - self.pub.value, 2)


def compare(published: list[Published], run: RunMetrics) -> list[Line]:
    """A line per published number, in the data file's order."""
    cells = {id(p): run.cell(p.mepr, p.metric) for p in published if p.metric != AVERAGE}
    out: list[Line] = []
    for p in published:
        if p.metric != AVERAGE:
            out.append(Line(p, cells[id(p)]))
            continue
        # a row's Average is the mean of the row's other metrics, as the text README's is
        parts = [
            cells[id(q)]
            for q in published
            if (q.table, q.row) == (p.table, p.row) and q.metric != AVERAGE
        ]
        if p.mepr is None:
            out.append(Line(p, Cell(None, "no counterpart")))
        elif parts and all(c.value is not None for c in parts):
            out.append(Line(p, Cell(sum(round(c.value, 2) for c in parts) / len(parts))))
        else:
            out.append(Line(p, Cell(None, "a metric of the row is missing")))
    return out


def _num(v: float | None, signed: bool = False) -> str:
    if v is None:
        return ""
    return f"{v:+.2f}" if signed else f"{v:.2f}"


def _published_cell(p: Published) -> str:
    return _num(p.value) if p.value is not None else "not reachable offline"


def _mepr_cell(c: Cell) -> str:
    return _num(c.value) if c.value is not None else c.note


def is_demo(corpora: tuple[Corpus, ...]) -> bool:
    return any(c.adapter == "demo" for c in corpora)


def _header(corpora: tuple[Corpus, ...]) -> list[str]:
    used = ", ".join(f"`{c.name}` ({c.adapter}, {c.task})" for c in corpora) or "none given"
    lines = [
        "# SSL-MEPR: the paper's results beside this run",
        "",
        f"Corpora of this run: {used}. The paper: CMU-MOSEI (emotion), ChaLearn FIv2"
        " (personality).",
        "",
    ]
    if is_demo(corpora):
        lines += [f"> {DEMO_BANNER}", ""]
    elif {c.adapter: c.task for c in corpora} != PAPER_ADAPTERS:
        lines += ["> This run's corpora are not exactly the paper's pair.", ""]
    lines += [
        "Values are percent with two decimals, as the paper; mepr's are its metrics x 100 on"
        " the test split. Difference = mepr - published. A cell without a number says why:"
        " *not run* (that result is not part of this run), *no counterpart* (an architecture"
        " mepr does not build), *not reachable offline* (the published table could not be"
        " read; its rows show mepr's values only).",
        "",
    ]
    return lines


def markdown(lines: list[Line], corpora: tuple[Corpus, ...]) -> str:
    out = _header(corpora)
    tables: dict[str, list[Line]] = {}
    for ln in lines:
        tables.setdefault(ln.pub.table, []).append(ln)
    for group in tables.values():
        p = group[0].pub
        out += [f"## {p.table_title}", ""]
        out += [f"Source: <{p.source_url}>, {p.source_section}. Split: {p.split}.", ""]
        out += ["| row | metric | published | mepr | difference | mepr result |"]
        out += ["|---|---|---:|---:|---:|---|"]
        for ln in group:
            q = ln.pub
            out.append(
                f"| {q.label} | {q.metric} | {_published_cell(q)} | {_mepr_cell(ln.mepr)}"
                f" | {_num(ln.difference, signed=True)} | {q.mepr or '-'} |"
            )
        out.append("")
    missing = sorted({ln.pub.table_title for ln in lines if not ln.pub.reachable})
    if missing:
        out += ["## Not reachable offline", ""]
        out += [f"* {t}" for t in missing]
        out += ["", "Their published values are not in mepr's data file; none were guessed.", ""]
    return "\n".join(out)


CSV_COLUMNS = (
    "table", "row", "metric", "published", "mepr", "difference", "mepr_note",
    "mepr_result", "source_url", "source_section",
)  # fmt: skip


def write_csv(lines: list[Line], path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for ln in lines:
            p = ln.pub
            w.writerow(
                [
                    p.table, p.row, p.metric, _num(p.value), _num(ln.mepr.value),
                    _num(ln.difference, signed=True), ln.mepr.note, p.mepr or "",
                    p.source_url, p.source_section,
                ]
            )  # fmt: skip


def render_html(md_lines: list[Line], corpora: tuple[Corpus, ...]) -> str:
    """The same tables as one static page (the report shows HTML inline, markdown only as a
    download)."""
    banner = f"<p class='demo'>{_bold(DEMO_BANNER)}</p>" if is_demo(corpora) else ""
    used = ", ".join(html.escape(f"{c.name} ({c.adapter}, {c.task})") for c in corpora)
    parts: list[str] = []
    tables: dict[str, list[Line]] = {}
    for ln in md_lines:
        tables.setdefault(ln.pub.table, []).append(ln)
    for group in tables.values():
        p = group[0].pub
        rows = "".join(
            f"<tr><th>{html.escape(ln.pub.label)}</th><td>{ln.pub.metric}</td>"
            f"<td>{html.escape(_published_cell(ln.pub))}</td>"
            f"<td>{html.escape(_mepr_cell(ln.mepr))}</td>"
            f"<td>{_num(ln.difference, signed=True)}</td></tr>"
            for ln in group
        )
        parts.append(
            f"<h2>{html.escape(p.table_title)}</h2><p class='src'>Source: "
            f"<a href='{html.escape(p.source_url)}'>{html.escape(p.source_url)}</a>, "
            f"{html.escape(p.source_section)}</p><table><thead><tr><th>row</th><th>metric</th>"
            f"<th>published</th><th>mepr</th><th>difference</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<title>SSL-MEPR: paper vs mepr</title><style>body{{font:14px/1.4 system-ui,sans-serif;margin:16px}}
table{{border-collapse:collapse}}th,td{{padding:4px 9px;border-bottom:1px solid #e5e7eb;text-align:right}}
tbody th{{text-align:left;font-weight:400}}.demo{{background:#fef3c7;padding:8px}}.src{{color:#6b7280}}
</style></head><body><h1>SSL-MEPR: the paper's results beside this run</h1>
<p>Corpora of this run: {used}. Percent, two decimals; difference = mepr - published.</p>
{banner}{"".join(parts)}</body></html>
"""


def _bold(text: str) -> str:
    head, _, rest = text.partition("**")[2].partition("**")
    return f"<strong>{html.escape(head)}</strong>{html.escape(rest)}"


def paper_compare(files: RunFiles, out_dir: Path, data: Path = DATA_FILE) -> list[Path]:
    """Write comparison.md, .csv and .html into `out_dir`; returns their paths."""
    lines = compare(load_published(data), RunMetrics(files))
    out_dir.mkdir(parents=True, exist_ok=True)
    md, csv_path, page = (out_dir / f"comparison.{ext}" for ext in ("md", "csv", "html"))
    md.write_text(markdown(lines, files.corpora), encoding="utf-8")
    write_csv(lines, csv_path)
    page.write_text(render_html(lines, files.corpora), encoding="utf-8")
    return [md, csv_path, page]
