# Using the trained system on new videos: the pipeline spec that tells `mepr predict` how to
# feed the models, and predictions for the folders of videos named in config `predict`.
from mepr.corpora import demo_labels_of
from mepr.predict import folder_videos

PREDICT_CROSS_DIRS = expand(layout.CROSS_DIR, modality=MODALITIES)
# the shards the models were trained from: the spec reads its parameters from these, and
# from no other file (a leftover shard of a corpus no longer configured stays out)
SPEC_SHARDS = embedding_shards(CORPORA, MODALITIES) + expand(
    layout.EXTRACTED, kind=["frames", "audio", "transcripts"], corpus=CORPORA, k=SHARDS
)


rule pipeline_spec:
    input:
        fusion=expand(
            "{d}/{f}", d=layout.FUSION_DIR, f=["config.json", "model.safetensors"]
        ),
        cross=expand(
            "{d}/{f}", d=PREDICT_CROSS_DIRS, f=["config.json", "model.safetensors"]
        ),
        shards=SPEC_SHARDS,
    output:
        layout.PIPELINE_SPEC,
    log:
        layout.log("report/pipeline_spec"),
    conda:
        f"{ENVS}/train.yaml"
    params:
        code=code_digest(
            "predict",
            "models/checkpoints",
            "train/loop",
            "config",
            "devices",
            "files",
            "labels",
            "metrics",
            "shards",
            "embed/__init__",
            "embed/refs",
            "layout",
        ),
    shell:
        f"python -m mepr pipeline-spec --model {layout.FUSION_DIR} --shards {{input.shards}}"
        " --out {output} > {log} 2>&1"


rule predict:
    input:
        videos=lambda wc: folder_videos(
            config["predict"]["videos"][wc.name],
            f"predict.videos.{wc.name}",
            demo_labels_of(config["corpora"], config["predict"]["videos"][wc.name]),
        ),
        spec=layout.PIPELINE_SPEC,
        models=expand(
            "{d}/model.safetensors", d=[layout.FUSION_DIR, *PREDICT_CROSS_DIRS]
        ),
        encoders=sorted({d for m in MODALITIES for d in demo_encoders_needed(m)}),
    output:
        index=layout.file_in(layout.PREDICT_DIR, "index.html"),
        summary=layout.file_in(layout.PREDICT_DIR, "summary.json"),
    log:
        layout.log("predict/{name}"),
    conda:
        f"{ENVS}/predict.yaml"
    resources:
        mem_mb=6000,
        runtime=240,
    params:
        code=code_digest(
            "predict",
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
            "layout",
        ),
        chunk=config["predict"]["chunk"],
        folder=lambda wc: config["predict"]["videos"][wc.name],
    shell:
        f"python -m mepr predict {{params.folder:q}} --model {layout.FUSION_DIR}"
        f" --out {layout.fill(layout.PREDICT_DIR, name='{wildcards.name}')}"
        " --chunk {params.chunk} --quiet > {log} 2>&1"
