"""CLIP image embeddings through open_clip (face, body and scene crops)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from mepr.config import EncoderParams
from mepr.embed import pick_device, resolve_model_ref


class ClipImageEncoder:
    def __init__(self, params: EncoderParams):
        import open_clip

        self.device = pick_device(params.device)
        ref = resolve_model_ref(params.model)
        if params.model.startswith("demo:"):
            ref = f"local-dir:{ref}"
        precision = "fp16" if self.device == "cuda" else "fp32"
        model, _, preprocess = open_clip.create_model_and_transforms(
            ref, pretrained=params.pretrained, device=self.device, precision=precision
        )
        self.model = model.eval()
        self.preprocess = preprocess
        self.batch_size = params.batch_size
        self.name = f"open_clip:{params.model}:{params.pretrained or ''}"

    @property
    def dim(self) -> int:
        return int(self.model.visual.output_dim)

    @torch.inference_mode()
    def encode(self, images: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 images -> (N, dim) float32 (not L2-normalised, as in the reference)."""
        out = []
        dtype = next(self.model.parameters()).dtype
        for i in range(0, len(images), self.batch_size):
            batch = torch.stack(
                [self.preprocess(Image.fromarray(im)) for im in images[i : i + self.batch_size]]
            )
            out.append(self.model.encode_image(batch.to(self.device, dtype)).float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
