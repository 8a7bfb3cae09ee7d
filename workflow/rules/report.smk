# Figures for `snakemake --report` (the pipeline spec and predictions: predict.smk).

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
        stage_figures("stage1", "Stage 1"),
    log:
        "results/logs/report/stage1.log",
    conda:
        f"{ENVS}/train.yaml"
    params:
        code=code_digest(
            "report/cli",
            "report/figures",
            "report/metrics_table",
            "train",
            "models",
            "config",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
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
        stage_figures("stage2", "Stage 2"),
    log:
        "results/logs/report/stage2.log",
    conda:
        f"{ENVS}/train.yaml"
    params:
        code=code_digest(
            "report/cli",
            "report/figures",
            "report/metrics_table",
            "train",
            "models",
            "config",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
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
        stage_figures("fusion", "Stage 3 (fusion)"),
    log:
        "results/logs/report/fusion.log",
    conda:
        f"{ENVS}/train.yaml"
    params:
        code=code_digest(
            "report/cli",
            "report/figures",
            "report/metrics_table",
            "train",
            "models",
            "config",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
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
            "report/cli",
            "report/figures",
            "report/metrics_table",
            "train",
            "models",
            "config",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
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
