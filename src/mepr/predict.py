"""`mepr predict`: the trained system applied to new videos.

There is one implementation of every step, shared with the DAG:

* media: :func:`mepr.media.extract.frames_rows` with a :class:`MediaPipeDetector`,
  :func:`mepr.media.extract.audio_row`, and the ASR backend of :func:`mepr.asr.get_transcriber`;
* embeddings: the DAG's shard functions (:mod:`mepr.embed.shard`) run on small temporary
  shards of the batch, so masking rules (missing crops, silent or short audio, empty
  transcripts) cannot drift apart; the sequences are read back with the training loader
  :func:`mepr.train.data.load_sequences`;
* models: the stage-2 cross-domain models and the stage-3 fusion model, rebuilt from their
  ``config.json`` and ``model.safetensors`` (never a pickle).

Which frame sampling, detector, ASR and encoders a model was trained with is not part of the
model folders, so it is recorded in a **pipeline spec** (``pipeline.json`` next to the fusion
model, see :func:`build_pipeline_spec`): read from the parameters stored in the metadata of the
run's frames/audio/transcripts/embedding shards, plus the sha256 of every checkpoint so that a
spec never silently pairs with retrained weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mepr import __version__, shards
from mepr.config import (
    AsrParams,
    AudioParams,
    DetectParams,
    EncoderParams,
    FramesParams,
    from_dict,
)
from mepr.embed.refs import ModelRef
from mepr.files import sha256_file, write_json_atomic
from mepr.labels import EMOTIONS, IMAGE_MODALITIES, TRAITS
from mepr.metrics import softmax

PIPELINE_FILE = "pipeline.json"
PIPELINE_SCHEMA = "mepr.pipeline"
PIPELINE_VERSION = 1
PREDICTION_SCHEMA = "mepr.prediction"
PREDICTION_VERSION = 1
VIDEO_EXTENSIONS = frozenset(
    [
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".mpg",
        ".mpeg",
        ".wmv",
        ".flv",
        ".3gp",
        ".ts",
        ".mts",
    ]
)
# The evaluation's emotion-presence rule (mepr.metrics): no emotion when p(neutral) >= 6/7,
# else every emotion with p >= 1/7 is present.
PRESENCE_THRESHOLD = 1.0 / len(EMOTIONS)
NEUTRAL_THRESHOLD = 6.0 / len(EMOTIONS)


class PredictError(ValueError):
    """A problem with the model folder or the run it came from (affects every video)."""


class CheckpointError(PredictError):
    """Weights that do not fit the model their config.json describes (or no readable weights)."""


# --------------------------------------------------------------------------- small helpers
def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.exists():
        raise PredictError(f"{path}: no such file ({what})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PredictError(f"{path}: not valid JSON ({e})") from e


def _write_json_atomic(path: Path, data: Any) -> None:
    from mepr.train.loop import to_jsonable

    write_json_atomic(path, to_jsonable(data), sort_keys=False, ensure_ascii=False)


def _relpath(target: Path, start: Path) -> str:
    return os.path.relpath(target.resolve(), start.resolve())


# --------------------------------------------------------------------------- pipeline spec
def _agreeing(paths: list[Path], what: str, pick=lambda p: p) -> dict[str, Any]:
    """The one parameter set all `paths` were written with (error when they disagree)."""
    found: dict[str, list[Path]] = {}
    for p in paths:
        key = json.dumps(pick(shards.read_params(p)), sort_keys=True)
        found.setdefault(key, []).append(p)
    if not found:
        raise PredictError(f"no {what} shards found")
    if len(found) > 1:
        (ka, pa), (kb, pb) = list(found.items())[:2]
        raise PredictError(
            f"{what} shards were written with different parameters ({pa[0]}: {ka}; {pb[0]}: {kb}); "
            "re-run the workflow so the whole run uses one config"
        )
    return json.loads(next(iter(found)))


def build_pipeline_spec(model_dir: str | Path, results_root: str | Path | None = None) -> dict:
    """Describe how to feed the fusion model in `model_dir` from a raw video.

    `results_root` is the run's results folder (default: the fusion folder's parent); the
    stage-2 models are read from ``unimodal/{modality}/cross`` and the extraction and encoder
    parameters from the metadata of the shards under ``frames/``, ``audio/``,
    ``transcripts/`` and ``embeddings/`` (every shard of a kind must agree).
    """
    model_dir = Path(model_dir)
    root = Path(results_root) if results_root is not None else model_dir.resolve().parent
    fusion_cfg = _read_json(model_dir / "config.json", "the fusion model's config")
    if fusion_cfg.get("stage") != "fusion":
        raise PredictError(f"{model_dir}: not a stage-3 (train-fusion) model folder")
    modalities = list(fusion_cfg["modalities"])
    spec: dict[str, Any] = {
        "schema": PIPELINE_SCHEMA,
        "version": PIPELINE_VERSION,
        "mepr_version": __version__,
        "modalities": modalities,
        "fusion": {"path": ".", "sha256": sha256_file(model_dir / "model.safetensors")},
        "cross": {},
        "encoders_dir": _relpath(root / "encoders", model_dir),
        "encoders": {},
    }
    for m in modalities:
        d = root / "unimodal" / m / "cross"
        cfg = _read_json(d / "config.json", f"the stage-2 {m} model's config")
        if cfg.get("stage") != "cross" or cfg.get("modality") != m:
            raise PredictError(f"{d}: not the stage-2 (train-cross) {m} model folder")
        spec["cross"][m] = {
            "path": _relpath(d, model_dir),
            "sha256": sha256_file(d / "model.safetensors"),
            "max_steps": int(cfg["params"]["max_steps"]),
        }
        emb = sorted((root / "embeddings").glob(f"*/{m}/shard-*.parquet"))
        if not emb:
            raise PredictError(
                f"no {m} embedding shards under {root / 'embeddings'}: cannot tell which encoder "
                f"the model was trained with (give the run's results folder with --results)"
            )
        spec["encoders"][m] = _agreeing(emb, f"{m} embedding", lambda p: p.get("encoder", {}))
    if set(modalities) & set(IMAGE_MODALITIES):
        fr = _agreeing(sorted((root / "frames").glob("*/shard-*.parquet")), "frames")
        spec["frames"], spec["detect"] = fr["frames"], fr["detect"]
    if set(modalities) & {"audio", "text"}:
        spec["audio"] = _agreeing(sorted((root / "audio").glob("*/shard-*.parquet")), "audio")
    if "text" in modalities:
        spec["asr"] = _agreeing(
            sorted((root / "transcripts").glob("*/shard-*.parquet")), "transcripts"
        )
    return spec


def write_pipeline_spec(spec: dict, path: str | Path) -> Path:
    path = Path(path)
    _write_json_atomic(path, spec)
    return path


@dataclass
class Pipeline:
    """A loaded, checked pipeline spec with every path resolved."""

    model_dir: Path
    spec: dict[str, Any]
    modalities: list[str]
    cross_dirs: dict[str, Path]
    max_steps: dict[str, int]
    encoders: dict[str, EncoderParams]
    frames: FramesParams
    detect: DetectParams
    audio: AudioParams
    asr: AsrParams


def _resolve_encoder(section: dict, encoders_dir: Path, device: str | None) -> EncoderParams:
    """EncoderParams whose `demo:` reference points at the run's own encoders folder."""
    params = from_dict(EncoderParams, section)
    parsed = ModelRef.parse(params.model)
    if parsed.is_demo:
        path = (encoders_dir / parsed.name).resolve()
        if not path.exists():
            raise PredictError(
                f"demo encoder '{params.model}' not found at {path} "
                f"(build it with `mepr build-demo-encoder {parsed.name} --out {path}`)"
            )
        ref = f"local-dir:{path}" if params.kind == "open_clip" else str(path)
        params = dataclasses.replace(params, model=ref)
    if device:
        params = dataclasses.replace(params, device=device)
    return params


