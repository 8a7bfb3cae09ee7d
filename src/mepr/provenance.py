"""Code fingerprints: a rule re-runs when the mepr code it calls changes, not only its shell line."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent


@functools.cache
def code_digest(*parts: str) -> str:
    """sha1 over the Python sources of the named subpackages/modules ('media', 'shards', ...)."""
    digest = hashlib.sha1()
    for part in sorted(parts):
        target = PACKAGE_ROOT / part
        files = sorted(target.rglob("*.py")) if target.is_dir() else [target.with_suffix(".py")]
        if not files or not files[0].exists():
            raise ValueError(f"code_digest: no mepr module or package named '{part}'")
        for f in files:
            digest.update(f.relative_to(PACKAGE_ROOT).as_posix().encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]
