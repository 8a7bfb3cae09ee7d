"""Real-corpus adapters on small synthetic label files (MOSEI CSVs, FIv2 pickles)."""

from __future__ import annotations

import csv
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from mepr import shards
from mepr.corpora import CorpusError, build_manifest, source_files
from mepr.corpora.fiv2 import UnsafePickleError, safe_load
from mepr.labels import EMOTIONS, TRAITS


def _video(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))  # adapters do not decode
    return path


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# ------------------------------------------------------------------------------------ MOSEI


@pytest.fixture
def mosei_reference(tmp_path) -> Path:
    """The reference layout: {split}_full.csv + video/{split}/NAME.mp4 (columns shuffled)."""
    root = tmp_path / "CMU-MOSEI"
    header = ["video_name", "text", "Surprise", "Neutral", "Anger", "Disgust"]
    header += ["Fear", "Happiness", "Sadness"]
    splits = {
        "train": [
            ["-3g5yACwYnA_0", "i love it", 0, 0, 0, 0, 0, 2.0, 0],
            ["abc_1", "so gross", 0.33, 0, 0, 1.67, 0, 0, 0],
            ["abc_2", "nothing", 0, 1, 0, 0, 0, 0, 0],
            ["nolabel_3", "text", "", 0, 0, 0, 0, 0, 0],
            ["novideo_4", "text", 0, 0, 1, 0, 0, 0, 0],
        ],
        "val": [["dev_0", "", 0, 0, 0, 0, 3.0, 0, 0]],
        "test": [["test_0", "wow", 2.33, 0, 0, 0, 0, 0, 0]],
    }
    for split, rows in splits.items():
        _write_csv(root / f"{split}_full.csv", header, rows)
        for r in rows:
            if r[0] != "novideo_4":
                _video(root / "video" / split / f"{r[0]}.mp4")
    return root


def test_mosei_reference_layout(mosei_reference):
    rows, failures = build_manifest("mosei", {"adapter": "mosei", "root": str(mosei_reference)}, 4)
    by_id = {r["video_id"]: r for r in rows}
    assert sorted(by_id) == ["-3g5yACwYnA_0", "abc_1", "abc_2", "dev_0", "test_0"]
    assert dict(failures).keys() == {"nolabel_3", "novideo_4"}
    assert "surprise" in dict(failures)["nolabel_3"]
    assert "not found" in dict(failures)["novideo_4"]
    # vector order is labels.EMOTIONS whatever the column order
    assert by_id["abc_1"]["emotion"] == pytest.approx([0, 0, 1.67, 0, 0, 0, 0.33])
    assert by_id["-3g5yACwYnA_0"]["emotion"] == pytest.approx([0, 0, 0, 0, 2.0, 0, 0])
    assert by_id["abc_2"]["emotion"][0] == 1.0
    assert by_id["dev_0"]["split"] == "dev" and by_id["test_0"]["split"] == "test"
    assert by_id["dev_0"]["transcript"] is None and by_id["test_0"]["transcript"] == "wow"
    for r in rows:
        assert r["task"] == "emotion" and r["traits"] is None and r["corpus"] == "mosei"
        assert r["shard"] == shards.shard_of(r["video_id"], 4)
        assert r["size_bytes"] == os.path.getsize(r["path"]) > 0
    shards.write_table(rows, shards.MANIFEST, mosei_reference / "m.parquet")  # schema matches
    assert len(source_files({"adapter": "mosei", "root": str(mosei_reference)})) == 3


