"""mepr: multimodal emotion and personality recognition (`python -m mepr COMMAND ...`).

This module is the command table, the dispatcher and the arguments every shard command
shares, nothing else. Each stage package owns its commands in its `cli` module, whose `register(subparsers)` adds
them; handlers import heavy libraries (torch, mediapipe, ...) inside, so `mepr --help` stays
fast and a command loads only what it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from mepr import __version__, shards

# The modules whose register(subparsers) adds their subcommands, in the order `--help` lists.
STAGE_COMMANDS = (
    "mepr.corpora.cli",  # demo, manifest, rehearsal
    "mepr.media.cli",  # frames, audio
    "mepr.asr.cli",  # transcripts
    "mepr.embed.cli",  # embed, build-demo-encoder
    "mepr.embed.fetch_cli",  # fetch-models
    "mepr.train.cli",  # train-unimodal, train-cross, train-fusion, train-fusion-single
    "mepr.sweep.cli",  # fusion-trial, sweep-round, sweep-table
    "mepr.predict.cli",  # predict, pipeline-spec
    "mepr.reference.cli",  # import-reference
    "mepr.report.cli",  # report-plots, paper-compare
    "mepr.failures",  # failures
)


def shard_command(sub, name: str, handler, help: str) -> argparse.ArgumentParser:
    """A subcommand that writes one output shard and its failures table (frames, audio,
    transcripts, embed): the arguments they all take."""
    p = sub.add_parser(name, help=help)
    p.add_argument("--out", required=True, help="output shard (.parquet)")
    p.add_argument("--failures", required=True, help="failures table for this shard (.parquet)")
    p.set_defaults(func=handler)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mepr", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"mepr {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
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
