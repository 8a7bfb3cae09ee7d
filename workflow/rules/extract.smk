# Media extraction per corpus shard: frames + crops, audio, transcripts.


rule frames:
    input:
        manifest=manifest_of,
    output:
        shard=layout.fill(layout.EXTRACTED, kind="frames"),
        failures=layout.fill(layout.STAGE_FAILURES, stage="frames"),
    log:
        layout.log("frames/{corpus}/shard-{k}"),
    conda:
        f"{ENVS}/media.yaml"
    resources:
        mem_mb=3000,
        runtime=60,
    params:
        code=code_digest("media", "cli", "config", "files", "shards"),
        members=shard_params,
        frames=json_arg(config["frames"]),
        detect=json_arg(config["detect"]),
    shell:
        "python -m mepr frames --manifest {input.manifest} --shard {wildcards.k}"
        " --frames {params.frames} --detect {params.detect}"
        " --out {output.shard} --failures {output.failures} > {log} 2>&1"


rule audio:
    input:
        manifest=manifest_of,
    output:
        shard=layout.fill(layout.EXTRACTED, kind="audio"),
        failures=layout.fill(layout.STAGE_FAILURES, stage="audio"),
    log:
        layout.log("audio/{corpus}/shard-{k}"),
    conda:
        f"{ENVS}/media.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        code=code_digest("media", "cli", "config", "files", "shards"),
        members=shard_params,
        audio=json_arg(config["audio"]),
    shell:
        "python -m mepr audio --manifest {input.manifest} --shard {wildcards.k}"
        " --params {params.audio} --out {output.shard} --failures {output.failures} > {log} 2>&1"


rule transcripts:
    input:
        manifest=manifest_of,
        audio=layout.fill(layout.EXTRACTED, kind="audio"),
        models=models_needed("asr"),  # the ASR backend's hub models, in the model store
    output:
        shard=layout.fill(layout.EXTRACTED, kind="transcripts"),
        failures=layout.fill(layout.STAGE_FAILURES, stage="transcripts"),
    log:
        layout.log("transcripts/{corpus}/shard-{k}"),
    conda:
        f"{ENVS}/asr.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        code=code_digest(
            "asr",
            "media",
            "cli",
            "config",
            "devices",
            "embed/__init__",
            "embed/store",
            "files",
            "layout",
            "shards",
            "embed/refs",
        ),
        members=shard_params,
        asr=json_arg(config["asr"]),
    shell:
        "python -m mepr transcripts --manifest {input.manifest} --audio {input.audio}"
        " --shard {wildcards.k} --params {params.asr}"
        " --out {output.shard} --failures {output.failures} > {log} 2>&1"