def test_mosei_plain_csv_derives_neutral(tmp_path):
    root = tmp_path / "mosei"
    six = [e for e in EMOTIONS if e != "neutral"]
    _write_csv(
        root / "meta" / "labels.csv",
        ["video_id", "split", *six, "transcript"],
        [
            ["a", "train", 0, 0, 0, 0, 0, 0, "hello"],
            ["b", "validation", 0, 0, 0, 1.5, 0, 0, ""],
            ["c", "test", 0, 0, 0, 0, 0, 0.5, "x"],
            ["d", "bogus", 0, 0, 0, 0, 0, 0.5, "x"],
        ],
    )
    for v in "abc":
        _video(root / "clips" / "sub" / f"{v}.mkv")
    cfg = {"adapter": "mosei", "root": str(root), "labels": "meta/labels.csv", "videos": "clips"}
    rows, failures = build_manifest("m", cfg, 2)
    by_id = {r["video_id"]: r for r in rows}
    assert by_id["a"]["emotion"] == [1.0, 0, 0, 0, 0, 0, 0]
    assert by_id["b"]["emotion"][0] == 0.0 and by_id["b"]["split"] == "dev"
    assert by_id["a"]["path"].endswith("a.mkv") and by_id["a"]["transcript"] == "hello"
    assert failures == [("d", "unknown split 'bogus'")]
    assert source_files(cfg) == [str(root / "meta" / "labels.csv")]


def test_missing_root_or_labels_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="root folder .* does not exist"):
        build_manifest("m", {"adapter": "mosei", "root": str(tmp_path / "nope")}, 2)
    with pytest.raises(CorpusError, match="no label file"):
        build_manifest("m", {"adapter": "mosei", "root": str(tmp_path)}, 2)
    with pytest.raises(CorpusError, match="label file .* does not exist"):
        build_manifest("m", {"adapter": "mosei", "root": str(tmp_path), "labels": "x.csv"}, 2)
    with pytest.raises(CorpusError, match="unknown adapter"):
        build_manifest("m", {"adapter": "voxceleb", "root": str(tmp_path)}, 2)
    _write_csv(tmp_path / "train_full.csv", ["video_name", "Anger"], [["a", 1]])
    with pytest.raises(CorpusError, match="no column for disgust"):
        build_manifest("m", {"adapter": "mosei", "root": str(tmp_path)}, 2)
    # Snakemake is told which file is missing instead of crashing on the DAG
    assert source_files({"adapter": "fiv2", "root": str(tmp_path / "nope")}) == [
        str(tmp_path / "nope" / "annotation_training.pkl")
    ]


# ------------------------------------------------------------------------------------- FIv2

FIV2_VIDEOS = {
    "train": ["J4GQm9j0JZ0.003.mp4", "zzz.001.mp4", "gone.000.mp4"],
    "dev": ["val_a.002.mp4"],
    "test": ["tst_b.005.mp4"],
}


def _fiv2_pickles(root: Path, protocol: int) -> None:
    official = {"train": "training", "dev": "validation", "test": "test"}
    rng = np.random.default_rng(0)
    for split, names in FIV2_VIDEOS.items():
        ann = {
            trait: {n: np.float64(rng.uniform()) for n in names}
            for trait in ("extraversion", "neuroticism", "agreeableness", "conscientiousness")
        }
        ann["interview"] = {n: 0.5 for n in names}
        ann["openness"] = {n: float(i) / 10 for i, n in enumerate(names)}
        with open(root / f"annotation_{official[split]}.pkl", "wb") as f:
            pickle.dump(ann, f, protocol=protocol)
        with open(root / f"transcription_{official[split]}.pkl", "wb") as f:
            pickle.dump({n: f"words of {n}" for n in names}, f, protocol=protocol)
        for i, n in enumerate(names):
            if n != "gone.000.mp4":  # the official layout: train-1/..., nested folders
                _video(root / f"{split}-{i % 2 + 1}" / "inner" / n)


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_fiv2_official_pickles(tmp_path, protocol):
    root = tmp_path / "FirstImpressionsV2"
    root.mkdir()
    _fiv2_pickles(root, protocol)
    rows, failures = build_manifest("fiv2", {"adapter": "fiv2", "root": str(root)}, 64)
    by_id = {r["video_id"]: r for r in rows}
    assert sorted(by_id) == ["J4GQm9j0JZ0.003", "tst_b.005", "val_a.002", "zzz.001"]
    assert failures and failures[0][0] == "gone.000" and "not found" in failures[0][1]
    assert by_id["val_a.002"]["split"] == "dev"
    assert by_id["tst_b.005"]["split"] == "test"
    with open(root / "annotation_training.pkl", "rb") as f:
        ann = safe_load(f)
    key = "J4GQm9j0JZ0.003.mp4"
    expected = [ann[t][key] for t in ("openness", "conscientiousness", "extraversion")]
    expected += [ann["agreeableness"][key], ann["neuroticism"][key]]  # neuroticism as is
    r = by_id["J4GQm9j0JZ0.003"]
    assert r["traits"] == pytest.approx(expected)
    assert r["task"] == "personality" and r["emotion"] is None
    assert r["transcript"] == "words of J4GQm9j0JZ0.003.mp4"
    assert r["shard"] == shards.shard_of("J4GQm9j0JZ0.003", 64)
    assert all(0 <= v <= 1 for row in rows for v in row["traits"])
    assert len(source_files({"adapter": "fiv2", "root": str(root)})) == 6


