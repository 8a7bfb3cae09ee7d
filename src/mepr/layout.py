"""The `results/` layout: every path a rule writes, as one Snakemake-style template each.

The rules (`workflow/rules/*.smk`) and the Python code that finds stage outputs (demo encoders,
model-store receipts, the pipeline spec, predict) take their paths from here, so moving an
output is a change in one place. Templates hold `{wildcards}`; fill them with
`str.format`, or with Snakemake's `expand(..., allow_missing=True)` to keep some open.
"""

from __future__ import annotations

RESULTS = "results"

# corpora
DEMO_LABELS = "results/demo/{corpus}/labels.csv"
MANIFEST = "results/corpora/{corpus}/manifest.parquet"

# per-shard extraction and embedding (kind: frames | audio | transcripts)
EXTRACTED = "results/{kind}/{corpus}/shard-{k}.parquet"
EMBEDDINGS = "results/embeddings/{corpus}/{modality}/shard-{k}.parquet"

# what went wrong, per stage and shard, and the table per corpus that gathers them
STAGE_FAILURES = "results/failures/{corpus}/{stage}/shard-{k}.parquet"
MANIFEST_FAILURES = "results/failures/{corpus}/manifest/all.parquet"
CORPUS_FAILURES = "results/failures/{corpus}.parquet"

# models: demo encoders built offline, receipts of hub models fetched into the store
DEMO_ENCODER_DIR = "results/encoders/{name}"
MODEL_RECEIPT = "results/models/{key}.json"

# the three training stages' model folders (config.json + model.safetensors + metrics ...)
UNIMODAL_DIR = "results/unimodal/{modality}/{corpus}"
CROSS_DIR = "results/unimodal/{modality}/cross"
FUSION_DIR = "results/fusion"
FUSION_METRICS = "results/fusion/metrics.json"
PIPELINE_SPEC = "results/fusion/pipeline.json"
# stage 3 with one model per task (task: emotion | personality), beside the multi-task fusion
FUSION_SINGLE_DIR = "results/fusion_single/{task}"
FUSION_SINGLE_METRICS = "results/fusion_single/{task}/metrics.json"

# hyper-parameter sweeps (config `sweeps:`): one folder per trial (a stage-3 run and its
# status.json), greedy rounds' winners, the ranked table; the paper's ablations, one folder
# per row and their table (mepr.sweep)
SWEEP_DIR = "results/sweeps/{sweep}"
SWEEP_TRIAL = "results/sweeps/{sweep}/{trial}/status.json"
SWEEP_ROUND = "results/sweeps/{sweep}/rounds/round-{r}.json"
SWEEP_TABLE = "results/sweeps/{sweep}/table.md"
ABLATION_ROW = "results/ablations/{row}/status.json"
ABLATION_TABLE = "results/ablations/table.md"

# Snakemake report figures per stage, and predictions per named folder of videos
REPORT_DIR = "results/report/{stage}"
METRICS_REPORT = "results/report/metrics.html"
# the paper's published results beside this run's (mepr paper-compare): comparison.{md,csv,html}
PAPER_DIR = "results/paper"
PREDICT_DIR = "results/predict/{name}"


def log(name: str) -> str:
    """The log file of a job (`name` may hold wildcards: "frames/{corpus}/shard-{k}")."""
    return f"results/logs/{name}.log"


def fill(template: str, **values: object) -> str:
    """`template` with the named wildcards filled and the others left as they are:
    `fill(EXTRACTED, kind="audio")` -> "results/audio/{corpus}/shard-{k}.parquet"."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template


def file_in(folder: str, name: str) -> str:
    """`name` (may be a `{wildcard}`) inside the folder template `folder`."""
    return f"{folder}/{name}"
