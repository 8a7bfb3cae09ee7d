"""Corpus files still inside their zip archives: find them, and say which archive to unpack.

Corpora are distributed as zips (FIv2: ``train-1.zip`` holding ``training80_01.zip`` ... each
holding mp4s; ``train-annotation.zip`` holding ``annotation_training.pkl``; the MOSEI SDK's raw
``CMU_MOSEI.zip``). mepr reads unpacked files only, so a file that is still packed must stop the
manifest with the archive named, instead of every video becoming "video file not found".
Only the archives' central directories are read (cheap even for the multi-GB ones).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mepr.corpora.manifest import VIDEO_EXTS, strip_video_ext


@dataclass
class Archive:
    path: Path
    # base names of the files inside (and inside stored zips inside it), by stem too
    members: set[str] = field(default_factory=set)
    inner_zips: list[str] = field(default_factory=list)  # zips inside it (unpack those too)

    def holds(self, name: str) -> bool:
        base = os.path.basename(name.replace("\\", "/"))
        return base in self.members or strip_video_ext(base) in self.members


def _members(zf: zipfile.ZipFile, archive: Archive, depth: int) -> None:
    for info in zf.infolist():
        if info.is_dir():
            continue
        base = os.path.basename(info.filename)
        archive.members.add(base)
        archive.members.add(strip_video_ext(base))
        if base.lower().endswith(".zip"):
            archive.inner_zips.append(info.filename)
            # a stored (uncompressed) inner zip can be listed without inflating it
            if depth == 0 and info.compress_type == zipfile.ZIP_STORED:
                try:
                    with zf.open(info) as fh, zipfile.ZipFile(fh) as inner:
                        _members(inner, archive, depth + 1)
                except (zipfile.BadZipFile, RuntimeError, OSError, NotImplementedError):
                    pass  # encrypted or damaged: its name alone is reported


def find_archives(root: Path) -> list[Archive]:
    """Every readable zip below ``root`` (sorted), with the names of what it holds."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fname in sorted(filenames):
            if not fname.lower().endswith(".zip"):
                continue
            archive = Archive(Path(dirpath) / fname)
            try:
                with zipfile.ZipFile(archive.path) as zf:
                    _members(zf, archive, 0)
            except (zipfile.BadZipFile, OSError):
                continue
            out.append(archive)
    return out


def _holds_media(archive: Archive) -> bool:
    return bool(archive.inner_zips) or any(
        os.path.splitext(m)[1].lower() in VIDEO_EXTS for m in archive.members
    )


def packed_hint(root: Path, missing: Iterable[str]) -> str | None:
    """How to fix missing files that are still packed below ``root``, or None.

    Names the archives that hold any of ``missing`` (file names or ids); else, when archives
    holding videos or further zips exist at all, names them, since unlisted nested zips (FIv2)
    are the likely cause.
    """
    missing = list(missing)
    if not missing:
        return None
    archives = find_archives(root)
    if not archives:
        return None
    holding = [a for a in archives if any(a.holds(n) for n in missing)]
    packed = holding or [a for a in archives if _holds_media(a)]
    if not packed:
        return None
    names = ", ".join(str(a.path) for a in packed[:6]) + (" ..." if len(packed) > 6 else "")
    nested = any(a.inner_zips for a in packed)
    how = (
        "unzip each of them, then the zips inside them (e.g. training80_01.zip), in place"
        if nested
        else "unzip them in place"
    )
    found = "hold" if holding else "may hold"
    return (
        f"{len(missing)} labelled file(s) not found, e.g. {missing[0]}: these archives {found} "
        f"them and are not unpacked: {names}; {how} (mepr reads unpacked files only)"
    )


def with_packed_hint(message: str, root: Path, missing: Iterable[str]) -> str:
    """`message`, followed by ``; <how to unpack>`` when `packed_hint` has one."""
    hint = packed_hint(root, missing)
    return f"{message}; {hint}" if hint else message