class _Evil:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_fiv2_refuses_malicious_pickle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "fiv2"
    root.mkdir()
    _fiv2_pickles(root, 2)
    payload = {t: {"a.mp4": 0.5} for t in TRAITS[:4]}
    payload["neuroticism"] = {"a.mp4": _Evil()}
    (root / "annotation_training.pkl").write_bytes(pickle.dumps(payload))
    with pytest.raises(UnsafePickleError, match="posix.system|os.system|nt.system"):
        build_manifest("fiv2", {"adapter": "fiv2", "root": str(root)}, 2)
    assert not (tmp_path / "pwned").exists()
    # other gadgets: eval via builtins, a class instance, numpy's file loader
    for obj in (eval, Path("x"), np.load):
        blob = pickle.dumps({"openness": {"a.mp4": obj}})
        with pytest.raises(UnsafePickleError):
            safe_load(__import__("io").BytesIO(blob))


def test_fiv2_reference_csv_layout(tmp_path):
    root = tmp_path / "fiv2"
    header = ["video_name", "openness", "conscientiousness", "extraversion"]
    header += ["agreeableness", "non-neuroticism", "text"]
    _write_csv(root / "train_full.csv", header, [["x.001.mp4", 0.1, 0.2, 0.3, 0.4, 0.5, "hi"]])
    _write_csv(root / "dev_full.csv", header, [["y.002", 0.5, 0.5, 0.5, 0.5, 0.9, ""]])
    _write_csv(root / "test_full.csv", header, [["z.003", 0.5, 0.5, 0.5, 0.5, 0.1, ""]])
    _video(root / "video" / "train" / "x.001.mp4")
    _video(root / "video" / "dev" / "y.002.mp4")
    _video(root / "video" / "test" / "z.003.mp4")
    rows, failures = build_manifest("fiv2", {"adapter": "fiv2", "root": str(root)}, 2)
    assert failures == []
    by_id = {r["video_id"]: r for r in rows}
    assert by_id["x.001"]["traits"] == pytest.approx([0.1, 0.2, 0.3, 0.4, 0.5])
    assert by_id["y.002"]["traits"][4] == pytest.approx(0.9)
    assert by_id["x.001"]["transcript"] == "hi" and by_id["y.002"]["split"] == "dev"


def test_shard_of_is_stable():
    # pinned values: a change would reshuffle every corpus' shards
    assert shards.shard_of("demo_emo_0000", 2) == 1
    assert shards.shard_of("J4GQm9j0JZ0.003", 64) == 23
    assert shards.shard_of("-3g5yACwYnA_0", 64) == 35
    ids = [f"v{i}" for i in range(200)]
    assert [shards.shard_of(v, 8) for v in ids] == [shards.shard_of(v, 8) for v in ids]
    counts = np.bincount([shards.shard_of(v, 4) for v in ids], minlength=4)
    assert counts.min() > 20  # roughly balanced
