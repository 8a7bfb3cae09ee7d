"""Reports: what a person reads after a run or a prediction.

Two independent sets of modules share this package:

- prediction pages, written by `mepr predict`: :mod:`~mepr.report.video` (one self-contained
  HTML page per video, and the batch index), drawn with :mod:`~mepr.report.svg` (inline
  charts), worded by :mod:`~mepr.report.summary` and laid out by :mod:`~mepr.report.templates`;
- `snakemake --report` entries, written by `mepr report-plots` (:mod:`~mepr.report.cli`):
  :mod:`~mepr.report.figures` (each training stage's figures, matplotlib) and
  :mod:`~mepr.report.metrics_table` (the final-metrics table). Their captions live with the
  rules, in workflow/report/.

This file holds no code, so importing one set loads nothing of the other.
"""