def load_pipeline(
    model_dir: str | Path,
    *,
    results_root: str | Path | None = None,
    device: str | None = None,
    write_missing: bool = True,
) -> Pipeline:
    """The pipeline spec of `model_dir` (built from the run's shards and saved when missing)."""
    model_dir = Path(model_dir)
    spec_path = model_dir / PIPELINE_FILE
    if spec_path.exists() and results_root is None:
        spec = _read_json(spec_path, "the pipeline spec")
        if spec.get("schema") != PIPELINE_SCHEMA or spec.get("version") != PIPELINE_VERSION:
            raise PredictError(
                f"{spec_path}: not a version-{PIPELINE_VERSION} mepr pipeline spec; rebuild it "
                f"with `mepr pipeline-spec --model {model_dir}`"
            )
    else:
        spec = build_pipeline_spec(model_dir, results_root)
        if write_missing and not spec_path.exists():
            with contextlib.suppress(OSError):  # a read-only model folder still predicts
                write_pipeline_spec(spec, spec_path)
    checks = [("fusion model", model_dir / spec["fusion"]["path"], spec["fusion"]["sha256"])]
    cross_dirs = {m: (model_dir / c["path"]) for m, c in spec["cross"].items()}
    checks += [(f"stage-2 {m} model", cross_dirs[m], c["sha256"]) for m, c in spec["cross"].items()]
    for what, d, digest in checks:
        weights = d / "model.safetensors"
        if not weights.exists():
            raise PredictError(f"{weights}: no such file (the {what} named by {spec_path.name})")
        if sha256_file(weights) != digest:
            raise PredictError(
                f"{weights} changed after {spec_path} was written (retrained?): refresh the spec "
                f"with `mepr pipeline-spec --model {model_dir}` (or snakemake {spec_path})"
            )
    encoders_dir = model_dir / spec["encoders_dir"]
    modalities = list(spec["modalities"])
    return Pipeline(
        model_dir=model_dir,
        spec=spec,
        modalities=modalities,
        cross_dirs=cross_dirs,
        max_steps={m: int(c["max_steps"]) for m, c in spec["cross"].items()},
        encoders={
            m: _resolve_encoder(spec["encoders"][m], encoders_dir, device) for m in modalities
        },
        frames=from_dict(FramesParams, spec.get("frames", {})),
        detect=from_dict(DetectParams, spec.get("detect", {})),
        audio=from_dict(AudioParams, spec.get("audio", {})),
        asr=from_dict(AsrParams, spec.get("asr", {})),
    )


