"""Face and body detection with MediaPipe, and the crops the image encoders see.

What a frame yields (`MediaPipeDetector.detect`, config `detect.faces` / `detect.body_box`):

* faces: `best`, the most confident face (mepr), or `all`, every detected face, best first
  (the reference keeps each one: a video's face sequence is then longer than its frames);
* bodies: `pose`, the extent of the pose landmarks (mepr; MediaPipe's pose model sees one
  person), or `person_at_face`, the reference's rule: for each face the first person box that
  contains the face's centre (a face inside no person box has no body), and with no face the
  largest person box, which then also stands in for the face; with no face and no person the
  whole frame stands in for both. The person boxes are the ones mepr's detector gives (the
  pose extent: one person at most); the reference's YOLO person detector is not public.

How a box becomes an image (`frame_crops`, config `frames.crop`):

* `square` (mepr): a square around the box (its long side, grown by the margin), padded with
  edge pixels where it leaves the frame, resized to `crop_size` with area interpolation; the
  scene is the whole frame with its short side resized to `crop_size` (the encoder centre-crops);
* `box` (the reference): the box's own pixels (corners truncated to whole pixels), and the
  whole frame for the scene, none of them resized: the image encoder's transform resizes and
  centre-crops them, as CLIPProcessor does the reference's crops (with the encoder's
  `preprocess: clip_processor`, at CLIPProcessor's floor offsets). Larger shards: the scene
  is stored at the video's resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from mepr.config import DetectParams

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 relative to the frame

FACES = ("best", "all")  # detect.faces
BODY_BOXES = ("pose", "person_at_face")  # detect.body_box
CROPS = ("square", "box")  # frames.crop
WHOLE_FRAME: Box = (0.0, 0.0, 1.0, 1.0)


@dataclass
class Detection:
    box: Box
    score: float
    # None for a detection; else what stands in for a missing one ("person", "frame")
    stand_in: str | None = None


@dataclass
class FrameDetections:
    """The boxes one frame yields, in crop order: faces (best first) and bodies."""

    faces: list[Detection] = field(default_factory=list)
    bodies: list[Detection] = field(default_factory=list)


def _contains(box: Box, x: float, y: float) -> bool:
    return box[0] <= x <= box[2] and box[1] <= y <= box[3]


def _area(box: Box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


def person_at_face(
    faces: list[Detection], persons: list[Detection], all_faces: bool
) -> FrameDetections:
    """The reference's pairing of faces (best first) and person boxes (in the detector's
    order); see the module docstring."""
    if faces:
        kept = faces if all_faces else faces[:1]
        bodies = []
        for f in kept:
            cx, cy = (f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2
            body = next((p for p in persons if _contains(p.box, cx, cy)), None)
            if body is not None:
                bodies.append(body)
        return FrameDetections(list(kept), bodies)
    if persons:
        largest = max(persons, key=lambda p: _area(p.box))
        return FrameDetections([Detection(largest.box, largest.score, "person")], [largest])
    whole = Detection(WHOLE_FRAME, 0.0, "frame")
    return FrameDetections([whole], [Detection(WHOLE_FRAME, 0.0, "frame")])


class MediaPipeDetector:
    """Faces (face_detection, full range) and person boxes (pose landmarks) per RGB frame,
    combined as `detect.faces` and `detect.body_box` say."""

    def __init__(self, params: DetectParams):
        import mediapipe as mp

        if params.faces not in FACES:
            raise ValueError(f"detect.faces must be one of {FACES}, got {params.faces!r}")
        if params.body_box not in BODY_BOXES:
            raise ValueError(
                f"detect.body_box must be one of {BODY_BOXES}, got {params.body_box!r}"
            )
        self.params = params
        self._face = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=params.face_min_confidence
        )
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True,
            model_complexity=1,
            min_detection_confidence=params.body_min_confidence,
        )
        # the last frame detected and its result: face() and body() on the same array share
        # one detection pass (the frames stage asks for both)
        self._last: tuple[np.ndarray, FrameDetections] | None = None

    def close(self) -> None:
        self._face.close()
        self._pose.close()

    def __enter__(self) -> MediaPipeDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def detect(self, rgb: np.ndarray) -> FrameDetections:
        """The frame's faces and bodies under the configured rules (the result for the same,
        unchanged array object is reused)."""
        if self._last is not None and self._last[0] is rgb:
            return self._last[1]
        faces = self.faces(rgb)
        person = self.pose_box(rgb)
        if self.params.body_box == "person_at_face":
            found = person_at_face(faces, [person] if person else [], self.params.faces == "all")
        else:
            kept = faces if self.params.faces == "all" else faces[:1]
            found = FrameDetections(kept, [person] if person else [])
        self._last = (rgb, found)
        return found

    def face(self, rgb: np.ndarray) -> Detection | None:
        """The frame's first face crop box (best face, or its stand-in), None when none."""
        found = self.detect(rgb).faces
        return found[0] if found else None

    def body(self, rgb: np.ndarray) -> Detection | None:
        """The frame's first body crop box, None when none."""
        found = self.detect(rgb).bodies
        return found[0] if found else None

    def faces(self, rgb: np.ndarray) -> list[Detection]:
        """Every detected face, most confident first."""
        result = self._face.process(rgb)
        out = []
        for d in result.detections or []:
            bb = d.location_data.relative_bounding_box
            box = _clip_box((bb.xmin, bb.ymin, bb.xmin + bb.width, bb.ymin + bb.height))
            out.append(Detection(box, float(d.score[0])))
        return sorted(out, key=lambda d: -d.score)  # stable: equal scores keep their order

    def pose_box(self, rgb: np.ndarray) -> Detection | None:
        """The extent of the visible pose landmarks (one person), None without a pose."""
        result = self._pose.process(rgb)
        if result.pose_landmarks is None:
            return None
        pts = [
            (lm.x, lm.y, lm.visibility)
            for lm in result.pose_landmarks.landmark
            if lm.visibility >= self.params.body_min_confidence
        ]
        if len(pts) < 3:
            return None
        xs, ys, vis = zip(*pts, strict=True)
        box = _clip_box((min(xs), min(ys), max(xs), max(ys)))
        if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
            return None
        return Detection(box, float(np.mean(vis)))


