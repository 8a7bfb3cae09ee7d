"""Face and body detection with MediaPipe, and the crops the image encoders see."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mepr.config import DetectParams

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 relative to the frame


@dataclass
class Detection:
    box: Box
    score: float


class MediaPipeDetector:
    """Best face (face_detection, full range) and person box (pose landmarks) per RGB frame."""

    def __init__(self, params: DetectParams):
        import mediapipe as mp

        self.params = params
        self._face = mp.solutions.face_detection.FaceDetection(
            model_selection=1, min_detection_confidence=params.face_min_confidence
        )
        self._pose = mp.solutions.pose.Pose(
            static_image_mode=True,
            model_complexity=1,
            min_detection_confidence=params.body_min_confidence,
        )

    def close(self) -> None:
        self._face.close()
        self._pose.close()

    def __enter__(self) -> MediaPipeDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def face(self, rgb: np.ndarray) -> Detection | None:
        result = self._face.process(rgb)
        if not result.detections:
            return None
        best = max(result.detections, key=lambda d: d.score[0])
        bb = best.location_data.relative_bounding_box
        box = (bb.xmin, bb.ymin, bb.xmin + bb.width, bb.ymin + bb.height)
        return Detection(_clip_box(box), float(best.score[0]))

    def body(self, rgb: np.ndarray) -> Detection | None:
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
