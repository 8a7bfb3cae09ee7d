"""`python -m mepr COMMAND ...`: argument parsing only; each stage's code lives in its package.

Stage commands register themselves through `register(subparsers)` functions that import
heavy libraries (torch, mediapipe, ...) inside their handlers, so `mepr --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from mepr import __version__, shards
from mepr.config import (
    AsrParams,
    AudioParams,
    DetectParams,
    EncoderParams,
    FramesParams,
    from_dict,
)

# Modules whose register(subparsers) adds their own subcommands.
STAGE_COMMANDS = ("mepr.corpora.cli", "mepr.train.cli", "mepr.predict_cli", "mepr.embed.fetch_cli")


def _write(result, schema, out: str, failures: str, params: dict) -> None:
    shards.write_table(result.rows, schema, out, params=params)
    shards.write_table(result.failures, shards.FAILURES, failures, params=params)
    if result.failures:
        print(f"{len(result.failures)} problem(s) recorded in {failures}", file=sys.stderr)


def _frames(a: argparse.Namespace) -> None:
    from mepr.media.extract import extract_frames_shard

    frames, detect = from_dict(FramesParams, a.frames), from_dict(DetectParams, a.detect)
    result = extract_frames_shard(a.manifest, a.shard, frames, detect)
    _write(
        result, shards.FRAMES, a.out, a.failures, {"frames": vars(frames), "detect": vars(detect)}
    )


def _audio(a: argparse.Namespace) -> None:
    from mepr.media.extract import extract_audio_shard

    params = from_dict(AudioParams, a.params)
    _write(
        extract_audio_shard(a.manifest, a.shard, params),
        shards.AUDIO,
        a.out,
        a.failures,
        vars(params),
    )


def _transcripts(a: argparse.Namespace) -> None:
    from mepr.asr.shard import transcripts_shard

    params = from_dict(AsrParams, a.params)
    result = transcripts_shard(a.manifest, a.audio, a.shard, params)
    _write(result, shards.TRANSCRIPTS, a.out, a.failures, vars(params))


def _embed(a: argparse.Namespace) -> None:
    import torch

    from mepr.embed.shard import embed_shard, shard_metadata

    torch.set_num_threads(a.threads)
    params = from_dict(EncoderParams, a.params)
    result = embed_shard(a.modality, a.input, params, a.threads)
    meta = shard_metadata(a.modality, params, result)
    _write(result, shards.EMBEDDINGS, a.out, a.failures, meta)


def _build_demo_encoder(a: argparse.Namespace) -> None:
    from mepr.embed.demo_models import build_demo_encoder

    build_demo_encoder(a.name, a.out, seed=a.seed)


def _failures(a: argparse.Namespace) -> None:
    import pyarrow as pa

    table = shards.read_many(a.inputs, shards.FAILURES)
    shards.write_table(table.cast(shards.FAILURES.arrow), shards.FAILURES, a.out)
    counts = pa.TableGroupBy(table, ["stage", "reason"]).aggregate([("video_id", "count")])
    for row in sorted(counts.to_pylist(), key=lambda r: (r["stage"], r["reason"])):
        print(f"{row['stage']:>12}: {row['video_id_count']:5d} x {row['reason']}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mepr", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mepr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def shard_cmd(name: str, fn, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--out", required=True, help="output shard (.parquet)")
        p.add_argument("--failures", required=True, help="failures table for this shard (.parquet)")
        p.set_defaults(func=fn)
        return p

    p = shard_cmd("frames", _frames, "sample frames, detect face/body, store crops")
    p.add_argument("--manifest", required=True)
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--frames", required=True, help="JSON of the config 'frames' section")
    p.add_argument("--detect", required=True, help="JSON of the config 'detect' section")

    p = shard_cmd("audio", _audio, "extract mono PCM audio")
    p.add_argument("--manifest", required=True)
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--params", required=True, help="JSON of the config 'audio' section")

    p = shard_cmd("transcripts", _transcripts, "corpus transcripts or ASR")
    p.add_argument("--manifest", required=True)
    p.add_argument("--audio", required=True, help="the audio shard")
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--params", required=True, help="JSON of the config 'asr' section")

    p = shard_cmd("embed", _embed, "encode one modality of one shard")
    p.add_argument("--modality", required=True, choices=["face", "body", "scene", "audio", "text"])
    p.add_argument("--input", required=True, help="frames, audio or transcripts shard")
    p.add_argument("--params", required=True, help="JSON of the modality's encoder config")
    p.add_argument(
        "--threads", type=int, default=1, help="CPU threads: JPEG decoding and torch (default 1)"
    )

    p = sub.add_parser("build-demo-encoder", help="build a tiny offline encoder for the demo")
    p.add_argument("name")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_build_demo_encoder)

    p = sub.add_parser("failures", help="merge per-shard failure tables and summarise them")
    p.add_argument("inputs", nargs="*")
    p.add_argument("--out", required=True)
    p.set_defaults(func=_failures)

    for module in STAGE_COMMANDS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (FileNotFoundError, shards.ShardError, ValueError) as e:
        print(f"mepr {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


__all__ = ["main", "build_parser", "Path"]
