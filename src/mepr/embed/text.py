"""Text embeddings from a BERT-family encoder (BGE in the paper) via transformers.

A text keeps at most `encoders.text.max_tokens` tokens (special tokens included), and never
more than the tokenizer's own limit (`model_max_length`; 512 for BGE, the reference's
truncation). With `pooling: token` each token is a step; training subsamples a sequence longer
than `train.max_steps` uniformly, so the reference's full sequences need max_steps >= 512.

Texts are tokenised once, sorted by token count and batched with their neighbours (less
padding), then put back in their order; the attention mask keeps padding out of every text's
vectors.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mepr.config import EncoderParams
from mepr.embed import hf_identity, library_versions, load_hf_model
from mepr.embed.store import go_offline, stored_encoder


class TextEncoder:
    def __init__(self, params: EncoderParams, store=None):
        self.stored = stored_encoder(params, store)  # a hub model: its store copy
        go_offline()  # before transformers is imported
        from transformers import AutoModel, AutoTokenizer

        self.params = params
        self.model, self.tokenizer, self.resolved, self.device = load_hf_model(
            AutoModel, params, AutoTokenizer, self.stored
        )
        self.dtype = self.model.dtype
        self.pooling = params.pooling
        # a max_length beyond the model's positions would fail in the forward pass
        limit = getattr(self.tokenizer, "model_max_length", None) or params.max_tokens
        self.max_tokens = min(params.max_tokens, int(min(limit, 2**31 - 1)))
        self.batch_size = params.batch_size
        self.name = f"hf_text:{params.model}:{params.pooling}"

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def identity(self) -> dict[str, Any]:
        return {
            **hf_identity(self.model, self.params, self.resolved, self.stored),
            "tokenizer": type(self.tokenizer).__name__,
            "layer": "last_hidden_state",
            "pooling": self.pooling,
            "max_tokens": self.max_tokens,
            "dim": self.dim,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": self.device,
            "versions": library_versions("transformers", "tokenizers", "torch"),
        }

    def tokenize(self, texts: list[str]) -> list[dict[str, list[int]]]:
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_tokens)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        return [{k: enc[k][i] for k in keys} for i in range(len(texts))]

    @torch.inference_mode()
    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The bare encoder: padded token ids -> (B, tokens, dim) last hidden states."""
        batch = {k: v.to(self.device) for k, v in batch.items()}
        return self.model(**batch).last_hidden_state

    def _pool(self, hidden: torch.Tensor, mask: torch.Tensor) -> list[np.ndarray]:
        hidden, mask = hidden.float().cpu(), mask.bool().cpu()
        out = []
        for h, m in zip(hidden, mask, strict=True):
            if self.pooling == "cls":
                out.append(h[:1].numpy())
            elif self.pooling == "mean":
                out.append(h[m].mean(0, keepdim=True).numpy())
            else:
                out.append(h[m].numpy())
        return out

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """One array per text: (tokens, dim) for 'token' pooling, (1, dim) for cls / mean."""
        tokens = self.tokenize(texts)
        order = sorted(range(len(texts)), key=lambda i: (len(tokens[i]["input_ids"]), i))
        out: list[np.ndarray | None] = [None] * len(texts)
        for s in range(0, len(order), self.batch_size):
            idx = order[s : s + self.batch_size]
            batch = self.tokenizer.pad([tokens[i] for i in idx], return_tensors="pt")
            hidden = self.forward(dict(batch))
            for i, vec in zip(idx, self._pool(hidden, batch["attention_mask"]), strict=True):
                out[i] = vec
        return out  # type: ignore[return-value]
