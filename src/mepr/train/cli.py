"""`train-unimodal`, `train-cross`, `train-fusion` (+ `train-fusion-single`): the three
training stages as commands.

torch is imported inside the handlers only, so building the parser stays cheap.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from mepr.labels import MODALITIES

PARAMS_HELP = (
    "JSON text (or a .json file) of the config 'train' section; for stages 1-2 with "
    "'encoder' replaced by the modality's encoder name"
)


def _common(a: argparse.Namespace) -> dict:
    """What every stage takes besides its inputs: --params (parsed), --seed and --out."""
    from mepr.config import parse_params

    return {"params": parse_params(a.params), "seed": a.seed, "out": a.out}


# Module-level handlers (not closures) calling their stage by name: tests/test_envs.py and
# tests/test_code_digests.py follow a subcommand's handler to find the code it runs.
def _train_unimodal(a: argparse.Namespace) -> None:
    from mepr.train.stages import train_unimodal

    train_unimodal(
        modality=a.modality,
        corpus=a.corpus,
        manifest=a.manifest,
        embeddings=a.embeddings,
        **_common(a),
    )


def _train_cross(a: argparse.Namespace) -> None:
    from mepr.train.stages import train_cross

    train_cross(
        modality=a.modality,
        stage1=a.stage1,
        manifests=a.manifests,
        embeddings=a.embeddings,
        **_common(a),
    )


def _train_fusion(a: argparse.Namespace) -> None:
    from mepr.train.stages import train_fusion

    train_fusion(cross=a.cross, manifests=a.manifests, **_common(a))


def _train_fusion_single(a: argparse.Namespace) -> None:
    from mepr.train.fusion_single import train_fusion_single

    train_fusion_single(task=a.task, cross=a.cross, manifests=a.manifests, **_common(a))


def _finish(p: argparse.ArgumentParser, params_help: str, handler: Callable) -> None:
    """The arguments every stage ends with, and its handler."""
    p.add_argument("--params", required=True, help=params_help)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=handler)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train-unimodal",
        help="stage 1: one modality, one corpus, its task (from the manifest)",
    )
    p.add_argument("--modality", required=True, choices=MODALITIES)
    p.add_argument("--corpus", required=True, help="corpus name (recorded in the outputs)")
    p.add_argument("--manifest", required=True, help="the corpus manifest.parquet")
    p.add_argument("--embeddings", required=True, nargs="+", help="the modality's shards")
    _finish(p, PARAMS_HELP, _train_unimodal)

    p = subparsers.add_parser(
        "train-cross",
        help="stage 2: cross-domain multi-task model of one modality (+ features.parquet)",
    )
    p.add_argument("--modality", required=True, choices=MODALITIES)
    p.add_argument(
        "--stage1", required=True, nargs="+", help="the modality's emotion and personality folders"
    )
    p.add_argument("--manifests", required=True, nargs="+", help="every corpus manifest")
    p.add_argument(
        "--embeddings", required=True, nargs="+", help="the modality's shards of every corpus"
    )
    _finish(p, PARAMS_HELP, _train_cross)

    p = subparsers.add_parser(
        "train-fusion", help="stage 3: multimodal fusion of the stage-2 outputs"
    )
    p.add_argument("--cross", required=True, nargs="+", help="one train-cross folder per modality")
    p.add_argument("--manifests", required=True, nargs="+", help="every corpus manifest")
    params_help = "JSON text or file of the whole 'train' section"
    _finish(p, params_help, _train_fusion)

    p = subparsers.add_parser(
        "train-fusion-single",
        help="stage 3, one task: single-task fusion of the stage-2 outputs",
    )
    p.add_argument("--task", required=True, choices=("emotion", "personality"))
    p.add_argument("--cross", required=True, nargs="+", help="one train-cross folder per modality")
    p.add_argument("--manifests", required=True, nargs="+", help="every corpus manifest")
    _finish(p, params_help, _train_fusion_single)
