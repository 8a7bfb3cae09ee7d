"""`mepr predict`: the trained system applied to new videos.

There is one implementation of every step, shared with the DAG:

* media (:mod:`.extraction`): :func:`mepr.media.extract.frames_rows` with a
  :class:`MediaPipeDetector`, :func:`mepr.media.extract.audio_row`, and the ASR backend of
  :func:`mepr.asr.get_transcriber`;
* embeddings (:mod:`.embedding`): the DAG's shard functions (:mod:`mepr.embed.shard`) run on
  the batch's rows in memory, so masking rules (missing crops, silent or short audio, empty
  transcripts) cannot drift apart; the sequences are padded by the training loader's
  :func:`mepr.train.data.pack_sequences`;
* models (:mod:`.predictor`): the stage-2 cross-domain models and the stage-3 fusion model,
  loaded by :mod:`mepr.models.checkpoints` (never a pickle).

How a model is fed (frame sampling, detector, ASR, encoders) is recorded in a pipeline spec
next to the fusion model (:mod:`.spec`).  The other modules: :mod:`.inputs` (which videos),
:mod:`.attention` (the fusion model's attention weights), :mod:`.record` (one video's JSON),
:mod:`.batch` (a folder of videos to JSON + HTML and a summary), :mod:`.cli` (the commands).
"""

from __future__ import annotations

from mepr.predict.attention import AttentionRecorder
from mepr.predict.batch import BatchResult, predict_videos
from mepr.predict.errors import CheckpointError, PredictError
from mepr.predict.extraction import Extraction
from mepr.predict.inputs import VIDEO_EXTENSIONS, VideoInput, collect_videos, folder_videos
from mepr.predict.predictor import Predictor, load_cross_checkpoint, load_fusion_checkpoint
from mepr.predict.record import PREDICTION_SCHEMA, PREDICTION_VERSION
from mepr.predict.spec import (
    PIPELINE_FILE,
    Pipeline,
    RunShards,
    build_pipeline_spec,
    load_pipeline,
    write_pipeline_spec,
)

__all__ = [
    "PIPELINE_FILE",
    "PREDICTION_SCHEMA",
    "PREDICTION_VERSION",
    "VIDEO_EXTENSIONS",
    "AttentionRecorder",
    "BatchResult",
    "CheckpointError",
    "Extraction",
    "Pipeline",
    "PredictError",
    "Predictor",
    "RunShards",
    "VideoInput",
    "build_pipeline_spec",
    "collect_videos",
    "folder_videos",
    "load_cross_checkpoint",
    "load_fusion_checkpoint",
    "load_pipeline",
    "predict_videos",
    "write_pipeline_spec",
]
