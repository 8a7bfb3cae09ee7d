"""Training data from the stage files: manifests, embedding shards, stage-2 features.

Everything is loaded into memory as dense tensors (the demo and paper corpora fit): a
sequence tensor (N, T, D) padded with zeros, a step mask (N, T) and per-row labels.  A video
absent from a modality's shards, or with no valid step, gets an all-False mask.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from mepr import shards
from mepr.labels import EMOTIONS, SPLITS, TRAITS

# Stage-2 output: one row per video of every corpus (train-cross -> train-fusion).
CROSS_FEATURES = shards.ShardSchema(
    "cross_features",
    1,
    pa.schema(
        [
            ("video_id", pa.string()),
            ("corpus", pa.string()),
            ("split", pa.string()),
            ("present", pa.bool_()),  # False: no valid step in this modality (features are 0)
            ("emotion_features", pa.list_(pa.float32())),  # H, masked time mean
            ("personality_features", pa.list_(pa.float32())),  # H
            ("emotion_logits", pa.list_(pa.float32())),  # 7, labels.EMOTIONS order
            ("personality_scores", pa.list_(pa.float32())),  # 5 in [0, 1], labels.TRAITS order
        ]
    ),
)

# Stage-3 output: the fused predictions for every video of every corpus.
FUSION_PREDICTIONS = shards.ShardSchema(
    "fusion_predictions",
    1,
    pa.schema(
        [
            ("video_id", pa.string()),
            ("corpus", pa.string()),
            ("split", pa.string()),
            ("task", pa.string()),
            ("emotion_probs", pa.list_(pa.float32())),  # 7, softmax, labels.EMOTIONS order
            ("personality_scores", pa.list_(pa.float32())),  # 5 in [0, 1]
            ("n_modalities", pa.int32()),  # modalities present for this video
        ]
    ),
)


@dataclass
class Labels:
    """Per-row labels of a set of manifest rows (in manifest order)."""

    video_id: list[str]
    corpus: list[str]
    split: np.ndarray  # (N,) str
    task: list[str]
    emotion: np.ndarray  # (N, 7) float32, 0 where absent
    has_emotion: np.ndarray  # (N,) bool
    traits: np.ndarray  # (N, 5) float32, 0 where absent
    has_traits: np.ndarray  # (N,) bool

    def __len__(self) -> int:
        return len(self.video_id)

    def index(self, split: str | None = None) -> np.ndarray:
        return np.arange(len(self)) if split is None else np.flatnonzero(self.split == split)


def load_labels(manifests: list[str | Path]) -> Labels:
    """Concatenate manifests; video ids must be unique across them."""
    table = shards.read_many(list(manifests), shards.MANIFEST)
    ids = table.column("video_id").to_pylist()
    if len(set(ids)) != len(ids):
        dup = sorted({v for v in ids if ids.count(v) > 1})[:3]
        raise ValueError(f"video ids repeat across manifests: {dup}")
    n = len(ids)
    emotion = np.zeros((n, len(EMOTIONS)), np.float32)
    traits = np.zeros((n, len(TRAITS)), np.float32)
    has_e = np.zeros(n, bool)
    has_t = np.zeros(n, bool)
    for i, (e, t) in enumerate(
        zip(table.column("emotion").to_pylist(), table.column("traits").to_pylist(), strict=True)
    ):
        if e is not None and len(e) == len(EMOTIONS) and all(np.isfinite(e)):
            emotion[i], has_e[i] = e, True
        if t is not None and len(t) == len(TRAITS) and all(np.isfinite(t)):
            traits[i], has_t[i] = t, True
    split = np.array(table.column("split").to_pylist(), dtype=object)
    bad = sorted(set(split) - set(SPLITS))
    if bad:
        raise ValueError(f"unknown split(s) {bad} in manifests")
    return Labels(
        video_id=ids,
        corpus=table.column("corpus").to_pylist(),
        split=split,
        task=table.column("task").to_pylist(),
        emotion=emotion,
        has_emotion=has_e,
        traits=traits,
        has_traits=has_t,
    )


def _uniform(n: int, k: int) -> np.ndarray:
    return np.linspace(0, n - 1, num=k).round().astype(np.int64)


@dataclass
class Sequences:
    x: np.ndarray  # (N, T, D) float32
    mask: np.ndarray  # (N, T) bool
    dim: int

    @property
    def present(self) -> np.ndarray:
        return self.mask.any(axis=1)


def pack_sequences(
    sequences: Iterable[tuple[int, np.ndarray, np.ndarray]],
    n_rows: int,
    max_steps: int,
    declared_dims: Iterable[int] = (),
) -> Sequences:
    """Dense padded sequences from per-video step arrays: the one place that subsamples and pads.

    `sequences` holds (row, values (n, dim), valid (n,)) with n >= 1; a later entry for the
    same row overwrites an earlier one.  Longer sequences are subsampled uniformly to
    `max_steps`; padding, masked steps and non-finite values become 0.  `declared_dims` (the
    shards' ``dim`` column) gives the width when no sequence does (else 1).
    """
    items = list(sequences)
    dims = {int(values.shape[1]) for _, values, _ in items}
    if len(dims) > 1:
        raise ValueError(f"embedding shards mix dimensions {sorted(dims)}")
    dim = dims.pop() if dims else (int(max(list(declared_dims) or [1])) or 1)
    t_max = max([min(len(values), max_steps) for _, values, _ in items], default=1)
    x = np.zeros((n_rows, t_max, dim), np.float32)
    mask = np.zeros((n_rows, t_max), bool)
    if items:
        for i, values, valid in items:
            n = len(values)
            keep = _uniform(n, max_steps) if n > max_steps else np.arange(n)
            x[i, : len(keep)] = values[keep]
            mask[i, : len(keep)] = valid[keep]
        x[~mask] = 0.0
        x[~np.isfinite(x)] = 0.0
    return Sequences(x=x, mask=mask, dim=dim)


def load_sequences(
    shard_paths: list[str | Path], video_ids: list[str], max_steps: int
) -> Sequences:
    """Embedding sequences for `video_ids` (in that order), padded/subsampled to <= max_steps."""
    table = shards.read_many(list(shard_paths), shards.EMBEDDINGS)
    wanted = {v: i for i, v in enumerate(video_ids)}
    n_rows = table.num_rows
    values = table.column("values").combine_chunks() if n_rows else None
    steps = table.column("step_mask").combine_chunks() if n_rows else None
    # offsets: rows -> steps -> floats (robust to null rows and sliced arrays)
    outer = values.offsets.to_numpy() if n_rows else np.zeros(1, np.int64)
    inner = values.values.offsets.to_numpy() if n_rows else np.zeros(1, np.int64)
    m_off = steps.offsets.to_numpy() if n_rows else np.zeros(1, np.int64)
    used = []
    for r, v in enumerate(table.column("video_id").to_pylist()):
        n = int(outer[r + 1] - outer[r])
        if v not in wanted or n == 0 or not values[r].is_valid:
            continue
        width = int(inner[outer[r + 1]] - inner[outer[r]])
        if width % n:
            raise ValueError(f"embeddings of '{v}' are ragged")
        used.append((r, wanted[v], n, width // n))
    sequences = []
    if used:
        floats = values.values.values.to_numpy(zero_copy_only=False)
        flags = steps.values.to_numpy(zero_copy_only=False)
        for r, i, n, dim in used:
            f0 = inner[outer[r]]
            seq = floats[f0 : f0 + n * dim].reshape(n, dim)
            if steps[r].is_valid and m_off[r + 1] - m_off[r] == n:
                valid = flags[m_off[r] : m_off[r + 1]].astype(bool)
            else:
                valid = np.ones(n, bool)
            sequences.append((i, seq, valid))
    return pack_sequences(sequences, len(video_ids), max_steps, table.column("dim").to_pylist())


@dataclass
class CrossFeatures:
    """One modality's stage-2 outputs aligned to a list of video ids."""

    modality: str
    features: np.ndarray  # (N, 2H): emotion ‖ personality features
    logits: np.ndarray  # (N, 7)
    scores: np.ndarray  # (N, 5)
    present: np.ndarray  # (N,) bool


def load_cross_features(path: str | Path, modality: str, video_ids: list[str]) -> CrossFeatures:
    table = shards.read_table(path, CROSS_FEATURES)
    rows = {v: i for i, v in enumerate(table.column("video_id").to_pylist())}
    ef = table.column("emotion_features").to_pylist()
    pf = table.column("personality_features").to_pylist()
    lg = table.column("emotion_logits").to_pylist()
    sc = table.column("personality_scores").to_pylist()
    pr = table.column("present").to_pylist()
    width = len(ef[0]) + len(pf[0]) if ef else 2
    n = len(video_ids)
    feats = np.zeros((n, width), np.float32)
    logits = np.zeros((n, len(EMOTIONS)), np.float32)
    scores = np.full((n, len(TRAITS)), 0.5, np.float32)
    present = np.zeros(n, bool)
    for i, v in enumerate(video_ids):
        r = rows.get(v)
        if r is None:
            continue
        feats[i] = np.concatenate([ef[r], pf[r]])
        logits[i], scores[i], present[i] = lg[r], sc[r], bool(pr[r])
    return CrossFeatures(modality, feats, logits, scores, present)
