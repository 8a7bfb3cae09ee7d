"""Wav2Vec2 hidden states (transformers), pooled into fixed windows of time, or every frame.

`encoders.audio.steps`: `window_mean` (mepr) averages the frames of each `window_s` window;
`every_frame` (the reference) keeps each frame of the layer, one per conv stride (20 ms at
16 kHz): a clip of t seconds gives about 50 t steps, which training subsamples to
`train.max_steps` unless that is at least as long.

Clips are encoded in batches across videos. `batch_plan` sorts them by length and groups
neighbours (at most `batch_size` clips and `max_batch_seconds` of padded audio per batch);
a batch is zero-padded with an attention mask. Only frames computed from real samples are
pooled (the conv feature encoder's output length of each clip), so for models whose feature
encoder uses layer norm (`feat_extract_norm: layer`, as wav2vec2-large-robust and the demo
encoder) a clip's vectors equal those of encoding it alone, up to float rounding. Models with
group norm (wav2vec2-base) are not padding-invariant: for them only clips of equal length
share a batch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mepr.config import EncoderParams
from mepr.embed import hf_identity, library_versions, load_hf_model
from mepr.embed.store import go_offline, stored_encoder

STEPS = ("window_mean", "every_frame")  # encoders.audio.steps


class Wav2Vec2Encoder:
    def __init__(self, params: EncoderParams, store=None):
        self.stored = stored_encoder(params, store)  # a hub model: its store copy
        go_offline()  # before transformers is imported
        from transformers import AutoFeatureExtractor, Wav2Vec2Model

        self.params = params
        self.model, self.extractor, self.resolved, self.device = load_hf_model(
            Wav2Vec2Model, params, AutoFeatureExtractor, self.stored
        )
        self.dtype = self.model.dtype
        self.layer = params.layer
        if params.steps not in STEPS:
            raise ValueError(f"encoders.audio.steps must be one of {STEPS}: {params.steps!r}")
        self.window_s = params.window_s
        self.sample_rate = int(self.extractor.sampling_rate)
        self.name = f"wav2vec2:{params.model}:layer{params.layer}"
        # padding + attention mask leaves a clip's outputs unchanged only with layer norm
        self.padding_invariant = self.model.config.feat_extract_norm == "layer"
        stride = float(np.prod(self.model.config.conv_stride))
        self.step_s = stride / self.sample_rate  # one vector per conv stride (20 ms at 16 kHz)
        # a window of one frame is that frame: every_frame is pooling over windows of 1
        every = params.steps == "every_frame"
        self.per_window = 1 if every else max(1, round(self.window_s / self.step_s))

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def identity(self) -> dict[str, Any]:
        cfg = self.model.config
        return {
            **hf_identity(self.model, self.params, self.resolved, self.stored),
            "layer": self.layer,
            "n_layers": int(cfg.num_hidden_layers),
            "pooling": self._pooling(),
            "dim": self.dim,
            "sample_rate": self.sample_rate,
            "feat_extract_norm": cfg.feat_extract_norm,
            "batching": "padded + attention mask" if self.padding_invariant else "equal lengths",
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": self.device,
            "versions": library_versions("transformers", "torch"),
        }

    def _pooling(self) -> str:
        if self.params.steps == "every_frame":
            return f"every frame ({self.step_s:g} s)"
        return f"mean over {self.per_window} frames ({self.per_window * self.step_s:g} s)"

    def batch_plan(self, lengths: list[int]) -> list[list[int]]:
        """Indices into `lengths`, grouped into batches of similar length."""
        order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
        cap = self.params.max_batch_seconds * self.sample_rate
        batches: list[list[int]] = []
        for i in order:
            if batches:
                b = batches[-1]
                longest = max(lengths[i], lengths[b[0]])  # sorted: the new one is the longest
                fits = len(b) < self.params.batch_size and (len(b) + 1) * longest <= cap
                if fits and (self.padding_invariant or lengths[i] == lengths[b[0]]):
                    b.append(i)
                    continue
            batches.append([i])
        return batches

    @torch.inference_mode()
    def forward(self, values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """The bare encoder: (B, samples) -> (B, frames, dim) hidden states of `layer`."""
        values = values.to(self.device, self.dtype)
        mask = mask.to(self.device) if mask is not None else None
        if self.layer == -1:
            return self.model(values, attention_mask=mask).last_hidden_state
        out = self.model(values, attention_mask=mask, output_hidden_states=True)
        return out.hidden_states[self.layer]

    def prepare(self, clips: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor | None]:
        """float32 mono clips -> padded, normalised input values and the attention mask."""
        inputs = self.extractor(
            clips,
            sampling_rate=self.sample_rate,
            padding=True,
            return_attention_mask=True,
            return_tensors="pt",
        )
        mask = inputs.get("attention_mask") if self.padding_invariant else None
        return inputs["input_values"], mask

    def pool(self, hidden: torch.Tensor, lengths: list[int]) -> list[np.ndarray]:
        """(B, frames, dim) -> per clip (windows, dim): means over windows of `per_window`
        frames of its real samples (the last window may be shorter). Runs where `hidden` is,
        so only the pooled vectors travel back from a GPU."""
        n_frames = self.model._get_feat_extract_output_lengths(torch.tensor(lengths))
        n_frames = n_frames.clamp(1, hidden.shape[1]).to(hidden.device)
        b, t, d = hidden.shape
        w = self.per_window
        n_win = -(-t // w)
        h = torch.nn.functional.pad(hidden.float(), (0, 0, 0, n_win * w - t))
        valid = torch.arange(n_win * w, device=hidden.device)[None] < n_frames[:, None]
        sums = (h * valid[..., None]).view(b, n_win, w, d).sum(2)
        means = sums / valid.view(b, n_win, w).sum(2).clamp_min(1)[..., None]
        means = means.cpu().numpy()
        return [means[i, : -(-int(n) // w)] for i, n in enumerate(n_frames.tolist())]

    def encode_batch(self, clips: list[np.ndarray]) -> list[np.ndarray]:
        """float32 mono clips at the model's rate -> one (windows, dim) array per clip."""
        values, mask = self.prepare(clips)
        return self.pool(self.forward(values, mask), [len(c) for c in clips])

    def encode(self, audio: np.ndarray) -> np.ndarray:
        """One clip -> (windows, dim); the whole clip in one pass."""
        return self.encode_batch([audio])[0]
