"""The JSON files predict reads (the pipeline spec) and writes (spec, records, summary)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mepr.files import write_json_atomic
from mepr.predict.errors import PredictError


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON file predict needs (`what` says which, for the message)."""
    if not path.exists():
        raise PredictError(f"{path}: no such file ({what})")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise PredictError(f"{path}: not valid JSON ({e})") from e


def write_json(path: Path, data: Any) -> None:
    """Indented JSON in the keys' own order, non-ASCII kept, written whole or not at all."""
    from mepr.train.loop import to_jsonable  # numpy values, non-finite floats -> null

    write_json_atomic(path, to_jsonable(data), sort_keys=False, ensure_ascii=False)
