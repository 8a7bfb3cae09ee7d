"""Hyper-parameter sweeps and the paper's ablations, each trial its own stage-3 job.

`grid` expands a `sweeps.NAME` grid into trials (exhaustive or greedy rounds) and checks it
at planning time; `trial` runs one; `outcome` is its status.json; `table` ranks them;
`ablations` plans the ablation rows; `plan` is what the rules (workflow/rules/sweep.smk)
hand the commands in `cli`.
"""
