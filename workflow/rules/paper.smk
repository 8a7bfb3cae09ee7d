# The paper's published results beside this run's (mepr.report.paper): one table, in the report.
from mepr.report.paper import DATA_FILE as PAPER_DATA

PAPER_STAGE1 = expand(
    layout.file_in(layout.UNIMODAL_DIR, "metrics.json"),
    modality=MODALITIES,
    corpus=CORPORA,
)


rule paper_comparison:
    input:
        data=PAPER_DATA,
        fusion=layout.FUSION_METRICS,
        stage1=PAPER_STAGE1,
        single=expand(layout.FUSION_SINGLE_METRICS, task=["emotion", "personality"]),
        ablations=layout.ABLATION_TABLE.replace(".md", ".csv"),
    output:
        md=report(
            layout.file_in(layout.PAPER_DIR, "comparison.md"),
            caption=f"{CAPTIONS}/comparison.rst",
            category="Metrics",
            labels={"table": "paper comparison (markdown)"},
        ),
        html=report(
            layout.file_in(layout.PAPER_DIR, "comparison.html"),
            caption=f"{CAPTIONS}/comparison.rst",
            category="Metrics",
            labels={"table": "paper comparison"},
        ),
        csv=layout.file_in(layout.PAPER_DIR, "comparison.csv"),
    log:
        layout.log("report/paper"),
    localrule: True
    conda:
        f"{ENVS}/train.yaml"
    params:
        code=code_digest("report/cli", "report/paper"),
        corpora=" ".join(
            f"{name}={c['adapter']}:{c['task']}"
            for name, c in sorted(config["corpora"].items())
        ),
        out=lambda wildcards, output: os.path.dirname(output.md),
    shell:
        "python -m mepr paper-compare --corpus {params.corpora} --fusion {input.fusion}"
        " --stage1 {input.stage1} --single emotion={input.single[0]}"
        " personality={input.single[1]} --ablations {input.ablations} --out {params.out}"
        " > {log} 2>&1"
