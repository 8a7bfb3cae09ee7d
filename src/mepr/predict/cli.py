"""`mepr predict` and `mepr pipeline-spec`: using a trained system.

Heavy libraries (torch, mediapipe) are imported inside the handlers only.
"""

from __future__ import annotations

import argparse
import sys


def _quiet_libraries() -> None:
    """Keep the terminal for predict's own progress bar: no per-model loading bars."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def _predict(a: argparse.Namespace) -> None:
    _quiet_libraries()
    from mepr.predict.batch import predict_videos
    from mepr.predict.errors import PredictError

    result = predict_videos(
        a.videos,
        a.model,
        a.out,
        results_root=a.results,
        device=a.device,
        chunk=a.chunk,
        html=not a.no_html,
        progress=not a.quiet,
    )
    n, ok = result.n_videos, len(result.ok)
    where = result.out_dir / ("index.html" if not a.no_html else "summary.json")
    print(
        f"mepr predict: {ok}/{n} video(s) predicted in {result.seconds['total']:.1f} s "
        f"({result.videos_per_second:.2f} videos/s after {result.seconds['load_models']:.1f} s "
        f"loading models); see {where}",
        file=sys.stderr,
    )
    for f in result.failed:
        print(f"  failed: {f['path']}: {f['error']}", file=sys.stderr)
    if ok == 0:
        raise PredictError(f"all {n} video(s) failed; nothing was predicted (details in {where})")


def _pipeline_spec(a: argparse.Namespace) -> None:
    from pathlib import Path

    from mepr.predict.spec import (
        PIPELINE_FILE,
        RunShards,
        build_pipeline_spec,
        write_pipeline_spec,
    )

    run_shards = RunShards.declared(a.shards) if a.shards is not None else None
    spec = build_pipeline_spec(a.model, a.results, run_shards)
    out = write_pipeline_spec(spec, a.out or Path(a.model) / PIPELINE_FILE)
    print(f"mepr pipeline-spec: wrote {out}", file=sys.stderr)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict",
        help="predict emotions and traits for new videos (JSON + HTML report per video)",
        description="Run the trained system on videos: the same extraction, encoders and "
        "models as the workflow. Writes OUT/<video>/prediction.json and report.html, plus "
        "OUT/summary.json and OUT/index.html. A file that cannot be read is reported and "
        "the others go on; the exit status is non-zero only when every video failed.",
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or folders of videos")
    p.add_argument("--model", default="results/fusion", help="the stage-3 (train-fusion) folder")
    p.add_argument("--out", default="predictions", help="output folder (default: predictions)")
    p.add_argument(
        "--results",
        default=None,
        help="the run's results folder, to (re)build the pipeline spec from its shards "
        "(default: use MODEL/pipeline.json, or build it from the fusion folder's parent)",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument("--chunk", type=int, default=32, help="videos embedded and predicted together")
    p.add_argument("--no-html", action="store_true", help="JSON only")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_predict)

    p = sub.add_parser(
        "pipeline-spec",
        help="record how a trained model is fed (extraction + encoders) next to it",
    )
    p.add_argument("--model", default="results/fusion", help="the stage-3 (train-fusion) folder")
    p.add_argument(
        "--results",
        default=None,
        help="the run's results folder, holding unimodal/*/cross and encoders/ (default: MODEL/..)",
    )
    p.add_argument(
        "--shards",
        nargs="+",
        metavar="SHARD",
        default=None,
        help="the frames, audio, transcripts and embedding shards the models were trained "
        "from (what the workflow declares); default: every shard under the results folder",
    )
    p.add_argument("--out", default=None, help="default: MODEL/pipeline.json")
    p.set_defaults(func=_pipeline_spec)
