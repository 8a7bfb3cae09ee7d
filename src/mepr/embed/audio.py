"""Wav2Vec2 hidden states (transformers), pooled into fixed windows of time."""

from __future__ import annotations

import numpy as np
import torch

from mepr.config import EncoderParams
from mepr.embed import pick_device, resolve_model_ref


class Wav2Vec2Encoder:
    def __init__(self, params: EncoderParams):
        from transformers import AutoFeatureExtractor, Wav2Vec2Model

        self.device = pick_device(params.device)
        path = resolve_model_ref(params.model)
        self.extractor = AutoFeatureExtractor.from_pretrained(path)
        dtype = torch.float16 if self.device == "cuda" else torch.float32
        self.model = Wav2Vec2Model.from_pretrained(path, dtype=dtype).to(self.device).eval()
        self.layer = params.layer
        self.window_s = params.window_s
        self.sample_rate = int(self.extractor.sampling_rate)
        self.name = f"wav2vec2:{params.model}:layer{params.layer}"

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @torch.inference_mode()
    def encode(self, audio: np.ndarray) -> np.ndarray:
        """float32 mono at the model's rate -> (windows, dim); the whole clip in one pass."""
        inputs = self.extractor(audio, sampling_rate=self.sample_rate, return_tensors="pt")
        values = inputs["input_values"].to(self.device, next(self.model.parameters()).dtype)
        out = self.model(values, output_hidden_states=True)
        hidden = out.hidden_states[self.layer][0].float().cpu().numpy()  # (T, dim)
        # wav2vec2 emits one vector per conv stride (320 samples = 20 ms at 16 kHz)
        step_s = float(np.prod(self.model.config.conv_stride)) / self.sample_rate
        per_window = max(1, round(self.window_s / step_s))
        n = int(np.ceil(len(hidden) / per_window))
        return np.stack([hidden[i * per_window : (i + 1) * per_window].mean(0) for i in range(n)])
