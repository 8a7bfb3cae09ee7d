"""`mepr import-reference`: the authors' released system as mepr model folders.

The files are read and mapped by :mod:`mepr.reference.importer`; this module puts the
folders together (``OUT/unimodal/<modality>/cross``, ``OUT/fusion`` with ``pipeline.json``)
and prints what was imported.  ``mepr predict --model OUT/fusion`` then runs their system.
torch is imported inside the functions, so ``mepr --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mepr.reference.importer import (
    APP_FILES,
    MODALITIES,
    WHOLE_SEQUENCE,
    ImportedCross,
    ReferenceFileError,
    ReferenceFiles,
    import_cross,
    import_fusion,
    read_state,
)


@dataclass
class ImportReport:
    """What was imported: per file its tensors and notes, per model folder its config."""

    out: Path
    files: list[tuple[str, Path, int, str]] = field(default_factory=list)  # role, path, n, how
    models: dict[str, str] = field(default_factory=dict)  # folder -> inferred configuration
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"imported the authors' system into {self.out}:"]
        out += [f"  {role:<17} {p} ({n} tensors, {how})" for role, p, n, how in self.files]
        out += [f"  -> {d}: {desc}" for d, desc in self.models.items()]
        out += [f"  note: {n}" for n in self.notes]
        return out


def _describe_cross(c: ImportedCross) -> str:
    def one(cls: str, u) -> str:
        size = f"blocks {u.block_width}" if u.encoder == "gated_mlp" else f"heads {u.heads}"
        pe = ", position encoding" if u.encoder != "gated_mlp" and u.positional else ""
        return f"{cls} ({u.encoder}, {u.in_dim}->{u.hidden_dim}, {u.layers} layer(s), {size}{pe})"

    b = c.model.cfg
    pe = ", position encoding" if b.positional else ""
    return (
        f"{one(c.classes[0], c.model.emotion_base.cfg)} + {one(c.classes[1], c.model.personality_base.cfg)}"
        f"; bridge {b.block} hidden {b.hidden_dim}, {b.heads} heads, {b.layers} layer(s){pe}, "
        f"personality {b.personality_activation}"
    )


def import_reference(
    files: ReferenceFiles,
    out: str | Path,
    config: dict[str, Any],
    *,
    max_steps: int = WHOLE_SEQUENCE,
    force: bool = False,
) -> ImportReport:
    """Convert `files` into ``OUT/unimodal/<m>/cross`` and ``OUT/fusion`` (+ pipeline.json,
    its feature settings from the validated workflow `config`); nothing is written unless
    every file maps."""
    from mepr.models.checkpoints import save_model
    from mepr.predict.spec import (
        PIPELINE_FILE,
        build_pipeline_spec_from_config,
        write_pipeline_spec,
    )

    out = Path(out)
    taken = [d for d in (out / "fusion", out / "unimodal") if d.exists()]
    if taken and not force:
        raise ReferenceFileError(f"{taken[0]} exists: choose another --out or pass --force")
    report = ImportReport(out)
    loaded = {role: read_state(role, p) for role, p in files.paths.items()}
    for role in APP_FILES:  # the report in the order of the table
        if role in loaded:
            f = loaded[role]
            report.files.append((role, f.path, len(f.state), f.container))
    cross: dict[str, ImportedCross] = {}
    for m in MODALITIES:
        stage1 = {t: loaded[f"{m}.{t}"] for t in ("emotion", "personality") if f"{m}.{t}" in loaded}
        cross[m] = import_cross(m, loaded[m], stage1, max_steps)
        report.models[f"unimodal/{m}/cross"] = _describe_cross(cross[m])
        report.notes += [f"{m}: {n}" for n in cross[m].notes]
    fusion, fusion_config, notes = import_fusion(loaded["fusion"], cross)
    fc = fusion.cfg
    report.models["fusion"] = (
        f"fuses {', '.join(f'{m} ({d})' for m, d in zip(fc.modalities, fc.input_dims, strict=True))}"
        f", hidden {fc.hidden_dim}, {fc.heads} heads, guides: emotion "
        f"{'on' if fc.guide_emotion else 'off'}, personality {'on' if fc.guide_personality else 'off'}"
    )
    report.notes += [f"fusion: {n}" for n in notes]
    for m, c in cross.items():
        save_model(c.model, out / "unimodal" / m / "cross", c.config)
    save_model(fusion, out / "fusion", fusion_config)
    spec = build_pipeline_spec_from_config(out / "fusion", config)
    spec["imported"] = {"from": fusion_config["imported"]["from"], "max_steps": max_steps}
    write_pipeline_spec(spec, out / "fusion" / PIPELINE_FILE)
    report.models["fusion/pipeline.json"] = ", ".join(
        f"{m}: {spec['encoders'][m]['kind']} {spec['encoders'][m]['model']}" for m in fc.modalities
    )
    report.notes.append(
        "the app turns stage-2 personality scores that all lie in [0, 1] into logits before its "
        "fusion; mepr predict feeds them unchanged (see mepr.reference.importer)"
    )
    return report


def _files(a: argparse.Namespace) -> ReferenceFiles:
    """--from-dir, with any file named explicitly taking the place of the one found."""
    given: dict[str, Path] = {}
    for role in ("fusion", "face", "body", "scene"):
        if getattr(a, role):
            given[role] = Path(getattr(a, role))
    for m in ("audio", "text"):
        paths = getattr(a, m)
        if paths is None:
            continue
        if len(paths) not in (1, 3):
            raise ReferenceFileError(f"--{m} takes BRIDGE [EMOTION PERSONALITY] (1 or 3 files)")
        for role, p in zip((m, f"{m}.emotion", f"{m}.personality"), paths, strict=False):
            given[role] = Path(p)
    found = ReferenceFiles.find(a.from_dir).paths if a.from_dir else {}
    return ReferenceFiles({**found, **given})


def _import(a: argparse.Namespace) -> None:
    from mepr.config import load_workflow_config

    files = _files(a)
    config = load_workflow_config([a.config])
    report = import_reference(files, a.out, config, max_steps=a.max_steps, force=a.force)
    print("\n".join(report.lines()))
    print(
        f"mepr import-reference: run it with `mepr predict VIDEO... --model {Path(a.out) / 'fusion'}`",
        file=sys.stderr,
    )


def register(sub: argparse._SubParsersAction) -> None:
    from mepr.config import REPO_ROOT

    names = "; ".join(f"{r}: {' | '.join(n)}" for r, n in APP_FILES.items())
    p = sub.add_parser(
        "import-reference",
        help="convert the SSL-MEPR authors' released checkpoints into mepr model folders",
        description="Read the authors' checkpoints (torch.load with weights_only=True only), "
        "map every tensor onto mepr's models, and write OUT/unimodal/<modality>/cross, "
        "OUT/fusion and OUT/fusion/pipeline.json (the feature settings of --config). "
        f"Files --from-dir finds by name: {names}.",
    )
    p.add_argument("--from-dir", default=None, help="find the files under this folder by name")
    p.add_argument("--fusion", default=None, help="their multi-task fusion checkpoint")
    for m in ("face", "body", "scene"):
        p.add_argument(f"--{m}", default=None, help=f"their {m} FusionTransformer checkpoint")
    for m in ("audio", "text"):
        p.add_argument(
            f"--{m}",
            nargs="+",
            metavar="FILE",
            default=None,
            help=f"their {m} FusionTransformer checkpoint [and its stage-1 emotion and "
            "personality checkpoints, compared with the copies it holds]",
        )
    p.add_argument("--out", required=True, help="folder for unimodal/ and fusion/")
    p.add_argument(
        "--config",
        default=str(REPO_ROOT / "configs" / "paper.yaml"),
        help="workflow config whose frames/detect/audio/asr/encoders sections feed the models "
        "(default: configs/paper.yaml, the authors' feature settings)",
    )
    p.add_argument(
        "--max-steps",
        type=int,
        default=WHOLE_SEQUENCE,
        help="subsample longer sequences to this many steps (default: never, as their app)",
    )
    p.add_argument("--force", action="store_true", help="overwrite OUT/fusion and OUT/unimodal")
    p.set_defaults(func=_import)