# --------------------------------------------------------------------------- checkpoints
def _stage_config(directory: Path, stage: str) -> dict[str, Any]:
    cfg = _read_json(directory / "config.json", f"the {stage} model's config")
    if cfg.get("stage") != stage:
        raise CheckpointError(
            f"{directory}: a '{cfg.get('stage')}' model folder, expected a '{stage}' one"
        )
    return cfg


def _load_state(model, directory: Path):
    """Load model.safetensors into `model`, explaining any mismatch with the config."""
    from safetensors.torch import load_file

    path, cfg_path = directory / "model.safetensors", directory / "config.json"
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    try:
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from e
    expected = model.state_dict()
    problems = []
    for key in sorted(set(expected) | set(state)):
        if key not in state:
            problems.append(f"'{key}' is missing from the checkpoint")
        elif key not in expected:
            problems.append(f"the checkpoint has '{key}', which the config's model lacks")
        elif tuple(state[key].shape) != tuple(expected[key].shape):
            problems.append(
                f"'{key}' is {list(state[key].shape)} in the checkpoint but "
                f"{list(expected[key].shape)} in the model the config builds"
            )
    if problems:
        shown = "; ".join(problems[:3]) + (
            f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
        )
        raise CheckpointError(
            f"{path} was saved from a model built with a different config than {cfg_path} "
            f"({len(problems)} tensor(s) differ: {shown}). Use the config.json saved with "
            "these weights, or retrain."
        )
    model.load_state_dict(state, strict=True)
    return model.eval()


def _build(directory: Path, build):
    try:
        return build()
    except (TypeError, ValueError, KeyError) as e:
        raise CheckpointError(
            f"{directory / 'config.json'}: cannot build the model it describes ({e}); was it "
            "written by another mepr version?"
        ) from e


def load_fusion_checkpoint(directory: str | Path, device: str = "cpu"):
    """(FusionModel in eval mode, its config.json) from a train-fusion folder."""
    from mepr.models.fusion import FusionConfig, FusionModel

    d = Path(directory)
    cfg = _stage_config(d, "fusion")
    model = _build(d, lambda: FusionModel(FusionConfig(**cfg["model"])))
    return _load_state(model, d).to(device), cfg


def load_cross_checkpoint(directory: str | Path, device: str = "cpu"):
    """(CrossDomainModel in eval mode, its config.json) from a train-cross folder."""
    from mepr.models.unimodal import CrossConfig, CrossDomainModel, UnimodalConfig, UnimodalModel

    d = Path(directory)
    cfg = _stage_config(d, "cross")

    def build():
        mc = cfg["model"]
        return CrossDomainModel(
            UnimodalModel(UnimodalConfig(**mc["emotion"])),
            UnimodalModel(UnimodalConfig(**mc["personality"])),
            CrossConfig(**mc["cross"]),
        )

    return _load_state(_build(d, build), d).to(device), cfg


