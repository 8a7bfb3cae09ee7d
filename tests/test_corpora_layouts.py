"""Official corpus layouts that are incomplete must stop the manifest with one clear message."""

from __future__ import annotations

import pickle
import pickletools
import shutil
from pathlib import Path

import pytest

from mepr.corpora import CorpusError, build_manifest
from mepr.corpora.replica_fiv2 import Fiv2Video, py2_pickle, write_fiv2


def _stub(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))  # adapters do not decode
    return path


@pytest.fixture
def fiv2(tmp_path) -> Path:
    src = _stub(tmp_path / "src.mp4")
    videos = [
        Fiv2Video(f"v{split}{i}.00{i}.mp4", split, src, (0.1 * i, 0.2, 0.3, 0.4, 0.5), f"t {i}")
        for split in ("train", "dev", "test")
        for i in range(5)
    ]
    return write_fiv2(tmp_path / "FirstImpressionsV2", videos)


def _build(root: Path):
    return build_manifest("fiv2", {"adapter": "fiv2", "root": str(root)}, 2)


def test_replica_pickles_are_python2_pickles(fiv2):
    blob = (fiv2 / "annotation_validation.pkl").read_bytes()
    ops = {op.name for op, _, _ in pickletools.genops(blob)}
    assert "SHORT_BINSTRING" in ops and "BINUNICODE" not in ops
    data = pickle.loads(blob, encoding="latin1")
    assert list(data)[:2] == ["extraversion", "neuroticism"] and "interview" in data
    assert (fiv2 / "train-1" / "training80_01" / "vtrain0.000.mp4").is_file()
    assert (fiv2 / "val-1" / "validation80_01").is_dir()
    assert (fiv2 / "test-2" / "test80_03" / "vtest4.004.mp4").is_file()


def test_replica_reads_complete(fiv2, capsys):
    rows, failures = _build(fiv2)
    assert failures == [] and len(rows) == 15
    by_id = {r["video_id"]: r for r in rows}
    assert by_id["vdev3.003"]["split"] == "dev"
    assert by_id["vdev3.003"]["traits"] == pytest.approx([0.3, 0.2, 0.3, 0.4, 0.5])
    assert by_id["vtest2.002"]["transcript"] == "t 2"


def test_transcriptions_below_root_annotations_are_found(fiv2):
    # annotation pickles at the root, transcription pickles in a sub-folder (as unzipped)
    sub = fiv2 / "transcriptions"
    sub.mkdir()
    for p in fiv2.glob("transcription_*.pkl"):
        shutil.move(p, sub / p.name)
    rows, _ = _build(fiv2)
    assert all(r["transcript"] for r in rows), "gold transcripts silently replaced by ASR"


def test_missing_split_stops_with_its_file(fiv2):
    (fiv2 / "annotation_test.pkl").unlink()
    with pytest.raises(CorpusError, match=r"missing annotation_test\.pkl \(test split\)"):
        _build(fiv2)


def test_one_split_without_transcriptions_stops(fiv2):
    (fiv2 / "transcription_validation.pkl").unlink()
    with pytest.raises(CorpusError, match=r"transcription_validation\.pkl \(dev split\)"):
        _build(fiv2)


def test_no_transcriptions_at_all_is_said(fiv2, capsys):
    for p in fiv2.glob("transcription_*.pkl"):
        p.unlink()
    rows, _ = _build(fiv2)
    assert len(rows) == 15 and all(r["transcript"] is None for r in rows)
    assert "will come from ASR" in capsys.readouterr().err


def test_annotation_still_zipped_names_the_zip(fiv2):
    import zipfile

    ann = fiv2 / "annotation_test.pkl"
    with zipfile.ZipFile(fiv2 / "test-annotation-e.zip", "w") as z:
        z.write(ann, ann.name)
    ann.unlink()
    with pytest.raises(CorpusError, match=r"annotation_test\.pkl.*test-annotation-e\.zip"):
        _build(fiv2)


def test_videos_inside_their_zips_name_the_zip(tmp_path):
    src = _stub(tmp_path / "src.mp4")
    videos = [
        Fiv2Video(f"v{s}{i}.000.mp4", s, src, (0.5,) * 5) for s in ("train", "dev", "test")
        for i in range(3)
    ]  # fmt: skip
    root = write_fiv2(tmp_path / "fiv2", videos, pack=True)
    assert (root / "train-1.zip").is_file() and not (root / "train-1").exists()
    with pytest.raises(CorpusError, match=r"train-1\.zip.*unzip each of them, then the zips"):
        _build(root)


def test_duplicate_pickles_are_ambiguous(fiv2):
    for name in ("a", "b"):
        (fiv2 / "labels" / name).mkdir(parents=True)
        shutil.copy(fiv2 / "annotation_test.pkl", fiv2 / "labels" / name)
    (fiv2 / "annotation_test.pkl").unlink()
    with pytest.raises(CorpusError, match=r"annotation_test\.pkl found 2 times"):
        _build(fiv2)


def test_empty_split_stops(tmp_path):
    src = _stub(tmp_path / "src.mp4")
    videos = [Fiv2Video(f"v{i}.000.mp4", "train", src, (0.5,) * 5) for i in range(3)]
    videos += [Fiv2Video("d.000.mp4", "dev", src, (0.5,) * 5)]
    videos += [Fiv2Video("t.000.mp4", "test", src, (0.5,) * 5)]
    root = write_fiv2(tmp_path / "fiv2", videos)
    for p in root.rglob("t.000.mp4"):
        p.unlink()
    with pytest.raises(CorpusError, match=r"no usable video in split\(s\) test"):
        _build(root)


def test_py2_pickle_long_strings():
    text = "x" * 300
    assert pickle.loads(py2_pickle({"a": text}), encoding="latin1") == {"a": text}


def test_mosei_videos_still_zipped_name_the_zip(media, tmp_path):
    import zipfile

    from mepr.corpora.replica_mosei import MoseiSegment, MoseiVideo, fold_ids, write_mosei_sdk

    seg = MoseiSegment(media["good"], {"happiness": 1.0}, "hello there")
    videos = [MoseiVideo(fold_ids(s, 1)[0], [seg, seg]) for s in ("train", "dev", "test")]
    root = tmp_path / "CMU-MOSEI"
    write_mosei_sdk(root, videos)
    with zipfile.ZipFile(root / "CMU_MOSEI.zip", "w") as z:  # the raw release, not unpacked
        for f in sorted((root / "Raw").rglob("*")):
            z.write(f, f.relative_to(root))
    shutil.rmtree(root / "Raw")
    with pytest.raises(CorpusError, match=r"CMU_MOSEI\.zip; unzip them in place"):
        build_manifest("mosei", {"adapter": "mosei", "root": str(root)}, 2)
