# Using the trained system: figures for `snakemake --report`, the pipeline spec that lets
# `mepr predict` feed the models, and predictions for folders of videos (config `predict`).
from mepr.corpora import demo_labels_of
from mepr.predict import folder_videos

CAPTIONS = "../../src/mepr/report/captions"
STAGE1_DIRS = expand(
    "results/unimodal/{modality}/{corpus}", modality=MODALITIES, corpus=CORPORA
)
CROSS_DIRS = expand("results/unimodal/{modality}/cross", modality=MODALITIES)
MANIFESTS = expand("results/corpora/{corpus}/manifest.parquet", corpus=CORPORA)


report: f"{CAPTIONS}/workflow.rst"


rule report_stage1:
    input:
        models=expand(
            "{d}/{f}",
            d=STAGE1_DIRS,
            f=["config.json", "curves.csv", "model.safetensors"],
        ),
        manifests=MANIFESTS,
        embeddings=embedding_shards(CORPORA, MODALITIES),
    output:
        report(
            "results/report/stage1/curves.svg",
            caption=f"{CAPTIONS}/curves.rst",
            category="Stage 1",
            labels={"figure": "training curves"},
        ),
        report(
            "results/report/stage1/confusion.svg",
            caption=f"{CAPTIONS}/confusion.rst",
            category="Stage 1",
            labels={"figure": "emotion confusion"},
        ),
        report(
            "results/report/stage1/scores.svg",
            caption=f"{CAPTIONS}/scores.rst",
            category="Stage 1",
            labels={"figure": "trait scores"},
        ),
    log:
        "results/logs/report/stage1.log",
    conda:
        f"{ENVS}/train.yaml"
    params:
        code=code_digest(
            "report",
            "predict_cli",
            "train",
            "models",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
            "embed/__init__",
            "embed/refs",
        ),
        dirs=STAGE1_DIRS,
    shell:
        "python -m mepr report-plots stage1 --dirs {params.dirs} --manifests {input.manifests}"
        " --embeddings {input.embeddings} --out results/report/stage1 > {log} 2>&1"


rule report_stage2:
    input:
        models=expand(
            "{d}/{f}",
            d=CROSS_DIRS,
            f=["config.json", "curves.csv", "features.parquet"],
        ),
        manifests=MANIFESTS,
    output:
        report(
            "results/report/stage2/curves.svg",
            caption=f"{CAPTIONS}/curves.rst",
            category="Stage 2",
            labels={"figure": "training curves"},
        ),
        report(
            "results/report/stage2/confusion.svg",
            caption=f"{CAPTIONS}/confusion.rst",
            category="Stage 2",
            labels={"figure": "emotion confusion"},
        ),
        report(
            "results/report/stage2/scores.svg",
            caption=f"{CAPTIONS}/scores.rst",
            category="Stage 2",
            labels={"figure": "trait scores"},
        ),
    log:
        "results/logs/report/stage2.log",
    conda:
        f"{ENVS}/train.yaml"
    params:
        code=code_digest(
            "report",
            "predict_cli",
            "train",
            "models",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
            "embed/__init__",
            "embed/refs",
        ),
        dirs=CROSS_DIRS,
    shell:
        "python -m mepr report-plots stage2 --dirs {params.dirs} --manifests {input.manifests}"
        " --out results/report/stage2 > {log} 2>&1"


rule report_fusion:
    input:
        models=["results/fusion/config.json", "results/fusion/curves.csv"],
        predictions="results/fusion/predictions.parquet",
        manifests=MANIFESTS,
    output:
        report(
            "results/report/fusion/curves.svg",
            caption=f"{CAPTIONS}/curves.rst",
            category="Stage 3 (fusion)",
            labels={"figure": "training curves"},
        ),
        report(
            "results/report/fusion/confusion.svg",
            caption=f"{CAPTIONS}/confusion.rst",
            category="Stage 3 (fusion)",
            labels={"figure": "emotion confusion"},
        ),
        report(
            "results/report/fusion/scores.svg",
            caption=f"{CAPTIONS}/scores.rst",
            category="Stage 3 (fusion)",
            labels={"figure": "trait scores"},
        ),
    log:
        "results/logs/report/fusion.log",
    conda:
        f"{ENVS}/train.yaml"
    params:
        code=code_digest(
            "report",
            "predict_cli",
            "train",
            "models",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
            "embed/__init__",
            "embed/refs",
        ),
    shell:
        "python -m mepr report-plots fusion --dirs results/fusion --manifests {input.manifests}"
        " --out results/report/fusion > {log} 2>&1"


rule report_metrics:
    input:
        fusion="results/fusion/metrics.json",
        stage1=expand("{d}/metrics.json", d=STAGE1_DIRS),
    output:
        report(
            "results/report/metrics.html",
            caption=f"{CAPTIONS}/metrics.rst",
            category="Metrics",
            labels={"table": "final metrics"},
        ),
    log:
        "results/logs/report/metrics.log",
    conda:
        f"{ENVS}/train.yaml"
    params:
        code=code_digest(
            "report",
            "predict_cli",
            "train",
            "models",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
            "embed/__init__",
            "embed/refs",
        ),
        dirs=STAGE1_DIRS,
    shell:
        "python -m mepr report-plots metrics --dirs results/fusion {params.dirs}"
        " --out {output} > {log} 2>&1"


rule report_plots:
    input:
        rules.report_stage1.output,
        rules.report_stage2.output,
        rules.report_fusion.output,
        rules.report_metrics.output,
    localrule: True


rule pipeline_spec:
    input:
        fusion=["results/fusion/config.json", "results/fusion/model.safetensors"],
        cross=expand("{d}/{f}", d=CROSS_DIRS, f=["config.json", "model.safetensors"]),
        shards=embedding_shards(CORPORA, MODALITIES)
        + expand(
            "results/{kind}/{corpus}/shard-{k}.parquet",
            kind=["frames", "audio", "transcripts"],
            corpus=CORPORA,
            k=SHARDS,
        ),
    output:
        "results/fusion/pipeline.json",
    log:
        "results/logs/report/pipeline_spec.log",
    conda:
        f"{ENVS}/train.yaml"
    params:
        code=code_digest(
            "predict",
            "predict_cli",
            "train/loop",
            "config",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
            "embed/__init__",
            "embed/refs",
        ),
    shell:
        "python -m mepr pipeline-spec --model results/fusion --out {output} > {log} 2>&1"


rule predict:
    input:
        videos=lambda wc: folder_videos(
            config["predict"]["videos"][wc.name],
            f"predict.videos.{wc.name}",
            demo_labels_of(config["corpora"], config["predict"]["videos"][wc.name]),
        ),
        spec="results/fusion/pipeline.json",
        models=expand("{d}/model.safetensors", d=["results/fusion", *CROSS_DIRS]),
        encoders=sorted({d for m in MODALITIES for d in demo_encoders_needed(m)}),
    output:
        index="results/predict/{name}/index.html",
        summary="results/predict/{name}/summary.json",
    log:
        "results/logs/predict/{name}.log",
    conda:
        f"{ENVS}/predict.yaml"
    resources:
        mem_mb=6000,
        runtime=240,
    params:
        code=code_digest(
            "predict",
            "predict_cli",
            "report",
            "media",
            "embed",
            "asr",
            "models",
            "train",
            "config",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
        ),
        chunk=config["predict"]["chunk"],
        folder=lambda wc: config["predict"]["videos"][wc.name],
    shell:
        "python -m mepr predict {params.folder:q} --model results/fusion --out results/predict/{wildcards.name}"
        " --chunk {params.chunk} --quiet > {log} 2>&1"
