"""The one converter from a config section (dict, JSON text or JSON file) to its dataclass,
and `pick`, which builds a model's config from the sections that hold its fields."""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from mepr.config.schema import ConfigError, subschema, validate

T = TypeVar("T")


def _as_mapping(data: Mapping[str, Any] | str | Path | None) -> dict[str, Any]:
    if data is None:
        return {}
    if isinstance(data, Path) or (isinstance(data, str) and not data.lstrip().startswith("{")):
        data = Path(data).read_text()
    if isinstance(data, str):
        data = json.loads(data)
    return dict(data)


def _build(cls: type[T], data: Mapping[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"config error: unknown key '{where}{unknown[0]}'")
    kwargs = {}
    for name, value in data.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            value = _build(hint, value or {}, f"{where}{name}.")
        elif typing.get_origin(hint) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    return cls(**kwargs)


def parse(cls: type[T], data: Mapping[str, Any] | str | Path | None) -> T:
    """`cls` (a section dataclass with a `SECTION` path) from its config section: checked
    against the schema (allowed values; missing keys take the schema's defaults), then built
    strictly (a key the dataclass lacks is an error naming it).

    `EncoderParams` is one modality's merged entry, whose keys live in several sub-schemas:
    the Snakefile has validated them in place, so only the names are checked here."""
    section: tuple[str, ...] = cls.SECTION  # type: ignore[attr-defined]
    values = _as_mapping(data)
    if section != ("encoders",):
        values = validate(values, subschema(section), section)
    return _build(cls, values, "".join(f"{k}." for k in section))


def pick(cls: type[T], *sources: Any, **explicit: Any) -> T:
    """`cls(...)` with every field from `explicit`, else from the first source (a section
    dataclass) that has an attribute of that name: model configs are built from the config
    sections this way, with no field-by-field copies to keep in step."""
    kwargs = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in explicit:
            kwargs[f.name] = explicit[f.name]
            continue
        for source in sources:
            if hasattr(source, f.name):
                kwargs[f.name] = getattr(source, f.name)
                break
        else:
            raise TypeError(f"{cls.__name__}.{f.name}: no value given and no source has one")
    unused = sorted(set(explicit) - {f.name for f in dataclasses.fields(cls)})  # type: ignore[arg-type]
    if unused:
        raise TypeError(f"{cls.__name__} has no field '{unused[0]}'")
    return cls(**kwargs)
