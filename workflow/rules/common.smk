# Shared names and small helpers for the rule files. All decisions live in the mepr package.
import json
import shlex
import sys

from mepr.corpora import source_files
from mepr.config import ConfigError, apply_user_named, validate_config
from mepr.embed import demo_encoder_dir
from mepr.provenance import code_digest
from mepr.labels import IMAGE_MODALITIES, MODALITIES
from mepr.shards import shard_fingerprint

try:
    # the user's config files and --config, merged: their corpora replace the default's
    user_config = workflow.config_settings.overwrite_config
    config.update(validate_config(apply_user_named(config, user_config)))
except ConfigError as e:
    sys.exit(str(e))

CORPORA = sorted(config["corpora"])
SHARDS = list(range(config["n_shards"]))
SEED = config["seed"]
ENVS = "../../envs"


wildcard_constraints:
    corpus="|".join(CORPORA),
    modality="|".join(MODALITIES),
    k=r"\d+",


def json_arg(value):
    """A config section as one shell-quoted JSON argument (also what the params trigger sees)."""
    return shlex.quote(json.dumps(value, sort_keys=True))


def corpus_cfg(wildcards):
    return config["corpora"][wildcards.corpus]


def manifest_of(wildcards):
    """The manifest as an ancient input: its mtime alone never re-runs extraction."""
    return ancient(checkpoints.manifest.get(corpus=wildcards.corpus).output.manifest)


def shard_params(wildcards):
    """The shard's membership fingerprint: changes only when its own videos change."""
    manifest = checkpoints.manifest.get(corpus=wildcards.corpus).output.manifest
    return shard_fingerprint(manifest, int(wildcards.k), config["n_shards"])


def encoder_section(modality):
    enc = config["encoders"]
    return {**enc[modality], "batch_size": enc["batch_size"], "device": enc["device"]}


def demo_encoders_needed(modality):
    path = demo_encoder_dir(config["encoders"][modality]["model"])
    return [str(path)] if path else []


def train_section(modality=None):
    """The train config a job depends on: one modality's encoder choice, or everything."""
    train = dict(config["train"])
    if modality is not None:
        train["encoder"] = train["encoder"][modality]
        train.pop("fusion", None)
    return train


def corpus_sources(wildcards):
    """What a manifest is built from: the demo's labels.csv or the corpus's label files."""
    cfg = corpus_cfg(wildcards)
    if cfg["adapter"] == "demo":
        return [f"{cfg['root']}/labels.csv"]
    return source_files(cfg)


def embedding_shards(corpus, modality):
    return expand(
        "results/embeddings/{corpus}/{modality}/shard-{k}.parquet",
        corpus=corpus,
        modality=modality,
        k=SHARDS,
    )
