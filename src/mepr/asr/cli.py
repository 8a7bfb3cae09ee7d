"""`mepr transcripts`: one corpus shard's words, from the corpus transcripts or ASR."""

from __future__ import annotations

import argparse

from mepr.cli import shard_command


def _transcripts(a: argparse.Namespace) -> None:
    from mepr import shards
    from mepr.asr.shard import transcripts_shard
    from mepr.config import AsrParams, parse

    params = parse(AsrParams, a.params)
    result = transcripts_shard(a.manifest, a.audio, a.shard, params)
    shards.write_stage_result(result, shards.TRANSCRIPTS, a.out, a.failures, vars(params))


def register(sub: argparse._SubParsersAction) -> None:
    p = shard_command(sub, "transcripts", _transcripts, "corpus transcripts or ASR")
    p.add_argument("--manifest", required=True)
    p.add_argument("--audio", required=True, help="the audio shard")
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--params", required=True, help="JSON of the config 'asr' section")
