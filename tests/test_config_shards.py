"""Config validation messages and the shard file contract."""

from __future__ import annotations

import copy
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from mepr import shards
from mepr.config import (
    ConfigError,
    job_section,
    load_config,
    load_workflow_config,
    parse_params,
    validate_config,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def base():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_default_config_is_valid_and_gets_defaults(base):
    cfg = validate_config(base)
    assert cfg["frames"]["n_frames"] >= 1
    assert cfg["corpora"]["demo_emo"]["task"] == "emotion"
    assert cfg["encoders"]["text"]["pooling"] == "token"
    paper = load_config(REPO / "configs" / "paper.yaml")
    assert paper["corpora"]["mosei"]["task"] == "emotion"
    assert paper["encoders"]["face"]["model"] == "ViT-B-32"


def test_workflow_config_is_what_snakemake_builds_from_the_files(tmp_path):
    """`mepr fetch-models --config` reads the config a `--configfile` run sees: the default
    deep-merged with each file, and a file's `corpora` replacing the default's (common.smk)."""
    paper = load_workflow_config([REPO / "configs" / "paper.yaml"])
    assert sorted(paper["corpora"]) == ["fiv2", "mosei"]  # no demo corpus beside them
    assert load_workflow_config([])["corpora"].keys() == {"demo_emo", "demo_pers"}
    tweak = tmp_path / "tweak.yaml"
    tweak.write_text("frames:\n  n_frames: 3\n")
    both = load_workflow_config([REPO / "configs" / "paper.yaml", tweak])
    assert both["frames"]["n_frames"] == 3
    assert both["frames"]["jpeg_quality"] == paper["frames"]["jpeg_quality"] == 95  # merged
    assert sorted(both["corpora"]) == ["fiv2", "mosei"]


def test_a_modality_job_depends_only_on_its_own_train_settings():
    """Stage-1/2 rules pass `job_section(train, modality)`: editing one modality's sizes must
    leave the other modalities' jobs (their params, so their re-runs) untouched, and the job
    must read the same settings from the narrowed section as from the whole one."""
    train = load_workflow_config([REPO / "configs" / "paper.yaml"])["train"]
    edited = copy.deepcopy(train)
    edited["unimodal"]["text"]["emotion"]["hidden_dim"] = 96
    edited["cross"]["text"]["layers"] = 4
    edited["fusion"]["hidden_dim"] = 8
    for modality in ("face", "body", "scene", "audio"):
        assert job_section(edited, modality) == job_section(train, modality)
    assert job_section(edited, "text") != job_section(train, "text")
    assert job_section(edited) != job_section(train)  # fusion sees everything
    whole, narrow = parse_params(train), parse_params(job_section(train, "scene"))
    for task in ("emotion", "personality"):
        assert narrow.encoder_for("scene", task) == whole.encoder_for("scene", task)
        assert narrow.unimodal.given("scene", task) == whole.unimodal.given("scene", task)
    assert narrow.cross.scene == whole.cross.scene
    assert "fusion" not in job_section(train, "scene")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: c["frames"].update(n_framez=3), "unknown key 'frames.n_framez'"),
        (lambda c: c["frames"].update(n_frames=0), "bad value for 'frames.n_frames'"),
        (lambda c: c["encoders"].pop("audio"), "missing required key 'encoders.audio'"),
        (
            lambda c: c["corpora"]["demo_emo"].update(adapter="nope"),
            "bad value for 'corpora.demo_emo.adapter'",
        ),
        (
            lambda c: c["corpora"].pop("demo_pers"),
            "needs at least one emotion corpus and one personality",
        ),
        (lambda c: c.update(sed=1), "unknown key 'sed'"),
    ],
)
def test_config_errors_name_the_bad_key(base, edit, message):
    cfg = copy.deepcopy(base)
    edit(cfg)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        validate_config(cfg)


def _rows(n=3):
    return [{"video_id": f"v{i}", "stage": "frames", "reason": "x"} for i in range(n)]


def test_write_read_roundtrip_with_metadata(tmp_path):
    path = shards.write_table(
        _rows(), shards.FAILURES, tmp_path / "a" / "f.parquet", params={"p": 1}
    )
    assert shards.read_table(path, shards.FAILURES).num_rows == 3
    assert shards.read_params(path) == {"p": 1}
    assert [p.name for p in path.parent.iterdir()] == ["f.parquet"]  # no temp files left


def test_reader_refuses_other_schemas_and_versions(tmp_path):
    path = shards.write_table(_rows(), shards.FAILURES, tmp_path / "f.parquet")
    with pytest.raises(shards.ShardError, match="expected a 'frames' shard, found 'failures'"):
        shards.read_table(path, shards.FRAMES)
    table = pq.read_table(path)
    meta = dict(table.schema.metadata)
    meta[b"mepr.schema_version"] = b"99"
    pq.write_table(table.replace_schema_metadata(meta), path)
    with pytest.raises(shards.ShardError, match="version 99"):
        shards.read_table(path, shards.FAILURES)


def test_shard_membership_is_stable_and_fingerprints_are_local(tmp_path):
    assert shards.shard_of("video_42", 8) == shards.shard_of("video_42", 8)
    counts = [0] * 4
    for i in range(400):
        counts[shards.shard_of(f"v{i}", 4)] += 1
    assert min(counts) > 60  # roughly balanced

    def manifest(ids, name):
        rows = [
            {"video_id": v, "corpus": "c", "path": f"/x/{v}.mp4", "split": "train", "task": "emotion",
             "size_bytes": 10, "shard": shards.shard_of(v, 4), "emotion": None, "traits": None, "transcript": None}
            for v in ids
        ]  # fmt: skip
        return shards.write_table(rows, shards.MANIFEST, tmp_path / name)

    ids = [f"v{i}" for i in range(20)]
    before = manifest(ids, "a.parquet")
    after = manifest(ids + ["new_video"], "b.parquet")
    changed = [
        k
        for k in range(4)
        if shards.shard_fingerprint(before, k, 4) != shards.shard_fingerprint(after, k, 4)
    ]
    assert changed == [shards.shard_of("new_video", 4)]


def test_user_named_collections_replace_the_defaults():
    from mepr.config import apply_user_named

    default = yaml.safe_load((REPO / "config.yaml").read_text())
    paper = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
    # what Snakemake hands the workflow: the default config deep-merged with the user's
    merged = copy.deepcopy(default)
    for key, value in paper.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    assert set(merged["corpora"]) == {"demo_emo", "demo_pers", "mosei", "fiv2"}
    cfg = validate_config(apply_user_named(merged, paper))
    assert set(cfg["corpora"]) == {"mosei", "fiv2"}
    assert cfg["frames"]["n_frames"] == 30 and cfg["demo"] == validate_config(default)["demo"]
    # a user's file that names no corpora keeps the default's; predict folders likewise
    assert set(apply_user_named(merged, {"seed": 1})["corpora"]) == set(merged["corpora"])
    mine = apply_user_named(default, {"predict": {"videos": {"mine": "clips"}}})
    assert mine["predict"]["videos"] == {"mine": "clips"} and mine["predict"]["chunk"] == 32
