# Training: stage 1 (modality x corpus), stage 2 (modality, cross-domain), stage 3 (fusion).


rule train_unimodal:
    input:
        manifest="results/corpora/{corpus}/manifest.parquet",
        embeddings=lambda wc: embedding_shards(wc.corpus, wc.modality),
    output:
        expand(
            "results/unimodal/{{modality}}/{{corpus}}/{f}",
            f=["model.safetensors", "config.json", "curves.csv"],
        ),
        report(
            "results/unimodal/{modality}/{corpus}/metrics.json",
            caption="../../src/mepr/report/captions/raw_metrics.rst",
            category="Raw metrics",
            subcategory="Stage 1",
            labels={"modality": "{modality}", "corpus": "{corpus}"},
        ),
    log:
        "results/logs/unimodal/{modality}/{corpus}.log",
    conda:
        f"{ENVS}/train.yaml"
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        code=code_digest(
            "train", "models", "devices", "files", "labels", "metrics", "shards"
        ),
        out="results/unimodal/{modality}/{corpus}",
        train=lambda wc: json_arg(train_section(wc.modality)),
        seed=SEED,
    shell:
        "python -m mepr train-unimodal --modality {wildcards.modality} --corpus {wildcards.corpus}"
        " --manifest {input.manifest} --embeddings {input.embeddings}"
        " --params {params.train} --seed {params.seed} --out {params.out} > {log} 2>&1"


rule train_cross:
    input:
        stage1=expand(
            "results/unimodal/{{modality}}/{corpus}/model.safetensors", corpus=CORPORA
        ),
        manifests=expand("results/corpora/{corpus}/manifest.parquet", corpus=CORPORA),
        embeddings=lambda wc: embedding_shards(CORPORA, wc.modality),
    output:
        expand(
            "results/unimodal/{{modality}}/cross/{f}",
            f=["model.safetensors", "config.json", "curves.csv", "features.parquet"],
        ),
        report(
            "results/unimodal/{modality}/cross/metrics.json",
            caption="../../src/mepr/report/captions/raw_metrics.rst",
            category="Raw metrics",
            subcategory="Stage 2",
            labels={"modality": "{modality}", "corpus": "cross"},
        ),
    log:
        "results/logs/unimodal/{modality}/cross.log",
    conda:
        f"{ENVS}/train.yaml"
    resources:
        mem_mb=4000,
        runtime=180,
    params:
        code=code_digest(
            "train", "models", "devices", "files", "labels", "metrics", "shards"
        ),
        stage1=lambda wc: expand(
            "results/unimodal/{modality}/{corpus}",
            modality=wc.modality,
            corpus=CORPORA,
        ),
        out="results/unimodal/{modality}/cross",
        train=lambda wc: json_arg(train_section(wc.modality)),
        seed=SEED,
    shell:
        "python -m mepr train-cross --modality {wildcards.modality} --stage1 {params.stage1}"
        " --manifests {input.manifests} --embeddings {input.embeddings}"
        " --params {params.train} --seed {params.seed} --out {params.out} > {log} 2>&1"


rule train_fusion:
    input:
        cross=expand(
            "results/unimodal/{modality}/cross/features.parquet", modality=MODALITIES
        ),
        manifests=expand("results/corpora/{corpus}/manifest.parquet", corpus=CORPORA),
    output:
        expand(
            "results/fusion/{f}",
            f=[
                "model.safetensors",
                "config.json",
                "curves.csv",
                "predictions.parquet",
            ],
        ),
        report(
            "results/fusion/metrics.json",
            caption="../../src/mepr/report/captions/raw_metrics.rst",
            category="Raw metrics",
            subcategory="Stage 3",
            labels={"modality": "fusion", "corpus": "all"},
        ),
    log:
        "results/logs/fusion.log",
    conda:
        f"{ENVS}/train.yaml"
    resources:
        mem_mb=6000,
        runtime=240,
    params:
        code=code_digest(
            "train", "models", "devices", "files", "labels", "metrics", "shards"
        ),
        cross=expand("results/unimodal/{modality}/cross", modality=MODALITIES),
        train=json_arg(train_section()),
        seed=SEED,
    shell:
        "python -m mepr train-fusion --cross {params.cross} --manifests {input.manifests}"
        " --params {params.train} --seed {params.seed} --out results/fusion > {log} 2>&1"
