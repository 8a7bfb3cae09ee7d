"""Files written whole or not at all, and their digests: the one owner of both.

Every writer here goes through a temporary file in the destination's folder, then one
``os.replace``: an interrupted job never leaves half a file under the final name, and
readers (other jobs, other users of a shared model store) never see one. New files get the
permissions the umask allows (``mkstemp`` alone would make them owner-only).
Standard library only, so any stage may import it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def shareable(path: str | Path) -> None:
    """Give ``path`` the permissions a plain ``open`` would under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write; renamed to ``path`` when the block succeeds,
    removed when it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        shareable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(
    path: str | Path, data: Any, *, sort_keys: bool = True, ensure_ascii: bool = True
) -> None:
    """``data`` as indented JSON plus a final newline (plain JSON types only)."""
    text = json.dumps(data, indent=2, sort_keys=sort_keys, ensure_ascii=ensure_ascii) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
