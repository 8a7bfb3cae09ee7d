"""Finding a label file (or folder) by name below a corpus root: the shallowest match.

Corpus releases are unpacked in many shapes (an extra top folder, the SDK's own tree, a
download tool's folder), so the adapters look their label files up by name at any depth.
They differ in what they tolerate, so each states it in a `Search`:

* ``hidden``: also look inside (and at) entries whose name starts with ``.``;
* ``follow_links``: descend into symlinked folders, each real folder once (a link back up the
  tree, or a second way to a folder already seen, is skipped); without it a symlinked folder
  is not entered (a symlinked *file* always counts);
* ``max_depth``: how many levels below the base are read at most (None: all);
* ``refuse_ties``: two equally shallow files of that name stop with a `CorpusError` naming
  both (``tie_hint`` says what to do about it) instead of the first one winning.

The search is breadth-first with names sorted: the shallowest match wins, and among equally
shallow ones (when ties are allowed) the first in that order. Folders that cannot be read are
skipped. Standard library only, like the rest of manifest building.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from mepr.corpora.manifest import CorpusError


@dataclass(frozen=True)
class _Entry:
    path: Path
    is_folder: bool


@dataclass(frozen=True)
class Search:
    """How an adapter searches below a corpus root (see the module docstring)."""

    hidden: bool = False
    follow_links: bool = False
    max_depth: int | None = None
    refuse_ties: bool = False
    tie_hint: str = ""

    def file(self, base: Path, name: str) -> Path | None:
        """The shallowest regular file (or link to one) called `name` below `base`."""
        for level in self._levels(base):
            hits = [e.path for e in level if not e.is_folder and _named_file(e.path, name)]
            if not hits:
                continue
            if self.refuse_ties and len(hits) > 1:
                listed = ", ".join(sorted(str(p) for p in hits))
                hint = f"; {self.tie_hint}" if self.tie_hint else ""
                raise CorpusError(f"{name} found {len(hits)} times under {base}: {listed}{hint}")
            return hits[0]
        return None

    def folders(
        self, base: Path, suffixes: Iterable[tuple[str, ...]]
    ) -> dict[tuple[str, ...], Path]:
        """Per path suffix (e.g. ``("Raw", "Videos", "Full", "Combined")``), the shallowest
        folder whose path ends with it; ``base/<suffix>`` itself is tried first, as the usual
        place. Suffixes with no such folder are left out."""
        wanted = list(suffixes)
        found = {s: base.joinpath(*s) for s in wanted if base.joinpath(*s).is_dir()}
        if len(found) == len(wanted):
            return found
        for level in self._levels(base):
            for entry in level:
                if not entry.is_folder:
                    continue
                for suffix in wanted:
                    if suffix not in found and entry.path.parts[-len(suffix) :] == suffix:
                        found[suffix] = entry.path
            if len(found) == len(wanted):
                break
        return found

    def _levels(self, base: Path) -> Iterator[list[_Entry]]:
        """The entries below `base`, one level at a time (folders in the order they were
        found, names sorted inside each)."""
        level, depth = [base], 0
        seen = {os.path.realpath(base)}  # real folders entered, when links are followed
        while level and (self.max_depth is None or depth < self.max_depth):
            entries: list[_Entry] = []
            below: list[Path] = []
            for folder in level:
                try:
                    listing = sorted(os.scandir(folder), key=lambda e: e.name)
                except OSError:
                    continue
                for e in listing:
                    if not self.hidden and e.name.startswith("."):
                        continue
                    try:
                        is_folder = e.is_dir(follow_symlinks=self.follow_links)
                    except OSError:
                        continue
                    path = Path(e.path)
                    if is_folder and self.follow_links:
                        real = os.path.realpath(path)
                        if real in seen:  # a symlink back up the tree, or a second way in
                            continue
                        seen.add(real)
                    if is_folder:
                        below.append(path)
                    entries.append(_Entry(path, is_folder))
            yield entries
            level, depth = below, depth + 1


def _named_file(path: Path, name: str) -> bool:
    try:
        return path.name == name and path.is_file()
    except OSError:
        return False
