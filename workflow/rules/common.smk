# Shared names and small helpers for the rule files. All decisions live in the mepr package.
import json
import os
import re
import shlex
import sys

from mepr import layout
from mepr.corpora import source_files
from mepr.config import ConfigError, apply_user_named, job_section, validate_config
from mepr.embed import demo_encoder_dir
from mepr.embed.store import STORE_ENV, config_entries, receipt_path
from mepr.provenance import code_digest
from mepr.runtime import put_interpreter_first
from mepr.labels import IMAGE_MODALITIES, MODALITIES
from mepr.shards import shard_fingerprint

put_interpreter_first()  # jobs' `python -m mepr` is this interpreter (outside conda)

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

# The model store (mepr.embed.store): hub models are fetched there by rule fetch_model on the
# submitting node; jobs load them from there only. Its path reaches the jobs' mepr commands
# through the environment, not a param or the command line, so moving the store (or sharing
# one between runs) re-runs no job that used it.
MODEL_STORE = config["models"]["store"]
os.environ[STORE_ENV] = os.path.abspath(MODEL_STORE)
try:
    MODEL_ENTRIES = config_entries(config)  # role (modality | asr) -> store entries
except ValueError as e:
    sys.exit(f"config error: {e}")
FETCH = {e.key: e for entries in MODEL_ENTRIES.values() for e in entries}


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


def models_needed(role):
    """Receipts of the store entries a job loads, as ancient inputs: fetching the same
    revision again (e.g. into another store) re-runs none of the jobs that use it."""
    return [ancient(str(receipt_path(e))) for e in MODEL_ENTRIES[role]]


def demo_encoders_needed(modality):
    path = demo_encoder_dir(config["encoders"][modality]["model"])
    return [str(path)] if path else []


def train_section(modality=None):
    """The train config a job depends on (mepr.config.job_section)."""
    return job_section(config["train"], modality)


def corpus_sources(wildcards):
    """What a manifest is built from: the demo's labels.csv or the corpus's label files."""
    cfg = corpus_cfg(wildcards)
    if cfg["adapter"] == "demo":
        return [f"{cfg['root']}/labels.csv"]
    return source_files(cfg)


def embedding_shards(corpus, modality):
    return expand(
        layout.EMBEDDINGS,
        corpus=corpus,
        modality=modality,
        k=SHARDS,
    )


# `snakemake --report`: the captions live in workflow/report/ (the snakemake-workflows
# layout), reached relative to the rule file that names them (all in workflow/rules/).
CAPTIONS = "../report"

# The figures `mepr report-plots` draws for each training stage, with the label each gets in
# the report; their captions are workflow/report/<figure>.rst, shared by the stages.
STAGE_FIGURES = {
    "curves": "training curves",
    "confusion": "emotion confusion",
    "scores": "trait scores",
}


def stage_figures(stage, category):
    """The outputs of one stage's report rule: its figures, each an entry of the report."""
    # (built in a loop: snakefmt reads a line that starts with `report` as the directive)
    entries = []
    for figure, label in STAGE_FIGURES.items():
        path = layout.file_in(
            layout.fill(layout.REPORT_DIR, stage=stage), f"{figure}.svg"
        )
        caption = f"{CAPTIONS}/{figure}.rst"
        labels = {"figure": label}
        entries.append(report(path, caption=caption, category=category, labels=labels))
    return entries
