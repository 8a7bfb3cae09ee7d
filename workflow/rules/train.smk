# Training: stage 1 (modality x corpus), stage 2 (modality, cross-domain), stage 3 (fusion).


rule train_unimodal:
    input:
        manifest=layout.MANIFEST,
        embeddings=lambda wc: embedding_shards(wc.corpus, wc.modality),
    output:
        expand(
            layout.file_in(layout.UNIMODAL_DIR, "{f}"),
            f=["model.safetensors", "config.json", "curves.csv"],
            allow_missing=True,
        ),
        report(
            layout.file_in(layout.UNIMODAL_DIR, "metrics.json"),
            caption=f"{CAPTIONS}/raw_metrics.rst",
            category="Raw metrics",
            subcategory="Stage 1",
            labels={"modality": "{modality}", "corpus": "{corpus}"},
        ),
    log:
        layout.log("unimodal/{modality}/{corpus}"),
    conda:
        f"{ENVS}/train.yaml"
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        code=code_digest(
            "train",
            "models",
            "config",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
        ),
        out=layout.UNIMODAL_DIR,
        train=lambda wc: json_arg(train_section(wc.modality)),
        seed=SEED,
    shell:
        "python -m mepr train-unimodal --modality {wildcards.modality} --corpus {wildcards.corpus}"
        " --manifest {input.manifest} --embeddings {input.embeddings}"
        " --params {params.train} --seed {params.seed} --out {params.out} > {log} 2>&1"


rule train_cross:
    input:
        stage1=expand(
            layout.file_in(layout.UNIMODAL_DIR, "model.safetensors"),
            corpus=CORPORA,
            allow_missing=True,
        ),
        manifests=expand(layout.MANIFEST, corpus=CORPORA),
        embeddings=lambda wc: embedding_shards(CORPORA, wc.modality),
    output:
        expand(
            layout.file_in(layout.CROSS_DIR, "{f}"),
            f=["model.safetensors", "config.json", "curves.csv", "features.parquet"],
            allow_missing=True,
        ),
        report(
            layout.file_in(layout.CROSS_DIR, "metrics.json"),
            caption=f"{CAPTIONS}/raw_metrics.rst",
            category="Raw metrics",
            subcategory="Stage 2",
            labels={"modality": "{modality}", "corpus": "cross"},
        ),
    log:
        layout.log("unimodal/{modality}/cross"),
    conda:
        f"{ENVS}/train.yaml"
    resources:
        mem_mb=4000,
        runtime=180,
    params:
        code=code_digest(
            "train",
            "models",
            "config",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
        ),
        stage1=lambda wc: expand(
            layout.UNIMODAL_DIR, modality=wc.modality, corpus=CORPORA
        ),
        out=layout.CROSS_DIR,
        train=lambda wc: json_arg(train_section(wc.modality)),
        seed=SEED,
    shell:
        "python -m mepr train-cross --modality {wildcards.modality} --stage1 {params.stage1}"
        " --manifests {input.manifests} --embeddings {input.embeddings}"
        " --params {params.train} --seed {params.seed} --out {params.out} > {log} 2>&1"


rule train_fusion:
    input:
        cross=expand(
            layout.file_in(layout.CROSS_DIR, "features.parquet"), modality=MODALITIES
        ),
        manifests=expand(layout.MANIFEST, corpus=CORPORA),
    output:
        expand(
            layout.file_in(layout.FUSION_DIR, "{f}"),
            f=[
                "model.safetensors",
                "config.json",
                "curves.csv",
                "predictions.parquet",
            ],
        ),
        report(
            layout.FUSION_METRICS,
            caption=f"{CAPTIONS}/raw_metrics.rst",
            category="Raw metrics",
            subcategory="Stage 3",
            labels={"modality": "fusion", "corpus": "all"},
        ),
    log:
        layout.log("fusion"),
    conda:
        f"{ENVS}/train.yaml"
    resources:
        mem_mb=6000,
        runtime=240,
    params:
        code=code_digest(
            "train",
            "models",
            "config",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
        ),
        cross=expand(layout.CROSS_DIR, modality=MODALITIES),
        train=json_arg(train_section()),
        seed=SEED,
    shell:
        "python -m mepr train-fusion --cross {params.cross} --manifests {input.manifests}"
        f" --params {{params.train}} --seed {{params.seed}} --out {layout.FUSION_DIR} > {{log}} 2>&1"


rule train_fusion_single:
    input:
        cross=expand(
            layout.file_in(layout.CROSS_DIR, "features.parquet"), modality=MODALITIES
        ),
        manifests=expand(layout.MANIFEST, corpus=CORPORA),
    output:
        expand(
            layout.file_in(layout.FUSION_SINGLE_DIR, "{f}"),
            f=["model.safetensors", "config.json", "curves.csv"],
            allow_missing=True,
        ),
        report(
            layout.FUSION_SINGLE_METRICS,
            caption=f"{CAPTIONS}/raw_metrics.rst",
            category="Raw metrics",
            subcategory="Stage 3 single-task",
            labels={"modality": "fusion ({task})", "corpus": "all"},
        ),
    log:
        layout.log("fusion_single/{task}"),
    wildcard_constraints:
        task="emotion|personality",
    conda:
        f"{ENVS}/train.yaml"
    resources:
        mem_mb=6000,
        runtime=240,
    params:
        code=code_digest(
            "train",
            "models",
            "config",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
        ),
        cross=expand(layout.CROSS_DIR, modality=MODALITIES),
        out=layout.FUSION_SINGLE_DIR,
        train=json_arg(train_section()),
        seed=SEED,
    shell:
        "python -m mepr train-fusion-single --task {wildcards.task} --cross {params.cross}"
        " --manifests {input.manifests} --params {params.train} --seed {params.seed}"
        " --out {params.out} > {log} 2>&1"
