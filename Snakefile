# mepr: the SSL-MEPR workflow. Which files depend on which lives in workflow/rules/*.smk;
# what each step does lives in the mepr package (python -m mepr ...).
from snakemake.utils import min_version

min_version("9.0")


# the default config lives beside this file, so the workflow runs from any directory
# (snakemake -s PATH/Snakefile -d WORKDIR); --configfile files are read after it
configfile: f"{workflow.basedir}/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/corpora.smk"
include: "workflow/rules/extract.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/common_sweep.smk"
include: "workflow/rules/sweep.smk"
include: "workflow/rules/paper.smk"


rule all:
    default_target: True
    input:
        layout.FUSION_METRICS,
        expand(layout.CORPUS_FAILURES, corpus=CORPORA),
        rules.report_plots.input,
