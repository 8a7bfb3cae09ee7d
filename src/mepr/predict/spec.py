"""The pipeline spec: how to feed a trained fusion model from a raw video.

Which frame sampling, detector, ASR and encoders a model was trained with is not part of the
model folders, so it is recorded in ``pipeline.json`` next to the fusion model: read from the
parameters stored in the metadata of the run's frames/audio/transcripts/embedding shards,
plus the sha256 of every checkpoint so that a spec never silently pairs with retrained
weights.  The workflow names the shards it declares (:meth:`RunShards.declared`), so a
leftover shard of a removed corpus cannot leak in; ``mepr predict --results`` without a spec
falls back to the shards found under the results folder (:meth:`RunShards.discover`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mepr import __version__, shards
from mepr.config import (
    AsrParams,
    AudioParams,
    DetectParams,
    EncoderParams,
    FramesParams,
    parse,
)
from mepr.embed.refs import ModelRef
from mepr.files import sha256_file
from mepr.labels import IMAGE_MODALITIES
from mepr.models import checkpoints
from mepr.predict.errors import PredictError
from mepr.predict.jsonio import read_json, write_json

PIPELINE_FILE = "pipeline.json"
PIPELINE_SCHEMA = "mepr.pipeline"
PIPELINE_VERSION = 1
_MEDIA_KINDS = (shards.FRAMES.name, shards.AUDIO.name, shards.TRANSCRIPTS.name)


# --------------------------------------------------------------------------- the run's shards
@dataclass
class RunShards:
    """The shards a run's models were trained from, by kind; their metadata holds the
    parameters they were written with."""

    frames: list[Path] = field(default_factory=list)
    audio: list[Path] = field(default_factory=list)
    transcripts: list[Path] = field(default_factory=list)
    embeddings: dict[str, list[Path]] = field(default_factory=dict)  # by modality
    where: str = ""  # where they were looked for, and
    hint: str = ""  # how to give them: both for messages

    @classmethod
    def discover(cls, root: str | Path) -> RunShards:
        """Every shard under the results folder `root` (``KIND/CORPUS/shard-K.parquet``,
        ``embeddings/CORPUS/MODALITY/shard-K.parquet``)."""
        root = Path(root)
        found = cls(
            frames=sorted((root / "frames").glob("*/shard-*.parquet")),
            audio=sorted((root / "audio").glob("*/shard-*.parquet")),
            transcripts=sorted((root / "transcripts").glob("*/shard-*.parquet")),
            where=f"under {root / 'embeddings'}",
            hint="give the run's results folder with --results",
        )
        for p in sorted((root / "embeddings").glob("*/*/shard-*.parquet")):
            found.embeddings.setdefault(p.parent.name, []).append(p)
        return found

    @classmethod
    def declared(cls, paths: Iterable[str | Path]) -> RunShards:
        """Exactly `paths`, sorted into kinds by the schema each shard declares (embedding
        shards by the modality they record)."""
        found = cls(where="among the shards given", hint="name them with --shards")
        for p in sorted(map(Path, paths)):
            kind = _schema_of(p)
            if kind in _MEDIA_KINDS:
                getattr(found, kind).append(p)
            elif kind == shards.EMBEDDINGS.name:
                modality = shards.read_params(p).get("modality")
                if not modality:
                    raise PredictError(f"{p}: an embedding shard that records no modality")
                found.embeddings.setdefault(modality, []).append(p)
            else:
                raise PredictError(
                    f"{p}: a '{kind or 'unknown'}' shard; the pipeline spec is read from "
                    "frames, audio, transcripts and embeddings shards"
                )
        return found


def _schema_of(path: Path) -> str:
    """The schema name a shard file declares in its metadata ('' when none)."""
    import pyarrow.parquet as pq

    if not path.is_file():
        raise PredictError(f"{path}: no such shard")
    meta = pq.read_schema(path).metadata or {}
    return meta.get(b"mepr.schema", b"").decode()


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


def _relpath(target: Path, start: Path) -> str:
    return os.path.relpath(target.resolve(), start.resolve())


# --------------------------------------------------------------------------- building the spec
def _cross_entry(root: Path, m: str, model_dir: Path) -> dict[str, Any]:
    """The spec's record of modality `m`'s stage-2 folder ``root/unimodal/m/cross``."""
    d = root / "unimodal" / m / "cross"
    cfg = checkpoints.read_config(d, "cross")
    if cfg.get("modality") != m:
        raise PredictError(f"{d}: not the stage-2 (train-cross) {m} model folder")
    return {
        "path": _relpath(d, model_dir),
        "sha256": sha256_file(d / checkpoints.WEIGHTS_FILE),
        "max_steps": int(cfg["params"]["max_steps"]),
    }


def build_pipeline_spec(
    model_dir: str | Path,
    results_root: str | Path | None = None,
    run_shards: RunShards | None = None,
) -> dict:
    """Describe how to feed the fusion model in `model_dir` from a raw video.

    `results_root` is the run's results folder (default: the fusion folder's parent); the
    stage-2 models are read from ``unimodal/{modality}/cross`` there.  The extraction and
    encoder parameters come from the metadata of `run_shards` (default: every shard under
    the results folder); every shard of a kind must agree.
    """
    model_dir = Path(model_dir)
    root = Path(results_root) if results_root is not None else model_dir.resolve().parent
    found = run_shards if run_shards is not None else RunShards.discover(root)
    fusion_cfg = checkpoints.read_config(model_dir, "fusion")
    modalities = list(fusion_cfg["modalities"])
    spec: dict[str, Any] = {
        "schema": PIPELINE_SCHEMA,
        "version": PIPELINE_VERSION,
        "mepr_version": __version__,
        "modalities": modalities,
        "fusion": {"path": ".", "sha256": sha256_file(model_dir / checkpoints.WEIGHTS_FILE)},
        "cross": {},
        "encoders_dir": _relpath(root / "encoders", model_dir),
        "encoders": {},
    }
    for m in modalities:
        spec["cross"][m] = _cross_entry(root, m, model_dir)
        emb = found.embeddings.get(m, [])
        if not emb:
            raise PredictError(
                f"no {m} embedding shards {found.where}: cannot tell which encoder "
                f"the model was trained with ({found.hint})"
            )
        spec["encoders"][m] = _agreeing(emb, f"{m} embedding", lambda p: p.get("encoder", {}))
    if set(modalities) & set(IMAGE_MODALITIES):
        fr = _agreeing(found.frames, "frames")
        spec["frames"], spec["detect"] = fr["frames"], fr["detect"]
    if set(modalities) & {"audio", "text"}:
        spec["audio"] = _agreeing(found.audio, "audio")
    if "text" in modalities:
        spec["asr"] = _agreeing(found.transcripts, "transcripts")
    return spec


def build_pipeline_spec_from_config(model_dir: str | Path, config: dict[str, Any]) -> dict:
    """The pipeline spec of models trained outside a mepr run (``mepr import-reference``):
    the extraction and encoder parameters come from a validated workflow `config` (its
    frames, detect, audio, asr and encoders sections, read as the workflow's jobs read
    them) instead of shard metadata; the stage-2 models are ``../unimodal/{m}/cross``."""
    model_dir = Path(model_dir)
    root = model_dir.resolve().parent
    modalities = list(checkpoints.read_config(model_dir, "fusion")["modalities"])
    enc = config["encoders"]
    spec: dict[str, Any] = {
        "schema": PIPELINE_SCHEMA,
        "version": PIPELINE_VERSION,
        "mepr_version": __version__,
        "modalities": modalities,
        "fusion": {"path": ".", "sha256": sha256_file(model_dir / checkpoints.WEIGHTS_FILE)},
        "cross": {},
        "encoders_dir": _relpath(root / "encoders", model_dir),
        # as workflow/rules/common.smk's encoder_section: the shared keys merged in
        "encoders": {
            m: vars(
                parse(
                    EncoderParams,
                    {**enc[m], "batch_size": enc["batch_size"], "device": enc["device"]},
                )
            )
            for m in modalities
        },  # fmt: skip
    }
    for m in modalities:
        spec["cross"][m] = _cross_entry(root, m, model_dir)
    if set(modalities) & set(IMAGE_MODALITIES):
        spec["frames"] = vars(parse(FramesParams, config["frames"]))
        spec["detect"] = vars(parse(DetectParams, config["detect"]))
    if set(modalities) & {"audio", "text"}:
        spec["audio"] = vars(parse(AudioParams, config["audio"]))
    if "text" in modalities:
        spec["asr"] = vars(parse(AsrParams, config["asr"]))
    return spec


def write_pipeline_spec(spec: dict, path: str | Path) -> Path:
    path = Path(path)
    write_json(path, spec)
    return path


# --------------------------------------------------------------------------- loading the spec
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


def resolve_encoder(section: dict, encoders_dir: Path, device: str | None) -> EncoderParams:
    """EncoderParams whose `demo:` reference points at the run's own encoders folder."""
    params = parse(EncoderParams, section)
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
        spec = read_json(spec_path, "the pipeline spec")
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
        weights = d / checkpoints.WEIGHTS_FILE
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
            m: resolve_encoder(spec["encoders"][m], encoders_dir, device) for m in modalities
        },
        frames=parse(FramesParams, spec.get("frames", {})),
        detect=parse(DetectParams, spec.get("detect", {})),
        audio=parse(AudioParams, spec.get("audio", {})),
        asr=parse(AsrParams, spec.get("asr", {})),
    )
