"""The final-metrics table of `snakemake --report` (`mepr report-plots metrics`).

One static HTML table: dev and test metrics of the fusion model, each stage-2 model (as the
fusion run recorded them), each stage-1 model and the train-prior baseline.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

COLUMNS = (
    ("emotion", "mWACC"),
    ("emotion", "mF1"),
    ("emotion", "mUAR"),
    ("personality", "mACC"),
    ("personality", "mCCC"),
)


def _cells(split_metrics: dict[str, Any] | None) -> list[float | None]:
    out = []
    for task, key in COLUMNS:
        v = ((split_metrics or {}).get(task) or {}).get(key)
        out.append(float(v) if v is not None else None)
    return out


def metrics_table(fusion_dir: Path, stage1_dirs: list[Path], out: Path) -> Path:
    """The final metrics (dev and test) of the fusion model, each stage-2 model, the baseline."""
    m = json.loads((fusion_dir / "metrics.json").read_text())
    rows: list[tuple[str, str, dict]] = [("fusion", "stage 3", m)]
    for mod, mm in m.get("unimodal", {}).items():
        rows.append((mod, "stage 2", mm))
    for d in stage1_dirs:
        s1 = json.loads((d / "metrics.json").read_text())
        rows.append((f"{s1['modality']} · {s1['corpus']}", "stage 1", s1))
    rows.append(("train prior / mean", "baseline", m["baseline"]))
    header = "".join(
        f"<th>{split}<br>{html.escape(key)}</th>" for split in ("dev", "test") for _, key in COLUMNS
    )
    values = [[*_cells(r[2].get("dev")), *_cells(r[2].get("test"))] for r in rows]
    best = [
        max((v[j] for v in values if v[j] is not None), default=None) for j in range(len(values[0]))
    ]
    body = []
    for (name, stage, _), vals in zip(rows, values, strict=True):
        tds = "".join(
            "<td class='na'>–</td>" if v is None
            else f"<td class='{'best' if v == best[j] else ''}'>{v:.3f}</td>"
            for j, v in enumerate(vals)
        )  # fmt: skip
        body.append(
            f"<tr class='{stage.replace(' ', '')}'><th>{html.escape(name)}</th><td class='stage'>{stage}</td>{tds}</tr>"
        )
    page = f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>mepr metrics</title>
<style>body{{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#111827}}
table{{border-collapse:collapse}}th,td{{padding:5px 9px;border-bottom:1px solid #e5e7eb;text-align:right}}
thead th{{font-size:12px;color:#6b7280;border-bottom:2px solid #d1d5db}}tbody th{{text-align:left}}
td.stage{{color:#6b7280;text-align:left}}td.best{{font-weight:700;background:#ecfdf5}}td.na{{color:#d1d5db}}
tr.stage3 th{{color:#4338ca}}tr.baseline{{color:#6b7280}}caption{{text-align:left;font-weight:600;margin-bottom:6px}}
</style></head><body><table><caption>Final metrics (best per column in bold; mWACC/mF1/mUAR on the emotion corpus,
mACC/mCCC on the personality corpus)</caption><thead><tr><th>model</th><th>stage</th>{header}</tr></thead>
<tbody>{"".join(body)}</tbody></table></body></html>
"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
