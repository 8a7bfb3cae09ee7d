# Corpora: the generated demo corpus, one manifest per corpus, the merged failures table.
FAILURE_STAGES = ["frames", "audio", "transcripts"] + [f"embed_{m}" for m in MODALITIES]


rule demo_corpus:
    output:
        "results/demo/{corpus}/labels.csv",
    log:
        "results/logs/demo/{corpus}.log",
    conda:
        f"{ENVS}/media.yaml"
    params:
        code=code_digest("corpora", "config", "labels"),
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
        manifest="results/corpora/{corpus}/manifest.parquet",
        failures="results/failures/{corpus}/manifest/all.parquet",
    log:
        "results/logs/manifest/{corpus}.log",
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
        "results/failures/{corpus}/manifest/all.parquet",
        expand(
            "results/failures/{{corpus}}/{stage}/shard-{k}.parquet",
            stage=FAILURE_STAGES,
            k=SHARDS,
        ),
    output:
        "results/failures/{corpus}.parquet",
    log:
        "results/logs/failures/{corpus}.log",
    conda:
        f"{ENVS}/media.yaml"
    params:
        code=code_digest("cli", "config", "files", "shards"),
    shell:
        # the summary: one line per stage and reason ("no failures" when there are none)
        "python -m mepr failures {input} --out {output} > {log} 2>&1;"
        " grep -q . {log} || echo 'no failures' > {log}; cat {log}"
