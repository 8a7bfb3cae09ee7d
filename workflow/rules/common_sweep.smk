# Sweeps and ablations (rules in sweep.smk): which trials a config plans and what each
# trial's job needs. What a trial is, its id and its train section live in mepr.sweep.
from mepr.sweep import ablations as sweep_ablations
from mepr.sweep.grid import (
    Sweep,
    check_sweep,
    exhaustive,
    greedy_round,
    trial_seed,
    with_overrides,
)
from mepr.sweep.plan import round_plan, table_plan, trial_row, trial_status, unique

try:
    SWEEPS = {name: Sweep.from_config(name, s) for name, s in config["sweeps"].items()}
    for _sweep in SWEEPS.values():
        check_sweep(_sweep, config["train"])
except ConfigError as e:
    sys.exit(str(e))

ABLATION_PLAN = sweep_ablations.plan_rows(
    list(config["ablations"]["rows"]),
    config["train"],
    full_metrics=layout.FUSION_METRICS,
    row_status=layout.ABLATION_ROW,
    single_task_metrics=layout.FUSION_SINGLE_METRICS,
    seed=SEED,
)
ABLATION_ROWS = {p.row: p for p in sweep_ablations.trained_rows(ABLATION_PLAN)}


wildcard_constraints:
    sweep="|".join(map(re.escape, SWEEPS)) or "(?!)",
    row="|".join(map(re.escape, ABLATION_ROWS)) or "(?!)",
    trial=r"[A-Za-z0-9_.+-]+",
    r=r"\d+",


def round_winners(name, r):
    """Every key's winner after greedy round r - 1 (none before round 0): reading it waits
    for that round's checkpoint."""
    if r == 0:
        return {}
    path = checkpoints.sweep_round.get(sweep=name, r=r - 1).output[0]
    with open(path) as f:
        return json.load(f)["winners"]


def round_trials(name, r):
    return greedy_round(SWEEPS[name], config["train"], r, round_winners(name, r))


def sweep_trials(name):
    """Every trial of a sweep (greedy: of all rounds, which waits for each round)."""
    sweep = SWEEPS[name]
    if sweep.mode == "exhaustive":
        return unique(exhaustive(sweep, config["train"]))
    return unique(t for r in range(len(sweep.grid)) for t in round_trials(name, r))


def find_trial(wildcards):
    """(the trial, the round files it waits for): a greedy trial is found in the first round
    that tries it, once the rounds before it are done."""
    sweep = SWEEPS[wildcards.sweep]
    if sweep.mode == "exhaustive":
        rounds = [exhaustive(sweep, config["train"])]
    else:
        rounds = (round_trials(wildcards.sweep, r) for r in range(len(sweep.grid)))
    for r, trials in enumerate(rounds):
        for t in trials:
            if t.id == wildcards.trial:
                before = expand(layout.SWEEP_ROUND, sweep=sweep.name, r=range(r))
                return t, before if sweep.mode == "greedy" else []
    raise ValueError(f"sweep '{sweep.name}' plans no trial '{wildcards.trial}'")


def trial_train(wildcards):
    return json_arg(with_overrides(config["train"], find_trial(wildcards)[0].overrides))


# what every trial and ablation row trains from: the main run's stage-2 outputs
TRIAL_INPUTS = dict(
    cross=expand(
        layout.file_in(layout.CROSS_DIR, "features.parquet"), modality=MODALITIES
    ),
    manifests=expand(layout.MANIFEST, corpus=CORPORA),
)


def sweep_rounds(wildcards):
    sweep = SWEEPS[wildcards.sweep]
    n = len(sweep.grid) if sweep.mode == "greedy" else 0
    return expand(layout.SWEEP_ROUND, sweep=sweep.name, r=range(n))


def sweep_table_plan(wildcards):
    sweep = SWEEPS[wildcards.sweep]
    rows = [trial_row(sweep, t, SEED) for t in sweep_trials(sweep.name)]
    title = f"Sweep {sweep.name}: {sweep.mode}, {len(rows)} trials of stage 3"
    notes = [
        "Ranked on the dev selection score (train.selection); test metrics beside it."
    ]
    return json_arg(table_plan(title, rows, rank=True, notes=notes))
