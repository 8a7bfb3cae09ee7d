"""The reference's frame options through the frames and embedding stages (needs the wiring
of video.py, video_interval.py, extract.py, embed/shard.py and FRAMES v2)."""

from __future__ import annotations

import subprocess

import cv2
import numpy as np
import pytest
import skimage.data
from conftest import manifest_rows

from mepr import shards
from mepr.config import DetectParams, EncoderParams, FramesParams
from mepr.embed.shard import embed_image_shard
from mepr.media.extract import extract_frames_shard
from mepr.media.video import sample_frames, uniform_indices

REFERENCE_FRAMES = FramesParams(n_frames=30, index_rounding="floor", crop="box")
REFERENCE_DETECT = DetectParams(faces="all", body_box="person_at_face", face_margin=0.0, body_margin=0.0)  # fmt: skip


@pytest.fixture(scope="module")
def two_faces(tmp_path_factory):
    """2 s of the same person twice, side by side (50 frames)."""
    d = tmp_path_factory.mktemp("two")
    one = skimage.data.astronaut()
    cv2.imwrite(str(d / "two.png"), cv2.cvtColor(np.concatenate([one, one[:, ::-1]], 1), cv2.COLOR_RGB2BGR))  # fmt: skip
    out = d / "two.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-loop", "1", "-i", str(d / "two.png"),
                    "-t", "2", "-r", "25", "-vf", "scale=640:320", "-c:v", "libx264",
                    "-pix_fmt", "yuv420p", str(out)], check=True)  # fmt: skip
    return out


def test_floor_rounding_reaches_the_sampler(tricky):
    s = sample_frames(tricky["base"], 30, index_rounding="floor")  # 100 frames
    assert s.indices.tolist() == np.linspace(0, 99, 30, dtype=int).tolist()
    short = sample_frames(tricky["base"], 30, start=0.0, end=0.8, index_rounding="floor")
    assert short.indices.tolist() == list(range(20))  # 20 frames inside: each once
    assert sample_frames(tricky["base"], 30).indices.tolist() == uniform_indices(100, 30).tolist()


def test_every_face_becomes_a_step(two_faces, media, tmp_path, in_dir):
    manifest = tmp_path / "m.parquet"
    rows = manifest_rows({"two": two_faces, "faceless": media["faceless"]})
    shards.write_table(rows, shards.MANIFEST, manifest)
    fr = extract_frames_shard(manifest, 0, REFERENCE_FRAMES, REFERENCE_DETECT)
    path = shards.write_table(fr.rows, shards.FRAMES, tmp_path / "f.parquet")
    two = [r for r in fr.rows if r["video_id"] == "two"]
    assert len(two) == 30 and all(len(r["more_faces"]) == 1 for r in two)
    assert all(r["scene_jpeg"] and r["width"] == 640 for r in two)
    faceless = [r for r in fr.rows if r["video_id"] == "faceless"]
    assert {r["face_stand_in"] for r in faceless} == {r["body_stand_in"] for r in faceless} == {"frame"}  # fmt: skip
    assert {"video_id": "faceless", "stage": "frames", "reason": "no face detected in any sampled frame"} in fr.failures  # fmt: skip
    params = EncoderParams(kind="open_clip", model="demo:tiny-clip", preprocess="clip_processor")
    faces = {r["video_id"]: r for r in embed_image_shard(path, "face", params, progress=False).rows}
    scene = {
        r["video_id"]: r for r in embed_image_shard(path, "scene", params, progress=False).rows
    }
    assert faces["two"]["n_steps"] == 60 and all(faces["two"]["step_mask"])
    assert scene["two"]["n_steps"] == 30
    # the default settings still give one step per frame
    fr1 = extract_frames_shard(manifest, 0, FramesParams(n_frames=30), DetectParams())
    path1 = shards.write_table(fr1.rows, shards.FRAMES, tmp_path / "f1.parquet")
    one = {r["video_id"]: r for r in embed_image_shard(path1, "face", params, progress=False).rows}
    assert one["two"]["n_steps"] == 30 and not any(one["faceless"]["step_mask"])
