"""Typed configuration: `config.yaml` validated by `workflow/schemas/config.schema.yaml`.

The Snakefile validates the whole config once (so a typo fails before any job starts, with a
message naming the key); each rule then passes its own section to `python -m mepr ...` as
JSON, which the stage turns into one of the dataclasses below.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """One clear message naming the bad key."""


def _schema() -> dict[str, Any]:
    if SCHEMA_PATH.exists():
        return yaml.safe_load(SCHEMA_PATH.read_text())
    # installed without the repository: the schema is shipped as package data
    return yaml.safe_load(resources.files("mepr").joinpath("config.schema.yaml").read_text())


def _with_defaults(validator_class):
    """A validator that also fills `default` values in (objects first, then their keys)."""
    validate_props = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _key_path(error: jsonschema.ValidationError) -> str:
    parts = [str(p) for p in error.absolute_path]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            parts.append(extra[0])
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        parts.append(missing)
    return ".".join(parts) or "<top level>"


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a validated deep copy with defaults filled; raise ConfigError naming the key."""
    cfg = copy.deepcopy(dict(config))
    validator = _with_defaults(jsonschema.Draft202012Validator)(_schema())
    errors = sorted(validator.iter_errors(cfg), key=lambda e: (len(e.absolute_path), e.message))
    if errors:
        err = errors[0]
        key = _key_path(err)
        if err.validator == "additionalProperties":
            msg = f"unknown key '{key}'"
        elif err.validator == "required":
            msg = f"missing required key '{key}'"
        else:
            msg = f"bad value for '{key}': {err.message}"
        raise ConfigError(f"config error: {msg}")
    for name, corpus in cfg["corpora"].items():
        task = corpus.get("task") or {"mosei": "emotion", "fiv2": "personality"}.get(
            corpus["adapter"]
        )
        if task is None:
            raise ConfigError(f"config error: missing required key 'corpora.{name}.task'")
        corpus["task"] = task
    tasks = {c["task"] for c in cfg["corpora"].values()}
    if tasks != {"emotion", "personality"}:
        raise ConfigError(
            "config error: bad value for 'corpora': cross-domain training needs at least one "
            f"emotion corpus and one personality corpus, found tasks {sorted(tasks)}"
        )
    return cfg


# Collections whose entries the user names (corpora, folders to predict on). The default
# config's entries are examples for the demo: a user's config file that names its own replaces
# them instead of adding to them, so `--configfile configs/paper.yaml` plans MOSEI + FIv2 only
# (Snakemake's own merge would keep the demo corpora beside them). Paths are key tuples.
USER_NAMED: tuple[tuple[str, ...], ...] = (("corpora",), ("predict", "videos"))


def _lookup(cfg: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(cfg, Mapping) or key not in cfg:
            return None
        cfg = cfg[key]
    return cfg


def apply_user_named(merged: dict[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """`merged` (default config updated by the user's) with each `USER_NAMED` collection taken
    from `user` alone (the user's config files and --config, merged in order) where it names one.

    Snakemake deep-merges `--configfile` files into the Snakefile's `configfile:`; this undoes
    that merge for the collections the user names, and leaves every other key merged.
    """
    out = copy.deepcopy(merged)
    for path in USER_NAMED:
        mine = _lookup(user, path)
        if mine is None:
            continue
        parent = out
        for key in path[:-1]:
            parent = parent.setdefault(key, {})
        parent[path[-1]] = copy.deepcopy(mine)
    return out


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load(Path(path).read_text()) or {}
    raw.update(overrides or {})
    return validate_config(raw)


T = TypeVar("T")


def from_dict(cls: type[T], data: Mapping[str, Any] | str) -> T:
    """Build a params dataclass from a config section (a dict or its JSON), ignoring extras."""
    if isinstance(data, str):
        data = json.loads(data)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class FramesParams:
    """Frame sampling: `n_frames` spread uniformly, or (`fps` set, it wins) `fps` per second."""

    n_frames: int = 8
    fps: float | None = None
    crop_size: int = 224
    jpeg_quality: int = 90


@dataclass(frozen=True)
class DetectParams:
    backend: str = "mediapipe"
    face_min_confidence: float = 0.5
    body_min_confidence: float = 0.5
    face_margin: float = 0.15
    body_margin: float = 0.1


@dataclass(frozen=True)
class AudioParams:
    sample_rate: int = 16000
    # a track whose RMS level is below this (dBFS; all-zero = -inf) is recorded as silent
    silence_dbfs: float = -60.0


@dataclass(frozen=True)
class AsrParams:
    backend: str = "pocketsphinx"
    model: str = "en-us"
    language: str = "en"
    use_corpus_transcripts: bool = True
    # whisperx: the hub revision of the Whisper model (None: main); see mepr.embed.store
    revision: str | None = None


@dataclass(frozen=True)
class EncoderParams:
    """One modality's encoder; fields unused by a kind keep their defaults."""

    kind: str
    model: str
    pretrained: str | None = None
    layer: int = -1
    window_s: float = 0.5
    pooling: str = "token"
    max_tokens: int = 48
    batch_size: int = 16
    device: str = "auto"
    # audio: at most this many seconds of (padded) audio per batch, whatever batch_size says
    max_batch_seconds: float = 240.0
    # a hub model's commit / tag / branch (None: main); fetched into the model store
    revision: str | None = None


@dataclass(frozen=True)
class DemoParams:
    clips: int = 24
    seconds: float = 2.0
    fps: int = 25
    width: int = 320
    height: int = 240
    transcripts_for: list[str] = field(default_factory=list)
    # also write a few broken clips (train split, labelled): see mepr.corpora.demo.BAD_INPUTS
    bad_inputs: bool = True
