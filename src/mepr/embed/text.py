"""Text embeddings from a BERT-family encoder (BGE in the paper) via transformers."""

from __future__ import annotations

import numpy as np
import torch

from mepr.config import EncoderParams
from mepr.embed import pick_device, resolve_model_ref


class TextEncoder:
    def __init__(self, params: EncoderParams):
        from transformers import AutoModel, AutoTokenizer

        self.device = pick_device(params.device)
        path = resolve_model_ref(params.model)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        self.model = AutoModel.from_pretrained(path, dtype=dtype).to(self.device).eval()
        self.pooling = params.pooling
        self.max_tokens = params.max_tokens
        self.batch_size = params.batch_size
        self.name = f"hf_text:{params.model}:{params.pooling}"

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """One array per text: (tokens, dim) for 'token' pooling, (1, dim) for cls / mean."""
        out: list[np.ndarray] = []
        for i in range(0, len(texts), self.batch_size):
            batch = self.tokenizer(
                texts[i : i + self.batch_size],
                padding=True,
                truncation=True,
                max_length=self.max_tokens,
                return_tensors="pt",
            ).to(self.device)
            hidden = self.model(**batch).last_hidden_state.float()
            mask = batch["attention_mask"].bool()
            for h, m in zip(hidden, mask, strict=True):
                if self.pooling == "cls":
                    out.append(h[:1].cpu().numpy())
                elif self.pooling == "mean":
                    out.append(h[m].mean(0, keepdim=True).cpu().numpy())
                else:
                    out.append(h[m].cpu().numpy())
        return out
