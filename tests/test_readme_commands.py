"""Every snakemake command the README shows works as written: parsed from the README's own
text and dry-run (-n) in a checkout-like directory that holds the paper rehearsal's corpora."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
CONFIG_EXT = (".yaml", ".yml", ".json")


def readme_commands() -> list[tuple[dict[str, str], list[str]]]:
    """(environment assignments, argv) of each snakemake command in the README's bash blocks."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            env = {}
            while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", argv[0]):
                key, value = argv.pop(0).split("=", 1)
                env[key] = value
            if argv and argv[0] == "snakemake":
                out.append((env, argv))
    return out


def comment_commands() -> list[tuple[dict[str, str], list[str]]]:
    """snakemake commands quoted in the comments of the config files and profiles."""
    files = [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))]
    files += sorted((REPO / "workflow" / "profiles").glob("*/config.yaml"))
    out = []
    for path in files:
        for line in path.read_text().splitlines():
            m = re.match(r"\s*#\s+(snakemake .*)", line)
            if m:
                out.append(({}, shlex.split(m.group(1).replace("...", ""))))
    return out


COMMANDS = readme_commands()
IDS = [" ".join(argv) for _, argv in COMMANDS]
QUOTED = COMMANDS + comment_commands()


def test_the_readme_shows_the_paper_and_demo_commands():
    shown = [" ".join(a) for _, a in COMMANDS]
    assert any(
        "configs/paper.yaml" in c and "--profile workflow/profiles/slurm" in c for c in shown
    )
    assert any("configs/paper.yaml" in c and "--use-conda" in c for c in shown)
    assert any("fetch_models" in c for c in shown)
    assert any(c.startswith("snakemake --cores 2 results/fusion/metrics.json") for c in shown)


@pytest.mark.parametrize(("env", "argv"), QUOTED, ids=[" ".join(a) for _, a in QUOTED])
def test_configfile_never_swallows_a_target(env, argv):
    # --configfile takes every following word up to the next option: all must be configs
    for i, word in enumerate(argv):
        if word == "--configfile":
            j = i + 1
            while j < len(argv) and not argv[j].startswith("-"):
                assert argv[j].endswith(CONFIG_EXT), f"{argv[j]!r} would be read as a config"
                j += 1


def _runnable(argv: list[str]) -> list[str] | None:
    """The command as a dry run, or None when a dry run cannot mean anything here."""
    if "--report" in argv or "--conda-create-envs-only" in argv:
        return None  # needs a finished run / conda itself
    argv = list(argv[1:])
    if shutil.which("conda") is None:  # conda is not installed here: plan as without it
        argv = [a for a in argv if a not in ("--use-conda",)]
        if "--sdm" in argv:
            i = argv.index("--sdm")
            del argv[i : i + 2]
    return [sys.executable, "-m", "snakemake", *argv, "-n"]


@pytest.mark.parametrize(("env", "argv"), COMMANDS, ids=IDS)
def test_readme_command_dry_runs(rehearsal_checkout, env, argv):
    cmd = _runnable(argv)
    if cmd is None:
        pytest.skip("not a command a dry run can check")
    # PATH without the venv: the workflow must find its interpreter by itself
    path = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if p != str(Path(sys.executable).parent)
    )
    proc = subprocess.run(
        cmd,
        cwd=rehearsal_checkout,
        env={**os.environ, **env, "PATH": path},
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "Traceback" not in out, out[-4000:]
    if "configs/paper.yaml" in argv:
        assert "demo_emo" not in out and "demo_pers" not in out and "demo_corpus" not in out


def test_jobs_find_mepr_without_the_venv_on_path(tmp_path):
    """`.venv/bin/snakemake ...` from a shell whose PATH lacks .venv/bin: jobs still run mepr."""
    for name in ("Snakefile", "config.yaml", "workflow", "envs"):
        (tmp_path / name).symlink_to(REPO / name)
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    proc = subprocess.run(
        [str(Path(venv_bin) / "snakemake"), "--cores", "1", "results/encoders/tiny-clip"],
        cwd=tmp_path,
        env={**os.environ, "PATH": path},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert (tmp_path / "results/encoders/tiny-clip/open_clip_config.json").is_file()
