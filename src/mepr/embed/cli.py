"""`mepr embed` (one modality of one shard through its encoder) and `mepr build-demo-encoder`
(a tiny offline encoder for the demo). `mepr fetch-models` lives in `mepr.embed.fetch_cli`."""

from __future__ import annotations

import argparse

from mepr.cli import shard_command
from mepr.labels import MODALITIES


def _embed(a: argparse.Namespace) -> None:
    import torch

    from mepr import shards
    from mepr.config import EncoderParams, parse
    from mepr.embed.shard import embed_shard, shard_metadata

    torch.set_num_threads(a.threads)
    params = parse(EncoderParams, a.params)
    result = embed_shard(a.modality, a.input, params, a.threads)
    meta = shard_metadata(a.modality, params, result)
    shards.write_stage_result(result, shards.EMBEDDINGS, a.out, a.failures, meta)


def _build_demo_encoder(a: argparse.Namespace) -> None:
    from mepr.embed.demo_models import build_demo_encoder

    build_demo_encoder(a.name, a.out, seed=a.seed)


def register(sub: argparse._SubParsersAction) -> None:
    p = shard_command(sub, "embed", _embed, "encode one modality of one shard")
    p.add_argument("--modality", required=True, choices=list(MODALITIES))
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
