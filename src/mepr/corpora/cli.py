"""`mepr demo` (generate the offline demo corpus) and `mepr manifest` (corpus -> manifest)."""

from __future__ import annotations

import argparse
import json
import sys


def _demo(a: argparse.Namespace) -> None:
    from pathlib import Path

    from mepr.config import DemoParams, parse
    from mepr.corpora.demo import generate

    params = parse(DemoParams, a.params)
    labels = generate(Path(a.root), a.corpus, a.task, params, a.seed, a.with_transcripts)
    print(f"demo corpus '{a.corpus}': {params.clips} clips, labels in {labels}", file=sys.stderr)


def _manifest(a: argparse.Namespace) -> None:
    from mepr import shards
    from mepr.corpora import CorpusError, build_manifest

    cfg = json.loads(a.corpus_config)
    try:
        rows, failures = build_manifest(a.corpus, cfg, a.n_shards)
    except CorpusError as e:
        raise SystemExit(f"mepr manifest: error: {e}") from None
    params = {
        "corpus": a.corpus,
        "adapter": cfg.get("adapter"),
        "task": cfg.get("task"),
        "root": cfg.get("root"),
        "n_shards": a.n_shards,
    }
    shards.write_table(rows, shards.MANIFEST, a.out, params=params)
    shards.write_table(
        [{"video_id": v, "stage": "manifest", "reason": r} for v, r in failures],
        shards.FAILURES,
        a.failures,
        params=params,
    )
    splits = {s: sum(r["split"] == s for r in rows) for s in ("train", "dev", "test")}
    print(
        f"corpus '{a.corpus}': {len(rows)} videos ({', '.join(f'{k} {v}' for k, v in splits.items())})"
        f", {len(failures)} skipped",
        file=sys.stderr,
    )
    for vid, reason in failures[:20]:
        print(f"  skipped {vid}: {reason}", file=sys.stderr)
    if len(failures) > 20:
        print(f"  ... and {len(failures) - 20} more, see {a.failures}", file=sys.stderr)
    if not rows:
        raise SystemExit(f"mepr manifest: error: corpus '{a.corpus}' has no usable video")


def _rehearsal(a: argparse.Namespace) -> None:
    from mepr.corpora.rehearsal import write_rehearsal

    expected = write_rehearsal(a.data, clips=a.clips, seed=a.seed)
    counts = ", ".join(f"{name} {len(rows)} videos" for name, rows in expected.items())
    print(f"rehearsal corpora in {a.data}: {counts}; expected rows in rehearsal.json")


def register(subparsers) -> None:

    p = subparsers.add_parser("demo", help="generate the offline demo corpus (mp4 + labels.csv)")
    p.add_argument("--corpus", required=True, help="corpus name (prefix of the video ids)")
    p.add_argument("--task", required=True, choices=["emotion", "personality"])
    p.add_argument("--root", required=True, help="output folder: videos/ and labels.csv")
    p.add_argument("--params", default="{}", help="JSON of the config 'demo' section")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument(
        "--with-transcripts", action="store_true", help="fill the transcript column of labels.csv"
    )
    p.set_defaults(func=_demo)

    p = subparsers.add_parser("manifest", help="list a corpus' videos and labels")
    p.add_argument("--corpus", required=True, help="corpus name in the config")
    p.add_argument("--corpus-config", required=True, help="JSON of the corpora.<name> section")
    p.add_argument("--n-shards", type=int, required=True)
    p.add_argument("--out", required=True, help="manifest (.parquet)")
    p.add_argument("--failures", required=True, help="skipped videos (.parquet)")
    p.set_defaults(func=_manifest)

    p = subparsers.add_parser(
        "rehearsal",
        help="write miniature CMU-MOSEI (SDK files) and FIv2 (official pickles) corpora",
    )
    p.add_argument("data", help="folder to write CMU-MOSEI/ and FirstImpressionsV2/ into")
    p.add_argument("--clips", type=int, default=28, help="demo clips per corpus")
    p.add_argument("--seed", type=int, default=42)
    p.set_defaults(func=_rehearsal)
