"""The Predictor: a trained system loaded once, then applied batch by batch.

Models are rebuilt by :mod:`mepr.models.checkpoints` from their ``config.json`` and
``model.safetensors`` (never a pickle): the stage-3 fusion model and the stage-2 models the
pipeline spec names.  A video goes through :func:`~mepr.predict.extraction.extract_video`
(one at a time), then :func:`~mepr.predict.embedding.embed_batch` and the models (a batch at
a time); :func:`~mepr.predict.record.prediction_record` writes up each result.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from mepr.labels import EMOTIONS, IMAGE_MODALITIES, TRAITS
from mepr.metrics import softmax
from mepr.models import checkpoints
from mepr.predict.attention import AttentionRecorder
from mepr.predict.embedding import Encoders, embed_batch
from mepr.predict.errors import CheckpointError, PredictError
from mepr.predict.extraction import Extraction, MediaTools, extract_video
from mepr.predict.inputs import VideoInput
from mepr.predict.record import prediction_record
from mepr.predict.spec import PIPELINE_FILE, load_pipeline


def load_fusion_checkpoint(directory: str | Path, device: str = "cpu"):
    """(FusionModel in eval mode, its config.json) from a train-fusion folder."""
    return checkpoints.load_model(directory, "fusion", device)


def load_cross_checkpoint(directory: str | Path, device: str = "cpu"):
    """(CrossDomainModel in eval mode, its config.json) from a train-cross folder."""
    return checkpoints.load_model(directory, "cross", device)


class Predictor:
    """Loads the models once; `extract` one video at a time, then `predict` a batch."""

    def __init__(
        self,
        model_dir: str | Path,
        *,
        results_root: str | Path | None = None,
        device: str | None = None,
    ):
        import torch

        from mepr.devices import pick_device

        start = time.perf_counter()
        self.model_dir = Path(model_dir)
        self.pipeline = load_pipeline(self.model_dir, results_root=results_root, device=device)
        self.device = torch.device(pick_device(device or "auto"))
        self.fusion, self.fusion_config = load_fusion_checkpoint(self.model_dir, self.device)
        self.modalities = list(self.fusion.modalities)
        if self.modalities != self.pipeline.modalities:
            raise PredictError(
                f"{self.model_dir / PIPELINE_FILE} lists modalities {self.pipeline.modalities}, "
                f"the fusion model fuses {self.modalities}: refresh the spec"
            )
        self.cross = {}
        for m, width in zip(self.modalities, self.fusion.cfg.input_dims, strict=True):
            model, _ = load_cross_checkpoint(self.pipeline.cross_dirs[m], self.device)
            gives = 2 * model.cfg.hidden_dim
            if gives != width:
                raise CheckpointError(
                    f"the fusion model expects {width}-d {m} features, the stage-2 {m} model in "
                    f"{self.pipeline.cross_dirs[m]} gives {gives}: they come from different runs"
                )
            self.cross[m] = model
        self._media = MediaTools()
        self._encoders = Encoders()
        self.load_seconds = time.perf_counter() - start

    # -- lifecycle
    def close(self) -> None:
        self._media.close()

    def __enter__(self) -> Predictor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def needs_frames(self) -> bool:
        return bool(set(self.modalities) & set(IMAGE_MODALITIES))

    @property
    def needs_audio(self) -> bool:
        return bool(set(self.modalities) & {"audio", "text"})

    # -- step 1: media (per video)
    def extract(self, video: VideoInput) -> Extraction:
        """Frames + crops, audio and transcript of one video; problems are recorded, not raised."""
        return extract_video(video, self.pipeline, self.modalities, self._media)

    # -- step 2: embeddings (per batch)
    def embed(self, batch: list[Extraction]):
        """(Sequences per modality, embedding problems per video id) of a batch."""
        in_dims = {m: self.cross[m].emotion_base.cfg.in_dim for m in self.modalities}
        return embed_batch(batch, self.pipeline, self.modalities, self._encoders, in_dims)

    # -- step 3: models (per batch)
    def run_models(self, seqs) -> dict[str, np.ndarray]:
        """The stage-2 models, then the fusion model (attention captured, and once more per
        modality left out) on a batch's sequences: arrays over the batch."""
        import torch

        mods = self.modalities
        dev = self.device
        feats, logits, scores, present = {}, [], [], []
        with torch.no_grad():
            for m in mods:
                s = seqs[m]
                out = self.cross[m](torch.from_numpy(s.x).to(dev), torch.from_numpy(s.mask).to(dev))
                fe = out["emotion_features"].float().cpu().numpy()
                fp = out["personality_features"].float().cpu().numpy()
                ok = s.present
                fe[~ok], fp[~ok] = 0.0, 0.0  # as in train-cross's features.parquet
                feats[m] = torch.from_numpy(np.concatenate([fe, fp], axis=1)).to(dev)
                logits.append(out["emotion_logits"].float())
                scores.append(out["personality_scores"].float())
                present.append(torch.from_numpy(ok).to(dev))
            logits_t = torch.stack(logits, dim=1)
            scores_t = torch.stack(scores, dim=1)
            present_t = torch.stack(present, dim=1)
            with AttentionRecorder(self.fusion) as rec:
                fused = self.fusion(feats, logits_t, scores_t, present_t)
            probs = softmax(fused["emotion_logits"].float().cpu().numpy(), float64=True)
            traits = fused["personality_scores"].float().cpu().numpy()
            # leave-one-out: what each present modality adds to the fused prediction
            n, m_count = present_t.shape
            loo_e = np.full((n, m_count, len(EMOTIONS)), np.nan, np.float32)
            loo_p = np.full((n, m_count, len(TRAITS)), np.nan, np.float32)
            for j in range(m_count):
                without = present_t.clone()
                without[:, j] = False
                o = self.fusion(feats, logits_t, scores_t, without)
                rows = present_t[:, j].cpu().numpy()
                loo_e[rows, j] = (
                    probs - softmax(o["emotion_logits"].float().cpu().numpy(), float64=True)
                )[rows]
                loo_p[rows, j] = (traits - o["personality_scores"].float().cpu().numpy())[rows]
        query = rec.query.mean(axis=1) if rec.query is not None else None  # (B, 2, M)
        return {
            "probs": probs,
            "traits": traits,
            "modality_probs": softmax(logits_t.cpu().numpy(), float64=True),  # (B, M, 7)
            "modality_traits": scores_t.cpu().numpy(),  # (B, M, 5)
            "present": present_t.cpu().numpy(),
            "graph": rec.graph,  # (B, M, M) or None
            "query": query,
            "loo_emotion": loo_e,
            "loo_personality": loo_p,
        }

    def predict(self, batch: list[Extraction]) -> list[dict[str, Any]]:
        """Prediction records (the per-video JSON) for extractions that did not fail."""
        if not batch:
            return []
        t = time.perf_counter()
        seqs, embed_failures = self.embed(batch)
        t_embed = time.perf_counter() - t
        t = time.perf_counter()
        out = self.run_models(seqs)
        t_models = time.perf_counter() - t
        records = []
        for i, ex in enumerate(batch):
            ex.warnings += embed_failures.get(ex.video.video_id, [])
            ex.timings["embed_s"] = t_embed / len(batch)  # the batch's time, shared equally
            ex.timings["models_s"] = t_models / len(batch)
            records.append(
                prediction_record(
                    i,
                    ex,
                    seqs,
                    out,
                    modalities=self.modalities,
                    model_dir=self.model_dir,
                    spec=self.pipeline.spec,
                    fusion_config=self.fusion_config,
                )
            )
        return records
