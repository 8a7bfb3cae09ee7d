"""A sweep's grid of `train.*` overrides: checked against the schema when the workflow is
planned, expanded into trials (exhaustive: the product; greedy: one key per round), and each
trial's id, train section and seed.

A trial is named by what it changes: its overrides are the grid values that differ from the
config's own `train` values (so the trial that changes nothing is `base-...`), and its id is
a readable slug of them plus a digest. Two rounds of a greedy search that try the same
settings therefore name the same trial, which runs once; and editing one grid value renames
only the trials that use it, so only they (and the table) re-run.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mepr.config import ConfigError, SweepParams, subschema
from mepr.config.schema import validate

TRAIN = ("train",)
SLUG_MAX = 48  # characters of the readable part of an id; the digest keeps ids apart


@dataclass(frozen=True)
class Sweep:
    """A `sweeps.NAME` entry, with its grid in the config's order (greedy rounds follow it)."""

    name: str
    mode: str
    stage: str
    seeds: str
    grid: tuple[tuple[str, tuple[Any, ...]], ...]

    @classmethod
    def from_config(cls, name: str, section: Mapping[str, Any]) -> Sweep:
        p = SweepParams(**section)
        grid = tuple((key, tuple(values)) for key, values in p.grid.items())
        return cls(name, p.mode, p.stage, p.seeds, grid)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.grid)

    def where(self, key: str | None = None) -> str:
        base = f"sweeps.{self.name}.grid"
        return f"{base}.{key}" if key else base


@dataclass(frozen=True)
class Trial:
    """One training run of a sweep: `values` every grid key's value, `overrides` those that
    differ from the config (what names it), `round` the greedy round that first tries it."""

    id: str
    values: dict[str, Any]
    overrides: dict[str, Any]
    round: int | None = None


# --------------------------------------------------------------------------- dotted keys
def _node(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    return {**schema["$defs"][ref.rsplit("/", 1)[1]], **node} if ref else node


def check_key(key: str, where: str) -> None:
    """`key` ("fusion.hidden_dim") names a value of the train section, else ConfigError."""
    schema = subschema(TRAIN)
    node: dict[str, Any] = schema
    for part in key.split("."):
        props = _node(schema, node).get("properties", {})
        if part not in props:
            raise ConfigError(f"config error: unknown key '{where}': train has no '{key}'")
        node = props[part]


def get_value(train: Mapping[str, Any], key: str) -> Any:
    value: Any = train
    for part in key.split("."):
        value = value[part]
    return value


def with_overrides(train: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the train section with each dotted key set (checked against the schema)."""
    out = copy.deepcopy(dict(train))
    for key, value in overrides.items():
        *parents, last = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = copy.deepcopy(value)
    return validate(out, subschema(TRAIN), TRAIN)


def _same(a: Any, b: Any) -> bool:
    # as the JSON a job receives sees them: 1 == 1.0, a tuple == its list
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def check_sweep(sweep: Sweep, train: Mapping[str, Any]) -> None:
    """Planning-time checks, each a one-line ConfigError naming the key: a grid key the train
    section lacks, an empty list, a value its schema refuses."""
    if sweep.stage != "fusion":  # the schema allows only fusion today; a new stage needs a rule
        raise ConfigError(f"config error: sweeps.{sweep.name}.stage: no trials for '{sweep.stage}'")
    if not sweep.grid:
        raise ConfigError(f"config error: empty grid '{sweep.where()}'")
    for key, values in sweep.grid:
        check_key(key, sweep.where(key))
        if not values:
            raise ConfigError(f"config error: empty list for '{sweep.where(key)}'")
        for value in values:
            try:
                with_overrides(train, {key: value})
            except ConfigError as e:
                raise ConfigError(f"{e} (value {value!r} of '{sweep.where(key)}')") from None


# --------------------------------------------------------------------------- trials
def _slug(overrides: Mapping[str, Any]) -> str:
    if not overrides:
        return "base"
    parts = []
    for key, value in sorted(overrides.items()):
        text = "+".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
        parts.append(f"{key.rsplit('.', 1)[-1]}-{text}".lower())
    slug = re.sub(r"[^a-z0-9.+-]+", "_", "_".join(parts)).strip("_")
    return slug[:SLUG_MAX].rstrip("_") or "trial"


def trial_id(overrides: Mapping[str, Any]) -> str:
    """`slug-digest`: readable, and stable as long as the overrides are the same."""
    text = json.dumps(dict(overrides), sort_keys=True)
    return f"{_slug(overrides)}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def make_trial(
    sweep: Sweep, train: Mapping[str, Any], values: Mapping[str, Any], round: int | None = None
) -> Trial:
    changed = {k: v for k, v in values.items() if not _same(v, get_value(train, k))}
    full = {k: values.get(k, get_value(train, k)) for k in sweep.keys}
    return Trial(trial_id(changed), full, changed, round)


def exhaustive(sweep: Sweep, train: Mapping[str, Any]) -> list[Trial]:
    """Every combination of the grid's values, the first key varying slowest."""
    combos = itertools.product(*(values for _, values in sweep.grid))
    return [make_trial(sweep, train, dict(zip(sweep.keys, c, strict=True))) for c in combos]


def greedy_round(
    sweep: Sweep, train: Mapping[str, Any], r: int, winners: Mapping[str, Any]
) -> list[Trial]:
    """Round `r` of a greedy search, in the order its trials compete: the grid's `r`-th key
    takes each of its values with the earlier keys at their winners (`winners`) and the later
    ones at the config's values. From round 1 on, the key's current value competes first (it
    is the previous winner's trial, already run), then the grid's other values, as the
    authors' search does; round 0 tries the listed values only."""
    key, values = sweep.grid[r]
    fixed = {k: winners[k] for k in sweep.keys[:r]}
    current = get_value(train, key)
    order = list(values) if r == 0 else [current, *(v for v in values if not _same(v, current))]
    return [make_trial(sweep, train, {**fixed, key: v}, r) for v in order]


def pick_winner(scores: list[float | None]) -> int | None:
    """The index of the best score (the first of equal ones: the current value keeps its place
    unless beaten); None where no trial has a score (failed rows only)."""
    best, index = float("-inf"), None
    for i, s in enumerate(scores):
        if s is not None and s == s and s > best:  # s == s: not NaN
            best, index = s, i
    return index


def trial_seed(sweep: Sweep, seed: int, trial: Trial) -> int:
    """The config seed (seeds: shared), or that seed offset by the trial id's digest."""
    if sweep.seeds == "shared":
        return seed
    return (seed + int(trial.id.rsplit("-", 1)[1], 16)) % 2**31