# --------------------------------------------------------------------------- attention capture
class AttentionRecorder:
    """Captures the fusion model's attention weights during a forward pass, via hooks.

    * graph attention: the input of ``graph.dropout`` is the (B, M, M) softmax over edges
      (row i: how much modality node i gathers from node j);
    * query attention: ``attn`` (nn.MultiheadAttention) is asked for per-head weights
      (B, heads, 2, M): how much the emotion / personality query reads from each modality.

    The model is called unchanged (in eval mode dropout is the identity, so the captured
    weights are exactly the ones used).
    """

    def __init__(self, model):
        self.model = model
        self.graph = None
        self.query = None
        self._handles: list[Any] = []

    def __enter__(self) -> AttentionRecorder:
        graph = getattr(self.model, "graph", None)
        if graph is not None and hasattr(graph, "dropout"):
            self._handles.append(graph.dropout.register_forward_hook(self._on_graph))
        attn = getattr(self.model, "attn", None)
        if attn is not None:
            self._handles.append(
                attn.register_forward_pre_hook(self._ask_weights, with_kwargs=True)
            )
            self._handles.append(attn.register_forward_hook(self._on_query))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _on_graph(self, _module, inputs, _output) -> None:
        self.graph = inputs[0].detach().float().cpu().numpy()

    @staticmethod
    def _ask_weights(_module, args, kwargs):
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def _on_query(self, _module, _inputs, output) -> None:
        if isinstance(output, tuple) and len(output) > 1 and output[1] is not None:
            self.query = output[1].detach().float().cpu().numpy()  # (B, heads, 2, M)


# --------------------------------------------------------------------------- inputs
@dataclass
class VideoInput:
    video_id: str  # unique within a batch; also the output sub-folder name
    path: Path


def collect_videos(items: Iterable[str | Path]) -> list[VideoInput]:
    """Videos from files and folders (a folder contributes its video files, sorted).

    Ids are the file stems made safe for folder names, de-duplicated with a suffix.
    """
    paths: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            paths += sorted(
                f for f in p.iterdir() if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS
            )
        else:
            paths.append(p)  # missing files become per-video errors later
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        base = re.sub(r"[^\w.-]+", "_", p.stem).strip("._") or "video"
        n = seen.get(base, 0) + 1
        seen[base] = n
        out.append(VideoInput(base if n == 1 else f"{base}-{n}", p))
    return out


def folder_videos(
    folder: str | Path, what: str = "video folder", made_by: str | None = None
) -> list[str]:
    """The video files of a folder, sorted (the Snakemake `predict` rule's input).

    ``made_by``: the file of the job that writes the folder (a demo corpus' labels.csv), which
    then stands in for the videos while the folder does not exist yet (a fresh checkout)."""
    p = Path(folder)
    if not p.is_dir():
        if made_by is not None:
            return [made_by]
        raise PredictError(f"{what}: {p} is not a folder")
    return [str(v.path) for v in collect_videos([p])] + ([made_by] if made_by else [])


def probe_video(path: Path) -> dict[str, Any]:
    """Container facts for the report (never raises; unknown values are None)."""
    info: dict[str, Any] = {"fps": None, "frame_count": None, "width": None, "height": None}
    try:
        info["size_bytes"] = path.stat().st_size
    except OSError:
        info["size_bytes"] = None
        return info
    try:
        import cv2

        cap = cv2.VideoCapture(str(path))
        try:
            if cap.isOpened():
                fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
                info["fps"] = float(fps) if fps > 0 else None
                info["frame_count"] = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) or None
                info["width"] = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0) or None
                info["height"] = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0) or None
        finally:
            cap.release()
    except Exception:  # a probe must never stop a prediction
        pass
    return info


@dataclass
class Extraction:
    """One video's raw inputs: the rows the DAG's frames/audio/transcripts shards would hold."""

    video: VideoInput
    meta: dict[str, Any]
    frame_rows: list[dict[str, Any]] = field(default_factory=list)
    audio: dict[str, Any] | None = None
    transcript: dict[str, Any] = field(
        default_factory=lambda: {"text": "", "source": "none", "words": []}
    )
    errors: dict[str, str] = field(default_factory=dict)  # stage -> reason
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def has_audio(self) -> bool:
        return bool(self.audio and self.audio["has_audio"])

    @property
    def failed(self) -> bool:
        """Nothing usable: neither frames nor an audio track."""
        return not self.frame_rows and not self.has_audio

    def failure_reason(self) -> str:
        reasons = list(dict.fromkeys(self.errors.values()))
        if not reasons:
            return "no decodable frames and no audio track"
        return "; ".join(reasons) if len(reasons) > 1 else reasons[0]

    def pcm(self) -> np.ndarray:
        if not self.audio:
            return np.zeros(0, np.float32)
        return np.frombuffer(self.audio["pcm_s16le"], dtype="<i2").astype(np.float32) / 32768.0


