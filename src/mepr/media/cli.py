"""`mepr frames` and `mepr audio`: one corpus shard's sampled frames + crops, and its audio."""

from __future__ import annotations

import argparse

from mepr.cli import shard_command


def _frames(a: argparse.Namespace) -> None:
    from mepr import shards
    from mepr.config import DetectParams, FramesParams, parse
    from mepr.media.extract import extract_frames_shard

    frames, detect = parse(FramesParams, a.frames), parse(DetectParams, a.detect)
    result = extract_frames_shard(a.manifest, a.shard, frames, detect)
    params = {"frames": vars(frames), "detect": vars(detect)}
    shards.write_stage_result(result, shards.FRAMES, a.out, a.failures, params)


def _audio(a: argparse.Namespace) -> None:
    from mepr import shards
    from mepr.config import AudioParams, parse
    from mepr.media.extract import extract_audio_shard

    params = parse(AudioParams, a.params)
    result = extract_audio_shard(a.manifest, a.shard, params)
    shards.write_stage_result(result, shards.AUDIO, a.out, a.failures, vars(params))


def register(sub: argparse._SubParsersAction) -> None:
    p = shard_command(sub, "frames", _frames, "sample frames, detect face/body, store crops")
    p.add_argument("--manifest", required=True)
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--frames", required=True, help="JSON of the config 'frames' section")
    p.add_argument("--detect", required=True, help="JSON of the config 'detect' section")

    p = shard_command(sub, "audio", _audio, "extract mono PCM audio")
    p.add_argument("--manifest", required=True)
    p.add_argument("--shard", type=int, required=True)
    p.add_argument("--params", required=True, help="JSON of the config 'audio' section")
