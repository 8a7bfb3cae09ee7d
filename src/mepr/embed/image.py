"""CLIP image embeddings through open_clip (face, body and scene crops).

Batches are formed across videos (every crop of a shard, in order). Preprocessing is the
model's own open_clip transform; when that transform is the standard one (resize the short
side to S, centre crop S x S, to tensor, normalise) and an image's short side already is S
(face/body crops of `frames.crop_size` = S, scene images resized to it), it is done on whole
batches with numpy/torch instead of image by image through PIL: the same numbers (PIL's
resize to the same size is a copy), without the per-image overhead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from mepr.config import EncoderParams
from mepr.embed import library_versions, pick_device, resolve_model_ref, weights_digest

_POOLING = {"tok": "class token", "avg": "mean of patch tokens", "none": "all tokens"}


def _standard_transform(preprocess) -> tuple[int, np.ndarray, np.ndarray] | None:
    """(S, mean, std) when `preprocess` is Resize(S) -> CenterCrop(S) -> RGB -> tensor -> Normalize."""
    steps = getattr(preprocess, "transforms", None)
    names = [type(t).__name__ for t in steps or []]
    if names != ["Resize", "CenterCrop", "MaybeConvertMode", "MaybeToTensor", "Normalize"]:
        return None
    resize, crop, _, _, norm = steps
    size = resize.size
    size = size[0] if isinstance(size, (list, tuple)) and len(size) == 1 else size
    if not isinstance(size, int) or tuple(crop.size) != (size, size):
        return None
    if getattr(resize, "max_size", None) is not None:
        return None
    return size, np.asarray(norm.mean, np.float32), np.asarray(norm.std, np.float32)


class ClipImageEncoder:
    def __init__(self, params: EncoderParams):
        import open_clip

        self.params = params
        self.device = pick_device(params.device)
        self.resolved = resolve_model_ref(params.model)
        ref = f"local-dir:{self.resolved}" if params.model.startswith("demo:") else self.resolved
        precision = "fp16" if self.device == "cuda" else "fp32"
        model, _, preprocess = open_clip.create_model_and_transforms(
            ref, pretrained=params.pretrained, device=self.device, precision=precision
        )
        self.model = model.eval()
        self.dtype = next(self.model.parameters()).dtype
        self.preprocess = preprocess
        self.batch_size = params.batch_size
        self.name = f"open_clip:{params.model}:{params.pretrained or ''}"
        std = _standard_transform(preprocess)
        self._size = std[0] if std else None
        if std:  # uint8 -> normalised float, per channel: ToTensor + Normalize as a lookup
            v = torch.arange(256, dtype=torch.float32).div(255)
            mean, sd = torch.from_numpy(std[1]), torch.from_numpy(std[2])
            lut = ((v[None, :] - mean[:, None]) / sd[:, None]).numpy()
            self._lut = [np.ascontiguousarray(row.reshape(1, 256)) for row in lut]

    @property
    def dim(self) -> int:
        return int(self.model.visual.output_dim)

    def identity(self) -> dict[str, Any]:
        """What produced the vectors: stored in every embedding shard's metadata."""
        visual = self.model.visual
        pool = str(getattr(visual, "pool_type", "tok"))
        local = Path(self.resolved)
        return {
            "library": "open_clip",
            "model": self.params.model,
            "resolved": self.resolved,
            "pretrained": self.params.pretrained,
            "weights": weights_digest(local) if local.exists() else None,
            "layer": "image tower output (visual projection)",
            "pooling": _POOLING.get(pool, pool),
            "normalised": False,
            "dim": self.dim,
            "image_size": list(getattr(visual, "image_size", ())),
            "preprocess": " ".join(repr(self.preprocess).split()),
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": self.device,
            "versions": library_versions("open_clip_torch", "torch", "torchvision", "pillow"),
        }

    # ---- preprocessing
    def preprocess_batch(self, images: list[np.ndarray], bgr: bool = False) -> torch.Tensor:
        """uint8 images (RGB, or BGR as OpenCV decodes them) -> (N, 3, S, S) float32, exactly
        as the model's transform does. Thread-safe (OpenCV releases the GIL)."""
        if self._size is None or any(min(im.shape[:2]) != self._size for im in images):
            rgb = [im[..., ::-1] if bgr else im for im in images]
            return torch.stack([self.preprocess(Image.fromarray(np.ascontiguousarray(im))) for im in rgb])  # fmt: skip
        s = self._size
        out = np.empty((len(images), 3, s, s), np.float32)
        source = (2, 1, 0) if bgr else (0, 1, 2)
        for i, im in enumerate(images):
            h, w = im.shape[:2]  # torchvision's CenterCrop offsets
            top, left = int(round((h - s) / 2.0)), int(round((w - s) / 2.0))
            planes = cv2.split(im[top : top + s, left : left + s])
            for c in range(3):
                cv2.LUT(planes[source[c]], self._lut[c], dst=out[i, c])
        return torch.from_numpy(out)

    # ---- forward
    @torch.inference_mode()
    def forward(self, batch: torch.Tensor) -> np.ndarray:
        """The bare encoder: a preprocessed batch -> (N, dim) float32."""
        out = self.model.encode_image(batch.to(self.device, self.dtype))
        return out.float().cpu().numpy()

    def encode(self, images: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 images -> (N, dim) float32 (not L2-normalised, as in the reference)."""
        b = self.batch_size
        out = [
            self.forward(self.preprocess_batch(images[i : i + b])) for i in range(0, len(images), b)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
