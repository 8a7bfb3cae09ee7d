"""`mepr report-plots`: the figures and the metrics table of `snakemake --report`.

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
