"""The SLURM profile (workflow/profiles/slurm), down to sbatch flags and up to a real cluster.

* what the profile asks of sbatch, per rule, computed with the slurm plugin's own code: GPUs
  for embedding and training (or none, or GRES), partitions, memory and time, retries;
* a dry run through the profile (every key must be a real snakemake/plugin option);
* a real single-node SLURM (slurmctld + slurmd + munged, workflow/scripts/local-slurm.sh)
  running part of the demo DAG through `snakemake --profile workflow/profiles/slurm`: the
  checkpoint, the per-shard job groups, the ASR and embedding rules and stage-1 models, every
  job through sbatch. Needs root and slurm-wlm (installed through apt when missing); skipped
  with the reason otherwise. The full DAG through SLURM takes ~10 min on 2 cores, too long
  for the suite; see README "Run on SLURM".
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "workflow/profiles/slurm"
LOCAL_SLURM = REPO / "workflow/scripts/local-slurm.sh"
GPU_RULES = (
    "embed",
    "train_unimodal",
    "train_cross",
    "train_fusion",
    "train_fusion_single",
    "fusion_trial",
    "ablation_row",
)

plugin = pytest.importorskip(
    "snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]' for the SLURM profile"
)


# --------------------------------------------------------------------------- the profile


def load_profile(**env: str) -> dict:
    """The profile as snakemake sees it (YTE-rendered) under the given MEPR_SLURM_* vars."""
    import yte

    saved = {k: v for k, v in os.environ.items() if k.startswith("MEPR_SLURM_")}
    try:
        for k in saved:
            del os.environ[k]
        os.environ.update(env)
        with (PROFILE / "config.yaml").open() as f:
            return yte.process_yaml(f, require_use_yte=True)
    finally:
        for k in env:
            os.environ.pop(k, None)
        os.environ.update(saved)


class _Resources(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def _evaluate(value, attempt: int):
    """A resource value as snakemake evaluates it (a Python expression, else the string)."""
    if not isinstance(value, str):
        return value
    try:
        return eval(value, {"attempt": attempt})
    except (NameError, SyntaxError):
        return value


def sbatch_flags(profile: dict, rule: str, attempt: int = 1) -> str:
    """The sbatch options the plugin builds for one job of `rule` under `profile`."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    resources = _Resources()
    for source in (profile["default-resources"], profile["set-resources"].get(rule, {})):
        for key, value in source.items():
            resources[key] = _evaluate(value, attempt)
    partition = resources.get("slurm_partition")
    job = SimpleNamespace(resources=resources, threads=1, name=rule, is_group=lambda: False)
    params = {
        "run_uuid": "RUN",
        "slurm_logfile": "log",
        "comment_str": f"rule_{rule}",
        "account": "",
        "partition": f" -p {partition}" if partition else "",
        "workdir": "/work",
    }
    settings = SimpleNamespace(requeue=profile.get("slurm-requeue", False), qos=None)
    settings.reservation = None
    return get_submit_command(job, params, settings=settings) + set_gres_string(job)


def test_gpu_rules_ask_for_a_gpu_and_cpu_rules_do_not():
    profile = load_profile()
    for rule in GPU_RULES:
        flags = sbatch_flags(profile, rule)
        assert "--gpus=1" in flags and "--cpus-per-task=4" in flags, (rule, flags)
    for rule in ("frames", "audio", "transcripts", "manifest", "demo_corpus", "failures"):
        flags = sbatch_flags(profile, rule)
        assert "--gpus" not in flags and "--gres" not in flags, (rule, flags)
        assert "--cpus-per-task=1" in flags, (rule, flags)
    assert "--requeue" in sbatch_flags(profile, "frames")  # preempted jobs go back to the queue


def test_gpu_settings_come_from_the_environment():
    profile = load_profile(
        MEPR_SLURM_PARTITION="cpu",
        MEPR_SLURM_GPU_PARTITION="gpu",
        MEPR_SLURM_GPU_MODEL="a100",
        MEPR_SLURM_GPU_CPUS="8",
    )
    assert " -p gpu " in sbatch_flags(profile, "embed") + " "
    assert "--gpus=a100:1" in sbatch_flags(profile, "train_fusion")
    assert "--cpus-per-task=8" in sbatch_flags(profile, "train_cross")
    assert " -p cpu " in sbatch_flags(profile, "frames") + " "

    gres = sbatch_flags(load_profile(MEPR_SLURM_GRES="gpu:tesla:2"), "embed")
    assert "--gres=gpu:tesla:2" in gres

    no_gpu = load_profile(MEPR_SLURM_GPUS="0")
    for rule in GPU_RULES:
        flags = sbatch_flags(no_gpu, rule)
        assert "--gpus" not in flags and "--cpus-per-task=1" in flags, (rule, flags)


