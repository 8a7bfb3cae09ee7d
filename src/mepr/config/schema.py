"""The JSON schema (`workflow/schemas/config.schema.yaml`): the one source of every key's
default and allowed values, and validation against it with one message naming the bad key."""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[3]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """One clear message naming the bad key."""


@functools.cache
def _schema_text() -> str:
    if SCHEMA_PATH.exists():
        return SCHEMA_PATH.read_text()
    # installed without the repository: the schema is shipped as package data
    return resources.files("mepr").joinpath("config.schema.yaml").read_text()


def schema() -> dict[str, Any]:
    """A fresh copy of the whole schema (callers may not mutate the cached text's parse)."""
    return yaml.safe_load(_schema_text())


def _with_defaults(validator_class):
    """A validator that also fills `default` values in (objects first, then their keys)."""
    validate_props = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_props(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


def _key_path(error: jsonschema.ValidationError, prefix: tuple[str, ...]) -> str:
    parts = [*prefix, *(str(p) for p in error.absolute_path)]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            parts.append(extra[0])
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        parts.append(missing)
    return ".".join(parts) or "<top level>"


def subschema(path: tuple[str, ...]) -> dict[str, Any]:
    """The schema of one section (`("train", "gradnorm")`), with the `$defs` it refers to."""
    root = schema()
    node = root
    for key in path:
        node = node["properties"][key]
        if "$ref" in node:
            node = {**root["$defs"][node["$ref"].rsplit("/", 1)[1]], **node}
            node.pop("$ref")
    return {"$defs": root.get("$defs", {}), **node}


def validate(
    instance: Mapping[str, Any], schema_: Mapping[str, Any], prefix: tuple[str, ...] = ()
) -> dict[str, Any]:
    """A validated deep copy of `instance` with defaults filled; ConfigError naming the key
    (`prefix` is where the instance sits in the whole config)."""
    out = copy.deepcopy(dict(instance))
    validator = _with_defaults(jsonschema.Draft202012Validator)(dict(schema_))
    errors = sorted(validator.iter_errors(out), key=lambda e: (len(e.absolute_path), e.message))
    if errors:
        err = errors[0]
        key = _key_path(err, prefix)
        if err.validator == "additionalProperties":
            msg = f"unknown key '{key}'"
        elif err.validator == "required":
            msg = f"missing required key '{key}'"
        else:
            msg = f"bad value for '{key}': {err.message}"
        raise ConfigError(f"config error: {msg}")
    return out


def section_defaults(path: tuple[str, ...], **given: Any) -> dict[str, Any]:
    """One section as the schema fills it when it is empty (or holds only `given`, e.g. the
    keys it requires): every default inside it, nested sections included."""
    return validate(given, subschema(path), path)


def validate_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """Return a validated deep copy with defaults filled; raise ConfigError naming the key."""
    cfg = validate(config, schema())
    for name, corpus in cfg["corpora"].items():
        task = corpus.get("task") or {"mosei": "emotion", "fiv2": "personality"}.get(
            corpus["adapter"]
        )
        if task is None:
            raise ConfigError(f"config error: missing required key 'corpora.{name}.task'")
        corpus["task"] = task
    tasks = {c["task"] for c in cfg["corpora"].values()}
    if tasks != {"emotion", "personality"}:
        raise ConfigError(
            "config error: bad value for 'corpora': cross-domain training needs at least one "
            f"emotion corpus and one personality corpus, found tasks {sorted(tasks)}"
        )
    return cfg


# Collections whose entries the user names (corpora, folders to predict on, sweeps). The default
# config's entries are examples for the demo: a user's config file that names its own replaces
# them instead of adding to them, so `--configfile configs/paper.yaml` plans MOSEI + FIv2 only
# (Snakemake's own merge would keep the demo corpora beside them). Paths are key tuples.
USER_NAMED: tuple[tuple[str, ...], ...] = (("corpora",), ("predict", "videos"), ("sweeps",))


def _lookup(cfg: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(cfg, Mapping) or key not in cfg:
            return None
        cfg = cfg[key]
    return cfg


def apply_user_named(merged: dict[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """`merged` (default config updated by the user's) with each `USER_NAMED` collection taken
    from `user` alone (the user's config files and --config, merged in order) where it names one.

    Snakemake deep-merges `--configfile` files into the Snakefile's `configfile:`; this undoes
    that merge for the collections the user names, and leaves every other key merged.
    """
    out = copy.deepcopy(merged)
    for path in USER_NAMED:
        mine = _lookup(user, path)
        if mine is None:
            continue
        parent = out
        for key in path[:-1]:
            parent = parent.setdefault(key, {})
        parent[path[-1]] = copy.deepcopy(mine)
    return out


def load_config(path: str | Path, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load(Path(path).read_text()) or {}
    raw.update(overrides or {})
    return validate_config(raw)


def merge_config_files(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Nested mappings merged key by key, as Snakemake merges `--configfile` files."""
    out = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge_config_files(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_workflow_config(paths: list[str | Path]) -> dict[str, Any]:
    """The config a `snakemake --configfile PATHS...` run sees, validated: the workflow's
    config.yaml, each file deep-merged in order, and the collections a file names
    (`USER_NAMED`) taken from the files alone, as common.smk does."""
    default = REPO_ROOT / "config.yaml"
    merged: dict[str, Any] = yaml.safe_load(default.read_text()) or {} if default.exists() else {}
    user: dict[str, Any] = {}
    for path in paths:
        extra = yaml.safe_load(Path(path).read_text()) or {}
        merged = merge_config_files(merged, extra)
        user = merge_config_files(user, extra)
    return validate_config(apply_user_named(merged, user))
