# Corpora: the generated demo corpus, one manifest per corpus, the merged failures table.
FAILURE_STAGES = ["frames", "audio", "transcripts"] + [f"embed_{m}" for m in MODALITIES]


rule demo_corpus:
    output:
        layout.DEMO_LABELS,
    log:
        layout.log("demo/{corpus}"),
    conda:
        f"{ENVS}/media.yaml"
    params:
        code=code_digest("corpora", "config", "files", "labels"),
        root=lambda wc: config["corpora"][wc.corpus]["root"],
        task=lambda wc: config["corpora"][wc.corpus]["task"],
        demo=json_arg(config["demo"]),
        seed=SEED,
        transcripts=lambda wc: (
            "--with-transcripts"
            if wc.corpus in config["demo"]["transcripts_for"]
            else ""
        ),
    shell:
        "python -m mepr demo --corpus {wildcards.corpus} --task {params.task}"
        " --root {params.root} --params {params.demo} --seed {params.seed} {params.transcripts}"
        " > {log} 2>&1"


checkpoint manifest:
    input:
        corpus_sources,
    output:
        manifest=layout.MANIFEST,
        failures=layout.MANIFEST_FAILURES,
    log:
        layout.log("manifest/{corpus}"),
    conda:
        f"{ENVS}/media.yaml"
    params:
        code=code_digest("corpora", "config", "labels", "files", "shards"),
        corpus=lambda wc: json_arg(corpus_cfg(wc)),
        n_shards=config["n_shards"],
    shell:
        "python -m mepr manifest --corpus {wildcards.corpus} --corpus-config {params.corpus}"
        " --n-shards {params.n_shards} --out {output.manifest} --failures {output.failures}"
        " > {log} 2>&1"


rule failures:
    input:
        layout.MANIFEST_FAILURES,
        expand(
            layout.STAGE_FAILURES, stage=FAILURE_STAGES, k=SHARDS, allow_missing=True
        ),
    output:
        layout.CORPUS_FAILURES,
    log:
        layout.log("failures/{corpus}"),
    conda:
        f"{ENVS}/media.yaml"
    params:
        code=code_digest("failures", "files", "shards"),
    shell:
        # the summary: one line per stage and reason ("no failures" when there are none)
        "python -m mepr failures {input} --out {output} > {log} 2>&1;"
        " grep -q . {log} || echo 'no failures' > {log}; cat {log}"
