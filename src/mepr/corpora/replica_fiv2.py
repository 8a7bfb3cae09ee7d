"""A miniature of ChaLearn First Impressions v2 as it is distributed, for rehearsals and tests.

Written like the official release after unpacking: ``annotation_{training,validation,test}.pkl``
and ``transcription_*.pkl`` as Python 2 pickles (protocol 2, video names and trait keys as py2
``str``, i.e. SHORT_BINSTRING opcodes, scores as BINFLOAT: the opcodes of the public
``annotation_validation.pkl``, which Python 3 reads only with ``encoding='latin1'``), traits in
the official key order (extraversion, neuroticism, agreeableness, conscientiousness, interview,
openness), and videos under ``train-N/training80_NN/``, ``val-N/validation80_NN/``,
``test-N/test80_NN/``. ``pack=True`` leaves the videos inside their zips instead (zips inside
zips, as downloaded), which mepr must refuse with the archive named.
"""

from __future__ import annotations

import io
import pickle
import shutil
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from mepr.labels import TRAITS

# official split spelling: (annotation suffix, outer folder prefix, inner folder prefix)
SPLIT_LAYOUT = {
    "train": ("training", "train", "training80"),
    "dev": ("validation", "val", "validation80"),
    "test": ("test", "test", "test80"),
}
# key order of the official pickles; mepr's non_neuroticism is FIv2's "neuroticism" as is
PICKLE_KEYS = ("extraversion", "neuroticism", "agreeableness", "conscientiousness", "interview")
PICKLE_KEYS += ("openness",)
_TRAIT_OF_KEY = {"neuroticism": "non_neuroticism", "interview": None}


@dataclass(frozen=True)
class Fiv2Video:
    name: str  # official file name, e.g. "J4GQm9j0JZ0.003.mp4"
    split: str  # train | dev | test
    source: Path  # an mp4 to copy in
    traits: tuple[float, ...]  # mepr order (labels.TRAITS)
    text: str | None = None


class _Py2Pickler(pickle._Pickler):  # the pure-Python pickler lets str be saved as py2 str
    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj: str) -> None:
        data = obj.encode("latin-1")
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str


def py2_pickle(obj: object) -> bytes:
    """``obj`` pickled as Python 2's cPickle.dump(obj, f, 2) writes it."""
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def _folder(split: str, index: int) -> tuple[str, str]:
    """(outer, inner) folder of the index-th video of a split: 2 videos per inner folder,
    2 inner folders per outer, like train-1/training80_01 ... on a tiny scale."""
    _, outer, inner = SPLIT_LAYOUT[split]
    group = index // 2
    return f"{outer}-{group // 2 + 1}", f"{inner}_{group + 1:02d}"


def write_fiv2(root: Path, videos: list[Fiv2Video], pack: bool = False) -> Path:
    """Write the miniature under ``root`` and return it."""
    root.mkdir(parents=True, exist_ok=True)
    for split, (official, _, _) in SPLIT_LAYOUT.items():
        mine = [v for v in videos if v.split == split]
        if not mine:
            continue
        annotation = {
            key: {
                v.name: (
                    0.5 if _TRAIT_OF_KEY.get(key, key) is None else
                    float(v.traits[TRAITS.index(_TRAIT_OF_KEY.get(key, key))])
                )
                for v in mine
            }
            for key in PICKLE_KEYS
        }  # fmt: skip
        (root / f"annotation_{official}.pkl").write_bytes(py2_pickle(annotation))
        texts = {v.name: v.text for v in mine if v.text is not None}
        if texts:
            (root / f"transcription_{official}.pkl").write_bytes(py2_pickle(texts))
        for i, v in enumerate(mine):
            outer, inner = _folder(split, i)
            dest = root / outer / inner / v.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(v.source, dest)
    if pack:
        _pack(root)
    return root


def _pack(root: Path) -> None:
    """Turn every outer/inner folder into outer.zip holding inner.zip, as downloaded."""
    for outer in sorted(p for p in root.iterdir() if p.is_dir()):
        with zipfile.ZipFile(root / f"{outer.name}.zip", "w", zipfile.ZIP_STORED) as zo:
            for inner in sorted(p for p in outer.iterdir() if p.is_dir()):
                buf = io.BytesIO()
                with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zi:
                    for f in sorted(inner.iterdir()):
                        zi.write(f, f.name)
                zo.writestr(f"{inner.name}.zip", buf.getvalue())
        shutil.rmtree(outer)