# --------------------------------------------------------------------------- the predictor
@contextlib.contextmanager
def _quiet_progress(*modules) -> Iterator[None]:
    """Silence the per-shard progress bars of the DAG functions while predict shows its own."""
    saved = {}
    for mod in modules:
        bar = getattr(mod, "tqdm", None)
        if callable(bar):
            saved[mod] = bar
            mod.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        for mod, bar in saved.items():
            mod.tqdm = bar


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
        self._detector = None
        self._transcriber = None
        self._encoders: dict[str, Any] = {}  # by encoder params: face/body/scene share one CLIP
        self.load_seconds = time.perf_counter() - start

    # -- lifecycle
    def close(self) -> None:
        if self._detector is not None:
            self._detector.close()
            self._detector = None

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

    @property
    def detector(self):
        if self._detector is None:
            from mepr.media.detect import MediaPipeDetector

            self._detector = MediaPipeDetector(self.pipeline.detect)
        return self._detector

    @property
    def transcriber(self):
        if self._transcriber is None:
            from mepr.asr import get_transcriber

            try:
                self._transcriber = get_transcriber(self.pipeline.asr)
            except RuntimeError as e:  # e.g. whisperx missing: every video would lack text
                raise PredictError(
                    f"{e}; or put each video's transcript beside it as VIDEO.txt"
                ) from e
        return self._transcriber

    def _encoder(self, m: str):
        """The modality's encoder, loaded once (shared by modalities with the same params)."""
        params = self.pipeline.encoders[m]
        key = json.dumps(dataclasses.asdict(params), sort_keys=True)
        if key not in self._encoders:
            if params.kind == "open_clip":
                from mepr.embed.image import ClipImageEncoder as Encoder
            elif params.kind == "wav2vec2":
                from mepr.embed.audio import Wav2Vec2Encoder as Encoder
            else:
                from mepr.embed.text import TextEncoder as Encoder
            self._encoders[key] = Encoder(params)
        return self._encoders[key]

    # -- step 1: media (per video)
    def extract(self, video: VideoInput) -> Extraction:
        """Frames + crops, audio and transcript of one video; problems are recorded, not raised."""
        from mepr.media.extract import audio_row, frames_rows
        from mepr.media.video import MediaError

        ex = Extraction(video=video, meta=probe_video(video.path))
        p = self.pipeline
        t = time.perf_counter()
        if self.needs_frames:
            try:
                ex.frame_rows = frames_rows(
                    video.video_id, video.path, self.detector, p.frames, p.detect
                )
            except MediaError as e:
                ex.errors["frames"] = str(e)
            except Exception as e:  # one bad file must not stop the batch
                ex.errors["frames"] = f"frame extraction failed: {type(e).__name__}: {e}"
        ex.timings["frames_s"] = time.perf_counter() - t
        t = time.perf_counter()
        try:
            ex.audio = audio_row(video.video_id, video.path, p.audio)
        except MediaError as e:
            ex.errors["audio"] = str(e)
        except Exception as e:
            ex.errors["audio"] = f"audio extraction failed: {type(e).__name__}: {e}"
        ex.timings["audio_s"] = time.perf_counter() - t
        t = time.perf_counter()
        sidecar = video.path.with_suffix(".txt")
        if "text" in self.modalities and p.asr.use_corpus_transcripts and sidecar.is_file():
            # like a corpus transcript in the DAG: a VIDEO.txt next to the video replaces ASR
            text = sidecar.read_text(encoding="utf-8", errors="replace").strip()
            ex.transcript = {"text": text, "source": "sidecar", "words": []}
        elif "text" in self.modalities and ex.has_audio:
            transcriber = self.transcriber  # a backend that cannot load stops the run
            try:
                tr = transcriber.transcribe(ex.pcm(), ex.audio["sample_rate"])
                ex.transcript = {
                    "text": tr.text,
                    "source": transcriber.name,
                    "words": [{"word": w.word, "start": w.start, "end": w.end} for w in tr.words],
                }
            except Exception as e:
                ex.warnings.append(f"ASR failed: {e}")
        ex.timings["asr_s"] = time.perf_counter() - t
        return ex

    # -- step 2: embeddings (per batch, through the DAG's shard functions)
    def _embed(self, batch: list[Extraction], tmp: Path):
        from mepr.embed import shard as embed_shard
        from mepr.train.data import Sequences, load_sequences

        ids = [e.video.video_id for e in batch]
        p = self.pipeline
        paths: dict[str, Path] = {}
        failures: list[dict[str, str]] = []

        def emb(m: str, result) -> None:
            failures.extend(result.failures)
            paths[m] = shards.write_table(result.rows, shards.EMBEDDINGS, tmp / f"emb-{m}.parquet")

        def run(fn, m: str, *args):
            """fn(*args, params) with the modality's encoder, loaded once per predictor."""
            emb(m, fn(*args, p.encoders[m], encoder=self._encoder(m)))

        with _quiet_progress(embed_shard):
            frame_rows = [r for e in batch for r in e.frame_rows]
            images = [m for m in self.modalities if m in IMAGE_MODALITIES]
            if images and frame_rows:
                frames = shards.write_table(frame_rows, shards.FRAMES, tmp / "frames.parquet")
                for m in images:
                    run(embed_shard.embed_image_shard, m, frames, m)
            audio_rows = [e.audio for e in batch if e.audio is not None]
            if "audio" in self.modalities and audio_rows:
                audio = shards.write_table(audio_rows, shards.AUDIO, tmp / "audio.parquet")
                run(embed_shard.embed_audio_shard, "audio", audio)
            if "text" in self.modalities:
                rows = [{"video_id": e.video.video_id, **e.transcript} for e in batch]
                text = shards.write_table(rows, shards.TRANSCRIPTS, tmp / "transcripts.parquet")
                run(embed_shard.embed_text_shard, "text", text)
        seqs = {}
        for m in self.modalities:
            in_dim = self.cross[m].emotion_base.cfg.in_dim
            if m in paths:
                s = load_sequences([paths[m]], ids, p.max_steps[m])
                if s.present.any() and s.dim != in_dim:
                    raise PredictError(
                        f"the {m} encoder ({p.spec['encoders'][m].get('model')}) gives {s.dim}-d "
                        f"embeddings, the stage-2 {m} model expects {in_dim}: the encoder differs "
                        "from the one the model was trained with"
                    )
            else:
                n = len(ids)
                s = Sequences(np.zeros((n, 1, in_dim), np.float32), np.zeros((n, 1), bool), in_dim)
            seqs[m] = s
        by_id: dict[str, list[str]] = {}
        for f in failures:
            by_id.setdefault(f["video_id"], []).append(f"{f['stage']}: {f['reason']}")
        return seqs, by_id

    # -- step 3: models (per batch)
    def _run_models(self, seqs) -> dict[str, np.ndarray]:
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
        with tempfile.TemporaryDirectory(prefix="mepr-predict-") as tmp:
            seqs, embed_failures = self._embed(batch, Path(tmp))
        t_embed = time.perf_counter() - t
        t = time.perf_counter()
        out = self._run_models(seqs)
        t_models = time.perf_counter() - t
        records = []
        for i, ex in enumerate(batch):
            ex.warnings += embed_failures.get(ex.video.video_id, [])
            ex.timings["embed_s"] = t_embed / len(batch)  # the batch's time, shared equally
            ex.timings["models_s"] = t_models / len(batch)
            records.append(self._record(i, ex, seqs, out))
        return records

    def _missing_reason(self, m: str, ex: Extraction) -> str:
        if m in IMAGE_MODALITIES:
            if "frames" in ex.errors:
                return f"frames could not be read: {ex.errors['frames']}"
            return {"face": "no face detected in any sampled frame",
                    "body": "no person detected in any sampled frame"}.get(m, "no frames")  # fmt: skip
        if "audio" in ex.errors:
            return f"audio could not be read: {ex.errors['audio']}"
        if not ex.has_audio:
            return "no audio track" if m == "audio" else "no audio to transcribe"
        if m == "audio":
            return "audio too short to encode"
        return "no words recognised in the audio"

    def _record(self, i: int, ex: Extraction, seqs, out) -> dict[str, Any]:
        mods = self.modalities
        probs, traits = out["probs"][i], out["traits"][i]
        present = out["present"][i]
        per_mod = {}
        for j, m in enumerate(mods):
            mask = seqs[m].mask[i]
            per_mod[m] = {
                "present": bool(present[j]),
                "valid_steps": int(mask.sum()),
                "steps": int(mask.size) if present[j] else 0,
                "emotion_probabilities": dict(
                    zip(EMOTIONS, out["modality_probs"][i, j].tolist(), strict=True)
                )
                if present[j]
                else None,
                "personality_scores": dict(
                    zip(TRAITS, out["modality_traits"][i, j].tolist(), strict=True)
                )
                if present[j]
                else None,
                "missing_reason": None if present[j] else self._missing_reason(m, ex),
            }
        top = int(np.argmax(probs))
        if probs[0] >= NEUTRAL_THRESHOLD:
            shown = []
        else:
            shown = [
                e for e, p in zip(EMOTIONS[1:], probs[1:], strict=True) if p >= PRESENCE_THRESHOLD
            ]
        graph = out["graph"]
        query = out["query"]
        fusion: dict[str, Any] = {
            "modalities": mods,
            "graph_attention": graph[i].tolist() if graph is not None else None,
            "query_attention": {
                "emotion": dict(zip(mods, query[i, 0].tolist(), strict=True)),
                "personality": dict(zip(mods, query[i, 1].tolist(), strict=True)),
            }
            if query is not None
            else None,
            "leave_one_out": {
                "emotion": {
                    m: dict(zip(EMOTIONS, out["loo_emotion"][i, j].tolist(), strict=True))
                    if present[j]
                    else None
                    for j, m in enumerate(mods)
                },
                "personality": {
                    m: dict(zip(TRAITS, out["loo_personality"][i, j].tolist(), strict=True))
                    if present[j]
                    else None
                    for j, m in enumerate(mods)
                },
            },
        }
        meta = ex.meta
        duration = None
        if meta.get("fps") and meta.get("frame_count"):
            duration = meta["frame_count"] / meta["fps"]
        elif ex.has_audio:
            duration = ex.audio["n_samples"] / ex.audio["sample_rate"]
        timings = dict(ex.timings)
        return {
            "schema": PREDICTION_SCHEMA,
            "version": PREDICTION_VERSION,
            "video": {
                "id": ex.video.video_id,
                "path": str(ex.video.path),
                "file_name": ex.video.path.name,
                "size_bytes": meta.get("size_bytes"),
                "duration_s": duration,
                "fps": meta.get("fps"),
                "frame_count": meta.get("frame_count"),
                "width": meta.get("width"),
                "height": meta.get("height"),
                "has_audio": ex.has_audio,
                "audio_seconds": ex.audio["n_samples"] / ex.audio["sample_rate"]
                if ex.has_audio
                else 0.0,
            },
            "model": {
                "dir": str(self.model_dir),
                "modalities": mods,
                "fusion_sha256": self.pipeline.spec["fusion"]["sha256"],
                "encoders": {m: self.pipeline.spec["encoders"][m].get("model") for m in mods},
                "trained_with_mepr": self.fusion_config.get("mepr_version"),
            },
            "emotion": {
                "probabilities": dict(zip(EMOTIONS, probs.tolist(), strict=True)),
                "top": EMOTIONS[top],
                "present": shown,
            },
            "personality": {"scores": dict(zip(TRAITS, traits.tolist(), strict=True))},
            "modalities": per_mod,
            "missing_modalities": [m for j, m in enumerate(mods) if not present[j]],
            "fusion": fusion,
            "transcript": ex.transcript,
            "frames": [
                {
                    "step": r["step"],
                    "frame_index": r["frame_index"],
                    "timestamp": r["timestamp"],
                    "face_score": r["face_score"],
                    "face_box": r["face_box"],
                    "body_score": r["body_score"],
                    "body_box": r["body_box"],
                }
                for r in ex.frame_rows
            ],
            "warnings": list(dict.fromkeys([*ex.errors.values(), *ex.warnings])),
            "timings_s": timings,
            "mepr_version": __version__,
        }