def test_retries_ask_for_more_memory_and_time():
    profile = load_profile()
    assert profile["retries"] >= 1
    first, third = sbatch_flags(profile, "embed", 1), sbatch_flags(profile, "embed", 3)
    mem = lambda flags: int(re.search(r"--mem (\d+)", flags).group(1))  # noqa: E731
    runtime = lambda flags: int(re.search(r"-t '?(\d+)", flags).group(1))  # noqa: E731
    assert mem(third) == 3 * mem(first) and runtime(third) == 3 * runtime(first)


def test_per_shard_jobs_are_bundled():
    profile = load_profile()
    assert {profile["groups"][r] for r in ("frames", "audio", "transcripts", "embed")} == {"shard"}
    # group-components re-forms merged groups after each checkpoint (see the profile)
    assert "group-components" not in profile
    # one job at a time inside a submission, as the slurm-jobstep executor runs them
    assert profile["resources"]["serial"] == 1 == profile["default-resources"]["serial"]
    assert profile["set-resource-scopes"]["serial"] == "local"


def snakemake(workdir: Path, *args: str, env: dict | None = None, timeout: int = 900):
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--configfile", str(workdir / "config.yaml"), *args,
    ]  # fmt: skip
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path, **(env or {})},
        timeout=timeout,
        check=False,
    )


def small_demo(workdir: Path) -> Path:
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["demo"].update(clips=21, seconds=1.5)
    cfg["frames"]["n_frames"] = 4
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    return workdir


def test_profile_is_valid_for_snakemake(tmp_path):
    """Every key of the profile is an option of snakemake 9 or of the slurm plugin."""
    proc = snakemake(
        small_demo(tmp_path), "--profile", str(PROFILE), "-n", "results/fusion/metrics.json"
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "demo_corpus" in proc.stdout + proc.stderr


# --------------------------------------------------------------------------- a real SLURM

# stage 1 of the text modality on the ASR corpus, and of the face modality: the manifest
# checkpoint, per shard an image group (frames, CLIP face embeddings) and a sound group
# (audio, pocketsphinx transcripts, MiniLM text embeddings), and two training jobs
SLURM_TARGETS = (
    "results/unimodal/text/demo_pers/metrics.json",
    "results/unimodal/face/demo_pers/metrics.json",
)


# the local node declares 4 CPUs whatever the machine has, so that 4 one-CPU sweep trials
# run side by side (slurm.conf's config_overrides); the jobs are tiny
NODE_CPUS = "4"


def _local_slurm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(LOCAL_SLURM), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MEPR_SLURM_CPUS": NODE_CPUS},
    )


@pytest.fixture(scope="module")
def slurm_cluster():
    if os.geteuid() != 0:
        pytest.skip("a local SLURM needs root (slurmd runs jobs as their users)")
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        pytest.skip("slurm-wlm is not installed and there is no apt-get to install it")
    was_running = "slurmctld: running" in _local_slurm("status").stdout
    proc = _local_slurm("start")
    if proc.returncode != 0:
        if "is not ours" in proc.stderr:
            pytest.skip(f"this machine has its own SLURM: {proc.stderr.strip()}")
        raise AssertionError(f"local-slurm.sh start failed:\n{proc.stdout}\n{proc.stderr}")
    env = dict(re.findall(r"export (\w+)=(\S+)", _local_slurm("env").stdout))
    yield env
    if not was_running:
        _local_slurm("stop")


