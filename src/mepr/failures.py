"""`mepr failures`: a corpus's per-stage, per-shard failure tables merged into one, with a
summary line per stage and reason (what `results/failures/{corpus}.parquet` holds)."""

from __future__ import annotations

import argparse


def _failures(a: argparse.Namespace) -> None:
    import pyarrow as pa

    from mepr import shards

    table = shards.read_many(a.inputs, shards.FAILURES)
    shards.write_table(table.cast(shards.FAILURES.arrow), shards.FAILURES, a.out)
    counts = pa.TableGroupBy(table, ["stage", "reason"]).aggregate([("video_id", "count")])
    for row in sorted(counts.to_pylist(), key=lambda r: (r["stage"], r["reason"])):
        print(f"{row['stage']:>12}: {row['video_id_count']:5d} x {row['reason']}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("failures", help="merge per-shard failure tables and summarise them")
    p.add_argument("inputs", nargs="*")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_failures)