# --------------------------------------------------------------------------- batch driver
@dataclass
class BatchResult:
    out_dir: Path
    ok: list[dict[str, Any]]  # prediction records
    failed: list[dict[str, str]]  # {"id", "path", "error"}
    seconds: dict[str, float]
    thumbs: dict[str, str] = field(default_factory=dict)  # video id -> data: URI (index page)

    @property
    def n_videos(self) -> int:
        return len(self.ok) + len(self.failed)

    @property
    def videos_per_second(self) -> float:
        busy = self.seconds.get("predict", 0.0)
        return self.n_videos / busy if busy > 0 else float("nan")


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), max(1, size)):
        yield items[i : i + size]


def predict_videos(
    videos: Iterable[str | Path],
    model_dir: str | Path,
    out_dir: str | Path,
    *,
    results_root: str | Path | None = None,
    device: str | None = None,
    chunk: int = 32,
    html: bool = True,
    progress: bool = True,
) -> BatchResult:
    """Predict every video, writing ``OUT/<id>/prediction.json`` (+ ``report.html``) per
    video and ``OUT/summary.json`` (+ ``index.html``) for the batch.

    Models are loaded once; videos are extracted one at a time and embedded and predicted
    `chunk` at a time.  A video that cannot be read is recorded in the summary and the
    others go on.
    """
    from tqdm import tqdm

    start = time.perf_counter()
    out_dir = Path(out_dir)
    inputs = collect_videos(videos)
    if not inputs:
        raise PredictError(
            "no videos given (folders are searched for " + ", ".join(sorted(VIDEO_EXTENSIONS)) + ")"
        )
    ok: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    thumbs: dict[str, str] = {}
    with Predictor(model_dir, results_root=results_root, device=device) as predictor:
        t_pred = time.perf_counter()
        bar = tqdm(total=len(inputs), desc="mepr predict", unit="video", disable=not progress)
        for group in _chunks(inputs, chunk):
            batch: list[Extraction] = []
            for video in group:
                bar.set_postfix_str(video.path.name[:40], refresh=False)
                ex = predictor.extract(video)
                if ex.failed:
                    failed.append(
                        {
                            "id": video.video_id,
                            "path": str(video.path),
                            "error": ex.failure_reason(),
                        }
                    )
                    bar.write(f"mepr predict: {video.path}: {ex.failure_reason()}", file=sys.stderr)
                else:
                    batch.append(ex)
                bar.update(1)
            bar.set_postfix_str(f"models on {len(batch)} video(s)")
            for ex, record in zip(batch, predictor.predict(batch), strict=True):
                try:
                    thumb = _write_video(out_dir, ex, record, html=html)
                    ok.append(record)
                    if thumb:
                        thumbs[ex.video.video_id] = thumb
                except Exception as e:  # a report that cannot be written is that video's error
                    failed.append(
                        {
                            "id": ex.video.video_id,
                            "path": str(ex.video.path),
                            "error": f"writing outputs failed: {e}",
                        }
                    )
                    bar.write(
                        f"mepr predict: {ex.video.path}: writing outputs failed: {e}",
                        file=sys.stderr,
                    )
        bar.close()
        seconds = {
            "load_models": predictor.load_seconds,
            "predict": time.perf_counter() - t_pred,
        }
    seconds["total"] = time.perf_counter() - start
    result = BatchResult(out_dir, ok, failed, seconds, thumbs)
    _write_summary(result, model_dir, html=html)
    return result


