"""Encoders behind one interface: a batch of inputs in, one (steps x dim) array per video out.

Model references in config (parsed by `mepr.embed.refs.ModelRef`) are resolved here, once:
- `demo:NAME`     a tiny model the workflow builds offline (`mepr build-demo-encoder`),
                  stored under results/encoders/NAME and loaded like a real checkpoint;
- `package:NAME`  a real model shipped inside an installed Python package (its model/ folder);
- `local-dir:P`   an open_clip folder; a local path as the underlying library understands it;
- anything else   a hub model (e.g. ViT-B-32 + pretrained 'openai', BAAI/bge-small-en-v1.5 at
                  `revision`), loaded only from the model store it was fetched into, with hub
                  access off (`mepr.embed.store`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
from pathlib import Path

from mepr import layout
from mepr.devices import pick_device
from mepr.embed.refs import ModelRef

DEMO_ENCODERS_DIR = Path(layout.DEMO_ENCODER_DIR).parent


def demo_encoder_dir(ref: str, root: Path = DEMO_ENCODERS_DIR) -> Path | None:
    """The folder a `demo:` reference lives in (None for other references)."""
    parsed = ModelRef.parse(ref)
    return root / parsed.name if parsed.is_demo else None


def resolve_model_ref(ref: str, root: Path = DEMO_ENCODERS_DIR) -> str:
    """A path or name the loading library accepts."""
    demo = demo_encoder_dir(ref, root)
    if demo is not None:
        if not demo.exists():
            raise FileNotFoundError(f"demo encoder '{ref}' not built yet: expected {demo}")
        return str(demo)
    parsed = ModelRef.parse(ref)
    if parsed.kind == "package":
        name = parsed.name
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"encoder '{ref}': Python package '{name}' is not installed")
        pkg = Path(next(iter(spec.submodule_search_locations)))
        return str(pkg / "model" if (pkg / "model").is_dir() else pkg)
    return ref


def library_versions(*distributions: str) -> dict[str, str | None]:
    """Installed versions of the named distributions (None where not installed)."""
    out: dict[str, str | None] = {}
    for name in distributions:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".onnx")


@functools.lru_cache(maxsize=32)
def weights_digest(path: Path) -> dict[str, str] | None:
    """sha256 of a local model's weight files (a file, or the weight files of a folder), so a
    shard names the exact weights even where the model reference is only a folder name."""
    path = Path(path)
    files = (
        [path]
        if path.is_file()
        else sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    )
    if not files:
        return None
    from mepr.files import sha256_file

    return {str(f.relative_to(path)) if f != path else f.name: sha256_file(f) for f in files}


def load_hf_model(model_class, params, preprocessor_class, stored=None):
    """A transformers encoder and its tokenizer / feature extractor for `params`: device from
    the config, fp16 on CUDA; a hub model from its model-store snapshot (`stored`, from
    `mepr.embed.store.stored_encoder`), never from the hub. Returns (model, preprocessor,
    resolved reference, device)."""
    import torch

    device = pick_device(params.device)
    resolved = str(stored.path) if stored is not None else resolve_model_ref(params.model)
    preprocessor = preprocessor_class.from_pretrained(resolved, local_files_only=True)
    dtype = torch.float16 if device == "cuda" else torch.float32
    model = model_class.from_pretrained(resolved, dtype=dtype, local_files_only=True)
    return model.to(device).eval(), preprocessor, resolved, device


def store_identity(stored, commit: str | None = None) -> dict:
    """Revision (requested, resolved) and model store of an encoder's weights."""
    if stored is not None:
        return stored.identity()
    return {"revision": {"requested": None, "resolved": commit}, "store": None}


def hf_identity(model, params, resolved: str, stored=None) -> dict:
    """The identity fields every transformers encoder records in its shards."""
    local = Path(resolved)
    return {
        "library": "transformers",
        "class": type(model).__name__,
        "model": params.model,
        "resolved": resolved,
        **store_identity(stored, getattr(model.config, "_commit_hash", None)),
        "weights": weights_digest(local) if local.exists() else None,
    }
