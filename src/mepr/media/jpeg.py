"""JPEG encode and decode on the CPU (OpenCV): the one owner of the crops' image codec.

(`mepr.embed.image` also decodes on the GPU with nvJPEG; that path stays with the encoder.)
"""

from __future__ import annotations

import cv2
import numpy as np

# OpenCV >= 4.10 decodes straight to RGB; older ones decode BGR (see `decode`)
_RGB_FLAG = getattr(cv2, "IMREAD_COLOR_RGB", None)
DECODES_BGR: bool = _RGB_FLAG is None


def encode(rgb: np.ndarray, quality: int) -> bytes:
    """RGB uint8 (H, W, 3) -> JPEG bytes at `quality`."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return buf.tobytes()


def decode_rgb(data: bytes) -> np.ndarray:
    """JPEG bytes -> RGB uint8 (H, W, 3) (decoded BGR, then converted)."""
    arr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)


def decode(data: bytes) -> np.ndarray:
    """JPEG bytes -> uint8 (H, W, 3) in the order OpenCV decodes fastest: RGB, or BGR where
    OpenCV cannot decode to RGB (`DECODES_BGR`)."""
    buf = np.frombuffer(data, dtype=np.uint8)
    return cv2.imdecode(buf, cv2.IMREAD_COLOR if _RGB_FLAG is None else _RGB_FLAG)
