# Hyper-parameter sweeps (config `sweeps:`) and the paper's ablations (config `ablations:`):
# every trial and every ablation row is its own stage-3 job (mepr fusion-trial), and a table
# rule gathers them. A greedy sweep runs round by round: round r is a checkpoint whose winner
# fixes the grid's r-th key for the trials of round r + 1. What is a trial, its id and its
# train section live in mepr.sweep; here only which file needs which.


rule fusion_trial:
    input:
        **TRIAL_INPUTS,
        # the round before it (greedy), as ancient: a re-run round with the same winner
        # re-runs none of the next round's trials
        rounds=lambda wc: [ancient(p) for p in find_trial(wc)[1]],
    output:
        layout.SWEEP_TRIAL,
    log:
        layout.log("sweeps/{sweep}/{trial}"),
    conda:
        f"{ENVS}/train.yaml"
    resources:
        mem_mb=6000,
        runtime=240,
    params:
        code=code_digest(
            "sweep/trial",
            "sweep/outcome",
            "sweep/cli",
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
        train=trial_train,
        seed=lambda wc: trial_seed(SWEEPS[wc.sweep], SEED, find_trial(wc)[0]),
        out=lambda wc, output: os.path.dirname(output[0]),
    shell:
        "python -m mepr fusion-trial --cross {params.cross} --manifests {input.manifests}"
        " --params {params.train} --seed {params.seed} --out {params.out} > {log} 2>&1"


checkpoint sweep_round:
    input:
        lambda wc: [
            trial_status(SWEEPS[wc.sweep], t)
            for t in round_trials(wc.sweep, int(wc.r))
        ],
    output:
        layout.SWEEP_ROUND,
    log:
        layout.log("sweeps/{sweep}/round-{r}"),
    # a table from small JSON files: on the submitting node, never through sbatch
    localrule: True
    conda:
        f"{ENVS}/train.yaml"
    params:
        code=code_digest(
            "sweep/table",
            "sweep/grid",
            "sweep/outcome",
            "sweep/cli",
            "config",
            "files",
        ),
        plan=lambda wc: json_arg(
            round_plan(
                SWEEPS[wc.sweep],
                config["train"],
                int(wc.r),
                round_trials(wc.sweep, int(wc.r)),
                round_winners(wc.sweep, int(wc.r)),
                SEED,
            )
        ),
    shell:
        "python -m mepr sweep-round --plan {params.plan} --out {output} > {log} 2>&1"


rule sweep_table:
    input:
        trials=lambda wc: [
            trial_status(SWEEPS[wc.sweep], t) for t in sweep_trials(wc.sweep)
        ],
        rounds=sweep_rounds,
    output:
        md=layout.SWEEP_TABLE,
        csv=layout.SWEEP_TABLE.replace(".md", ".csv"),
    log:
        layout.log("sweeps/{sweep}/table"),
    # a table from small JSON files: on the submitting node, never through sbatch
    localrule: True
    conda:
        f"{ENVS}/train.yaml"
    params:
        code=code_digest(
            "sweep/table",
            "sweep/grid",
            "sweep/outcome",
            "sweep/cli",
            "config",
            "files",
        ),
        plan=sweep_table_plan,
    shell:
        "python -m mepr sweep-table --plan {params.plan} --rounds {input.rounds}"
        " --out {output.md} --csv {output.csv} > {log} 2>&1"


rule ablation_row:
    input:
        **TRIAL_INPUTS,
    output:
        layout.ABLATION_ROW,
    log:
        layout.log("ablations/{row}"),
    conda:
        f"{ENVS}/train.yaml"
    resources:
        mem_mb=6000,
        runtime=240,
    params:
        code=code_digest(
            "sweep/trial",
            "sweep/outcome",
            "sweep/cli",
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
        # the config's seed: a row differs from the full system in its one change only
        train=lambda wc: json_arg(
            with_overrides(config["train"], ABLATION_ROWS[wc.row].values)
        ),
        seed=SEED,
        out=lambda wc, output: os.path.dirname(output[0]),
    shell:
        "python -m mepr fusion-trial --cross {params.cross} --manifests {input.manifests}"
        " --params {params.train} --seed {params.seed} --out {params.out} > {log} 2>&1"


rule ablation_table:
    input:
        [p.source for p in ABLATION_PLAN if p.kind != "skipped"],
    output:
        md=layout.ABLATION_TABLE,
        csv=layout.ABLATION_TABLE.replace(".md", ".csv"),
    log:
        layout.log("ablations/table"),
    # a table from small JSON files: on the submitting node, never through sbatch
    localrule: True
    conda:
        f"{ENVS}/train.yaml"
    params:
        code=code_digest(
            "sweep/table",
            "sweep/grid",
            "sweep/outcome",
            "sweep/cli",
            "config",
            "files",
        ),
        plan=json_arg(
            table_plan(
                "Ablations: stage 3 with one component, modality or task changed",
                ABLATION_PLAN,
                rank=False,
                notes=[
                    "Every row trains with the config's seed; 'full' is results/fusion."
                ],
            )
        ),
    shell:
        "python -m mepr sweep-table --plan {params.plan}"
        " --out {output.md} --csv {output.csv} > {log} 2>&1"
