"""Encoder model references (`encoders.<modality>.model`), parsed in one place.

- `demo:NAME`     a tiny model the workflow builds offline (results/encoders/NAME);
- `package:NAME`  a real model shipped inside an installed Python package;
- `local-dir:P`   an open_clip folder;
- anything else   a plain name or path, as the loading library takes it: a local path
                  (`is_local`) or a hub model (fetched into the model store).

Only the standard library is imported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

RefKind = Literal["demo", "package", "local-dir", "plain"]
PREFIXED: tuple[RefKind, ...] = ("demo", "package", "local-dir")


def is_local(ref: str) -> bool:
    """A path rather than a hub name: explicit (/, ./, ../, ~) or existing here."""
    return ref.startswith(("/", "./", "../", "~")) or Path(ref).expanduser().exists()


@dataclass(frozen=True)
class ModelRef:
    """`kind` and `name`: the text after the `kind:` prefix (the whole reference for plain)."""

    kind: RefKind
    name: str

    @classmethod
    def parse(cls, ref: str) -> ModelRef:
        for kind in PREFIXED:
            if ref.startswith(f"{kind}:"):
                return cls(kind, ref.removeprefix(f"{kind}:"))
        return cls("plain", ref)

    @property
    def is_demo(self) -> bool:
        return self.kind == "demo"

    def needs_store(self) -> bool:
        """Whether the weights come from the model store: a plain reference that is not a
        local path (demo:, package:, local-dir: and local paths need none)."""
        return self.kind == "plain" and not is_local(self.name)