def _write_video(
    out_dir: Path, ex: Extraction, record: dict[str, Any], *, html: bool
) -> str | None:
    """Write the video's JSON (and HTML); return its thumbnail for the index page."""
    d = out_dir / ex.video.video_id
    d.mkdir(parents=True, exist_ok=True)
    thumb = None
    if html:
        from mepr.report import render_video_report, thumbnail_uri

        t = time.perf_counter()
        page = render_video_report(record, ex)
        thumb = thumbnail_uri(ex)
        record["timings_s"]["report_s"] = time.perf_counter() - t
        (d / "report.html").write_text(page, encoding="utf-8")
    timings = record["timings_s"]
    timings["total_s"] = sum(v for k, v in timings.items() if k != "total_s")
    _write_json_atomic(d / "prediction.json", record)
    return thumb


def _write_summary(result: BatchResult, model_dir: str | Path, *, html: bool) -> None:
    summary = {
        "schema": "mepr.prediction_batch",
        "version": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": str(model_dir),
        "n_videos": result.n_videos,
        "n_ok": len(result.ok),
        "n_failed": len(result.failed),
        "videos_per_second": result.videos_per_second,
        "seconds": result.seconds,
        "videos": [
            {
                "id": r["video"]["id"],
                "path": r["video"]["path"],
                "prediction": f"{r['video']['id']}/prediction.json",
                "report": f"{r['video']['id']}/report.html" if html else None,
                "top_emotion": r["emotion"]["top"],
                "emotion": r["emotion"]["probabilities"],
                "personality": r["personality"]["scores"],
                "missing_modalities": r["missing_modalities"],
            }
            for r in result.ok
        ],
        "failed": result.failed,
    }
    result.out_dir.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(result.out_dir / "summary.json", summary)
    if html:
        from mepr.report import render_index

        page = render_index(summary, result.ok, result.thumbs)
        (result.out_dir / "index.html").write_text(page, encoding="utf-8")


__all__ = [
    "BatchResult",
    "CheckpointError",
    "Predictor",
    "PredictError",
    "build_pipeline_spec",
    "collect_videos",
    "load_cross_checkpoint",
    "load_fusion_checkpoint",
    "load_pipeline",
    "predict_videos",
    "write_pipeline_spec",
]