@pytest.mark.e2e
def test_demo_stage1_through_slurm(slurm_cluster, tmp_path):
    work = small_demo(tmp_path)
    jobcomp = Path(slurm_cluster["SLURM_CONF"]).parent / "jobcomp.log"
    seen_before = jobcomp.read_text() if jobcomp.exists() else ""
    env = {**slurm_cluster, "MEPR_SLURM_GPUS": "0"}  # the local node has no GPU
    t0 = time.monotonic()
    proc = snakemake(
        work,
        "--profile", str(PROFILE),
        # no slurmdbd here, so no sacct: squeue keeps finished jobs for MinJobAge=900 s
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "1",
        "--slurm-keep-successful-logs",  # a flag: the targets after it stay targets
        *SLURM_TARGETS,
        env=env,
    )  # fmt: skip
    elapsed = time.monotonic() - t0
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    for target in SLURM_TARGETS:
        assert (work / target).exists(), target

    # every job went through sbatch: the run's SLURM jobs (job name = the run id) completed
    run_id = re.search(r"SLURM run ID: (\S+)", out).group(1)
    records = [
        dict(re.findall(r"(\w+)=(\S*)", line))
        for line in jobcomp.read_text()[len(seen_before) :].splitlines()
    ]
    ours = [r for r in records if r.get("Name") == run_id]
    assert ours and all(r["JobState"] == "COMPLETED" for r in ours), ours
    assert {r["WorkDir"] for r in ours} == {str(work)}
    # the per-rule requests reached sbatch: the manifest checkpoint's 4000 MB
    assert any("mem=4000M" in r["Tres"] for r in ours)
    logs = work / ".snakemake/slurm_logs"
    submitted = {p.name for p in logs.iterdir()}
    assert {"rule_demo_corpus", "rule_manifest", "rule_train_unimodal"} <= submitted, submitted
    # grouping: per shard, frames + its image embeddings in one submission, audio +
    # transcripts + text embedding in another; never two shards in one
    group_logs = [p for d in logs.glob("group_shard*") for p in d.rglob("*.log")]
    assert len(group_logs) == 4, group_logs  # 2 shards x (image, sound)
    for log in group_logs:
        text = log.read_text()
        rules = set(re.findall(r"^\s*rule (\w+):", text, re.M))
        shards = set(re.findall(r"wildcards: corpus=(\w+).*?k=(\d+)", text))
        assert len(shards) == 1, (log, shards)
        assert rules in ({"frames", "embed"}, {"audio", "transcripts", "embed"}), (log, rules)
    n_jobs = len(re.findall(r"^Finished jobid: ", out, re.M))
    print(f"\n{len(ours)} SLURM jobs for {n_jobs} snakemake jobs in {elapsed:.0f} s")

    # and the run left nothing to do, through the same profile
    again = snakemake(work, "--profile", str(PROFILE), "-n", *SLURM_TARGETS, env=env)
    assert "Nothing to be done" in again.stdout + again.stderr, again.stdout[-3000:]


def _jobcomp(cluster: dict) -> Path:
    return Path(cluster["SLURM_CONF"]).parent / "jobcomp.log"


def _records(jobcomp: Path, seen_before: str) -> list[dict]:
    return [
        dict(re.findall(r"(\w+)=(\S*)", line))
        for line in jobcomp.read_text()[len(seen_before) :].splitlines()
    ]


def _most_at_once(records: list[dict]) -> int:
    """The most jobs running at one moment (jobcomp times are whole seconds)."""
    from datetime import datetime

    spans = [
        (datetime.fromisoformat(r["StartTime"]), datetime.fromisoformat(r["EndTime"]))
        for r in records
    ]
    return max(sum(s <= t < e for s, e in spans) for t, _ in spans)


@pytest.mark.e2e
def test_a_sweep_runs_its_trials_as_parallel_slurm_jobs(slurm_cluster, tmp_path):
    """4 trials of a sweep, each its own sbatch job, all running at once; the table (a
    local rule) ranks them."""
    from test_sweep import SWEEP_RULES, fake_stage2, write_config

    cpus = subprocess.run(
        ["sinfo", "-h", "-N", "-o", "%c"],
        capture_output=True,
        text=True,
        env={**os.environ, **slurm_cluster},
        check=False,
    ).stdout.split()
    if not cpus or int(cpus[0]) < 4:
        pytest.skip(f"the running SLURM node has {cpus} CPUs, 4 trials need 4")
    fake_stage2(tmp_path)
    grid = {"lr": [0.001, 0.003], "fusion.hidden_dim": [16, 32]}
    write_config(tmp_path, sweeps={"four": {"grid": grid}})
    jobcomp = _jobcomp(slurm_cluster)
    seen_before = jobcomp.read_text() if jobcomp.exists() else ""
    proc = snakemake(
        tmp_path,
        "--profile", str(PROFILE),
        "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "1",
        "results/sweeps/four/table.md",
        *SWEEP_RULES,
        # the profile's 10 GB a stage-3 job would let only two trials onto this node
        "--set-resources", "fusion_trial:mem_mb=1500",
        env={**slurm_cluster, "MEPR_SLURM_GPUS": "0"},
    )  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    run_id = re.search(r"SLURM run ID: (\S+)", out).group(1)
    ours = [r for r in _records(jobcomp, seen_before) if r.get("Name") == run_id]
    assert len(ours) == 4 and all(r["JobState"] == "COMPLETED" for r in ours), ours
    assert _most_at_once(ours) == 4, ours
    with (tmp_path / "results/sweeps/four/table.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["ok"] * 4
    assert sorted(r["rank"] for r in rows) == ["1", "2", "3", "4"]
    print(f"\n4 trials, {_most_at_once(ours)} SLURM jobs at once")
