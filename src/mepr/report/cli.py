"""`mepr report-plots`: the figures and the metrics table of `snakemake --report`;
`mepr paper-compare`: the paper's published results beside the run's (mepr.report.paper).

The drawing modules (matplotlib, numpy) are imported inside the handler only, so building the
argument parser stays cheap; the metrics table needs neither.
"""

from __future__ import annotations

import argparse


def _report_plots(a: argparse.Namespace) -> None:
    from pathlib import Path

    dirs = [Path(d) for d in a.dirs]
    manifests = [Path(p) for p in a.manifests]
    out = Path(a.out)
    if a.kind == "metrics":
        from mepr.report.metrics_table import metrics_table

        written = [metrics_table(dirs[0], dirs[1:], out)]
    else:
        from mepr.report import figures

        if a.kind == "stage1":
            written = figures.stage1(dirs, manifests, [Path(p) for p in a.embeddings], out)
        elif a.kind == "stage2":
            written = figures.stage2(dirs, manifests, out)
        else:
            written = figures.fusion(dirs, manifests, out)
    for p in written:
        print(f"wrote {p}")


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def _paper_compare(a: argparse.Namespace) -> None:
    from pathlib import Path

    from mepr.report.paper import Corpus, RunFiles, paper_compare

    corpora = []
    for name, spec in a.corpus:
        adapter, sep, task = spec.partition(":")
        if not sep:
            raise ValueError(f"--corpus {name}={spec}: expected NAME=ADAPTER:TASK")
        corpora.append(Corpus(name, adapter, task))
    files = RunFiles(
        corpora=tuple(corpora),
        fusion=Path(a.fusion) if a.fusion else None,
        single={task: Path(p) for task, p in a.single},
        stage1=tuple(Path(p) for p in a.stage1),
        ablations=Path(a.ablations) if a.ablations else None,
    )
    for p in paper_compare(files, Path(a.out)):
        print(f"wrote {p}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report-plots", help="figures and tables for `snakemake --report`")
    p.add_argument("kind", choices=["stage1", "stage2", "fusion", "metrics"])
    p.add_argument(
        "--dirs", nargs="+", required=True,
        help="the stage's model folders (metrics: the fusion folder, then stage-1 folders)",
    )  # fmt: skip
    p.add_argument("--manifests", nargs="*", default=[])
    p.add_argument("--embeddings", nargs="*", default=[], help="stage 1: embedding shards")
    p.add_argument("--out", required=True, help="output folder (metrics: the .html file)")
    p.set_defaults(func=_report_plots)
    c = sub.add_parser("paper-compare", help="the paper's published results beside this run's")
    c.add_argument(
        "--corpus", nargs="+", type=_key_value, required=True, metavar="NAME=ADAPTER:TASK",
        help="the run's corpora (a demo adapter marks the published column as shape only)",
    )  # fmt: skip
    c.add_argument("--fusion", help="results/fusion/metrics.json (absent: 'not run')")
    c.add_argument(
        "--single", nargs="*", type=_key_value, default=[], metavar="TASK=PATH",
        help="single-task fusion metrics.json per task",
    )  # fmt: skip
    c.add_argument("--stage1", nargs="*", default=[], help="stage-1 metrics.json files")
    c.add_argument("--ablations", help="results/ablations/table.csv")
    c.add_argument("--out", required=True, help="output folder (comparison.md, .csv, .html)")
    c.set_defaults(func=_paper_compare)
