# Figures for `snakemake --report` (the pipeline spec and predictions: predict.smk).

STAGE1_DIRS = expand(layout.UNIMODAL_DIR, modality=MODALITIES, corpus=CORPORA)
CROSS_DIRS = expand(layout.CROSS_DIR, modality=MODALITIES)
MANIFESTS = expand(layout.MANIFEST, corpus=CORPORA)


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
        layout.log("report/stage1"),
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
        out=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "python -m mepr report-plots stage1 --dirs {params.dirs} --manifests {input.manifests}"
        " --embeddings {input.embeddings} --out {params.out} > {log} 2>&1"


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
        layout.log("report/stage2"),
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
        out=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "python -m mepr report-plots stage2 --dirs {params.dirs} --manifests {input.manifests}"
        " --out {params.out} > {log} 2>&1"


rule report_fusion:
    input:
        models=[
            layout.file_in(layout.FUSION_DIR, "config.json"),
            layout.file_in(layout.FUSION_DIR, "curves.csv"),
        ],
        predictions=layout.file_in(layout.FUSION_DIR, "predictions.parquet"),
        manifests=MANIFESTS,
    output:
        stage_figures("fusion", "Stage 3 (fusion)"),
    log:
        layout.log("report/fusion"),
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
        dirs=lambda wildcards, input: os.path.dirname(input.predictions),
        out=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "python -m mepr report-plots fusion --dirs {params.dirs} --manifests {input.manifests}"
        " --out {params.out} > {log} 2>&1"


rule report_metrics:
    input:
        fusion=layout.FUSION_METRICS,
        stage1=expand("{d}/metrics.json", d=STAGE1_DIRS),
    output:
        report(
            layout.METRICS_REPORT,
            caption=f"{CAPTIONS}/metrics.rst",
            category="Metrics",
            labels={"table": "final metrics"},
        ),
    log:
        layout.log("report/metrics"),
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
        fusion=lambda wildcards, input: os.path.dirname(input.fusion),
        dirs=STAGE1_DIRS,
    shell:
        "python -m mepr report-plots metrics --dirs {params.fusion} {params.dirs}"
        " --out {output} > {log} 2>&1"


rule report_plots:
    input:
        rules.report_stage1.output,
        rules.report_stage2.output,
        rules.report_fusion.output,
        rules.report_metrics.output,
        # rule paper_comparison (paper.smk, included after this file)
        layout.file_in(layout.PAPER_DIR, "comparison.md"),
    localrule: True
