# Encoders: tiny offline demo encoders, then one embedding shard per corpus, modality, shard.

EMBED_INPUT = {  # the extracted shard kind each modality embeds
    **{m: "frames" for m in IMAGE_MODALITIES},
    "audio": "audio",
    "text": "transcripts",
}

# what an audio embedding job also depends on: how much audio one batch may hold
EMBED_EXTRA = {
    "audio": {"max_batch_seconds": config["encoders"]["max_batch_seconds"]},
}


rule demo_encoder:
    output:
        directory(layout.DEMO_ENCODER_DIR),
    log:
        layout.log("encoders/{name}"),
    conda:
        f"{ENVS}/embed.yaml"
    params:
        code=code_digest(
            "embed", "cli", "devices", "files", "labels", "layout", "shards"
        ),
    shell:
        "python -m mepr build-demo-encoder {wildcards.name} --out {output} > {log} 2>&1"


# Hub models into the model store, one job per model, on the node that runs snakemake (it
# can reach the hub; compute nodes need not). Idempotent: a model the store already holds at
# the requested revision is not fetched again. `snakemake fetch_models` fetches them all.
rule fetch_model:
    output:
        layout.MODEL_RECEIPT,
    log:
        layout.log("models/{key}"),
    wildcard_constraints:
        key="|".join(re.escape(k) for k in FETCH) or "(?!)",
    localrule: True
    conda:
        f"{ENVS}/embed.yaml"
    params:
        code=code_digest(
            "embed/__init__",
            "embed/store",
            "embed/fetch",
            "embed/fetch_cli",
            "config",
            "devices",
            "files",
            "layout",
            "embed/refs",
        ),
        store=MODEL_STORE,
        entry=lambda wc: json_arg(FETCH[wc.key].to_dict()),
    shell:
        "python -m mepr fetch-models --store {params.store:q} --entry {params.entry}"
        " --receipt {output} > {log} 2>&1"


rule fetch_models:
    input:
        [str(receipt_path(e)) for e in FETCH.values()],
    localrule: True


rule embed:
    input:
        data=lambda wc: layout.EXTRACTED.format(
            kind=EMBED_INPUT[wc.modality], corpus=wc.corpus, k=wc.k
        ),
        encoder=lambda wc: demo_encoders_needed(wc.modality),
        models=lambda wc: models_needed(wc.modality),  # hub models, fetched into the store
        # Not read: it makes the job a direct dependent of the manifest checkpoint, so
        # Snakemake rebuilds it (and its run/no-run reason) once the checkpoint is known. Else
        # the provisional extraction jobs of the first DAG pass (manifest not yet known: a
        # plain, non-ancient input) leave "input updated by another job" on every shard's
        # embeddings whenever a manifest is newer than them, e.g. after one video was added.
        manifest=manifest_of,
    output:
        shard=layout.EMBEDDINGS,
        failures=layout.fill(layout.STAGE_FAILURES, stage="embed_{modality}"),
    log:
        layout.log("embed/{corpus}/{modality}/shard-{k}"),
    conda:
        f"{ENVS}/embed.yaml"
    threads: 4  # JPEG decoding beside the encoder (capped at --cores)
    resources:
        mem_mb=4000,
        runtime=60,
        gpu=1 if config["encoders"]["device"] == "cuda" else 0,
    params:
        code=code_digest(
            "embed",
            "media/jpeg",
            "cli",
            "config",
            "devices",
            "files",
            "labels",
            "layout",
            "shards",
        ),
        members=shard_params,
        encoder=lambda wc: json_arg(
            {**encoder_section(wc.modality), **EMBED_EXTRA.get(wc.modality, {})}
        ),
    shell:
        "python -m mepr embed --modality {wildcards.modality} --input {input.data}"
        " --params {params.encoder} --threads {threads}"
        " --out {output.shard} --failures {output.failures} > {log} 2>&1"