def _clip_box(box: Box) -> Box:
    x0, y0, x1, y1 = (float(np.clip(v, 0.0, 1.0)) for v in box)
    return (x0, y0, x1, y1)


# ---------------------------------------------------------------------------------------------
# crops


def square_crop(rgb: np.ndarray, box: Box, margin: float, size: int) -> np.ndarray:
    """Crop a square around the box (grown by `margin` of its size), resized to size x size."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    side = max(side, 2.0)
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    right, bottom = int(round(cx + side / 2)), int(round(cy + side / 2))
    # pad with edge pixels where the square leaves the frame, so the face stays centred
    pad = max(0, -left, -top, right - w, bottom - h)
    if pad:
        rgb = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        left, top, right, bottom = left + pad, top + pad, right + pad, bottom + pad
    crop = rgb[top:bottom, left:right]
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def scene_image(rgb: np.ndarray, size: int) -> np.ndarray:
    """The whole frame with its short side resized to `size` (encoders centre-crop it)."""
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    return cv2.resize(
        rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
    )


def box_crop(rgb: np.ndarray, box: Box, margin: float) -> np.ndarray | None:
    """The box's own pixels, grown by `margin` of its size and kept inside the frame, corners
    truncated to whole pixels as the reference cuts them; not resized (the encoder's transform
    resizes, as CLIPProcessor does the reference's crops). None for a box under one pixel."""
    h, w = rgb.shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    x0, y0, x1, y1 = _clip_box(
        (box[0] - margin * bw, box[1] - margin * bh, box[2] + margin * bw, box[3] + margin * bh)
    )
    roi = rgb[int(y0 * h) : int(y1 * h), int(x0 * w) : int(x1 * w)]
    return np.ascontiguousarray(roi) if roi.size else None


@dataclass
class FrameCrops:
    """The uint8 RGB images one frame gives the encoders, in the order of its detections
    (a box too small to cut is left out, as the reference leaves it out)."""

    scene: np.ndarray
    faces: list[tuple[Detection, np.ndarray]]
    bodies: list[tuple[Detection, np.ndarray]]


def frame_crops(
    rgb: np.ndarray, found: FrameDetections, detect: DetectParams, size: int, crop: str
) -> FrameCrops:
    """The scene, face and body images of one frame, cut as `crop` (frames.crop) says."""
    if crop not in CROPS:
        raise ValueError(f"frames.crop must be one of {CROPS}, got {crop!r}")

    def cut(d: Detection, margin: float) -> np.ndarray | None:
        if crop == "square":
            return square_crop(rgb, d.box, margin, size)
        return box_crop(rgb, d.box, margin)

    def all_of(dets: list[Detection], margin: float) -> list[tuple[Detection, np.ndarray]]:
        cuts = [(d, cut(d, margin)) for d in dets]
        return [(d, im) for d, im in cuts if im is not None]

    scene = scene_image(rgb, size) if crop == "square" else np.ascontiguousarray(rgb)
    return FrameCrops(
        scene=scene,
        faces=all_of(found.faces, detect.face_margin),
        bodies=all_of(found.bodies, detect.body_margin),
    )
