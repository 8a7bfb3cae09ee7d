"""Fetching into the model store (`mepr.embed.store`): run where a model hub can be reached.

Each fetcher puts one entry into the store and says what it got: hub repositories through
`huggingface_hub.snapshot_download` into the store's hub cache at the pinned revision, open_clip
name + tag through open_clip's own download (its `cache_dir`, the store's open_clip/), plain
files by URL. `fetch` skips an entry the store already holds complete at the requested
revision, and writes the manifest (every file with size and sha256) last, atomically. The
loaders never import this module: they need no hub library beyond what they load with.
"""

from __future__ import annotations

import os
import shutil
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from mepr.embed.store import (
    MANIFEST_SCHEMA,
    MANIFEST_VERSION,
    Entry,
    manifest_path,
    model_store,
    problem_with,
    read_manifest,
)
from mepr.files import atomic_path, sha256_file, write_json_atomic

# transformers repositories: everything but other frameworks' weights and exports
_HF_IGNORE = [
    "*.onnx", "onnx/*", "*.h5", "*.msgpack", "*.ot", "*.tflite", "tf_model*", "flax_model*",
    "rust_model*", "openvino/*", "coreml/*", "*.mlmodel", "*.mlpackage/*",
]  # fmt: skip
_PT_WEIGHTS = ["*.bin", "*.pt", "*.pth"]  # skipped where the repository has safetensors
# what faster-whisper itself loads from a CTranslate2 Whisper repository
_CT2_FILES = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json", "vocabulary.*"]  # fmt: skip


def _in_store(path: Path, store: Path) -> str:
    """`path` relative to the store (a library may hand back the store's resolved path)."""
    for base in (store, store.resolve()):
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            pass
    raise RuntimeError(f"the download landed in {path}, outside the model store {store}")


def _files(root: Path, store: Path) -> dict[str, dict[str, Any]]:
    """Every file under root (or root itself), store-relative, with size and sha256."""
    found = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return {
        _in_store(p, store): {"size": p.stat().st_size, "sha256": sha256_file(p)} for p in found
    }


def _hub_version() -> str | None:
    try:
        import importlib.metadata

        return importlib.metadata.version("huggingface_hub")
    except Exception:  # pragma: no cover - huggingface_hub is a transformers dependency
        return None


def _fetch_hf(entry: Entry, store: Path) -> tuple[Path, str, dict[str, Any]]:
    from huggingface_hub import snapshot_download

    def get(**patterns) -> Path:
        return Path(
            snapshot_download(
                entry.ref, revision=entry.revision or "main", cache_dir=store / "hf", **patterns
            )
        )

    if entry.files == "ctranslate2":
        snap = get(allow_patterns=_CT2_FILES)
        weights = ["model.bin"]
    elif entry.files == "open_clip":
        snap = get(allow_patterns=["open_clip_config.json", "open_clip_model.safetensors"])
        if not (snap / "open_clip_model.safetensors").exists():
            snap = get(allow_patterns=["open_clip_config.json", "open_clip_pytorch_model.bin"])
        weights = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    else:
        snap = get(ignore_patterns=_HF_IGNORE + _PT_WEIGHTS)
        if not any(snap.glob("*.safetensors")):  # older repositories: PyTorch weights only
            snap = get(ignore_patterns=_HF_IGNORE)
        weights = ["*.safetensors", "*.bin", "*.pt", "*.pth"]
    if not any(any(snap.glob(w)) for w in weights):
        raise RuntimeError(f"fetched {entry.describe()} into {snap}, but it holds no weights")
    source = {"hub": "huggingface", "repo": entry.ref, "files": entry.files}
    return snap, snap.name, source  # snapshots/COMMIT: the commit the revision resolved to


def _fetch_open_clip(entry: Entry, store: Path) -> tuple[Path, str, dict[str, Any]]:
    from open_clip import pretrained as oc

    cfg = oc.get_pretrained_cfg(entry.ref, entry.pretrained)
    if not cfg:
        tags = oc.list_pretrained_tags_by_model(entry.ref)
        raise ValueError(
            f"open_clip has no pretrained '{entry.pretrained}' for '{entry.ref}' (tags: {tags})"
        )
    path = Path(oc.download_pretrained(cfg, cache_dir=str(store / "open_clip")))
    # a hub download lands in snapshots/COMMIT/FILE; a URL download is named by its content
    parts = path.parts
    resolved = parts[-2] if len(parts) > 2 and parts[-3] == "snapshots" else None
    source = {
        "hf_hub": cfg.get("hf_hub") or None,
        "url": cfg.get("url") or None,
        "file": path.name,
        "library": "open_clip",
    }
    return path, resolved or f"sha256:{sha256_file(path)}", source


def _open_url(url: str):
    return urllib.request.urlopen(url, timeout=60)  # noqa: S310 - fixed https URLs


def _fetch_url(entry: Entry, store: Path) -> tuple[Path, str, dict[str, Any]]:
    dest = store / str(entry.dest)
    with atomic_path(dest) as tmp, _open_url(entry.ref) as src, open(tmp, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    if entry.files == "zip":
        with zipfile.ZipFile(dest) as zf:
            root = dest.parent.resolve()
            for name in zf.namelist():
                if not (root / name).resolve().is_relative_to(root):
                    raise ValueError(f"{dest}: archive member '{name}' points outside {root}")
            zf.extractall(root)
    return dest, f"sha256:{sha256_file(dest)}", {"url": entry.ref}


_FETCHERS = {"hf": _fetch_hf, "open_clip": _fetch_open_clip, "url": _fetch_url}


def fetch(
    entry: Entry, store: str | Path | None = None, refresh: bool = False
) -> tuple[dict[str, Any], bool]:
    """Put `entry` into the store unless it already is there, complete, at the requested
    revision (or `refresh`). Returns (manifest, whether anything was fetched)."""
    store = model_store(store).absolute()
    current = read_manifest(entry, store)
    if not refresh and current is not None and problem_with(current, entry, store) is None:
        return current, False
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in {"1", "true", "yes", "on"}:
        raise RuntimeError(
            f"cannot fetch {entry.describe()}: HF_HUB_OFFLINE is set in this shell; "
            f"fetch-models needs hub access (run it where the hub can be reached)"
        )
    store.mkdir(parents=True, exist_ok=True)
    started = time.time()
    path, resolved, source = _FETCHERS[entry.kind](entry, store)
    requested = entry.revision if entry.kind == "hf" else None
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "version": MANIFEST_VERSION,
        "key": entry.key,
        "entry": entry.to_dict(),
        "reference": entry.describe(),
        "revision": {"requested": requested, "resolved": resolved},
        "path": _in_store(path, store),
        "source": source,
        "files": _files(path, store),
        "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "fetch_seconds": round(time.time() - started, 1),
        "huggingface_hub": _hub_version(),
    }
    write_json_atomic(manifest_path(entry, store), manifest)
    return manifest, True


def write_receipt(entry: Entry, store: Path, manifest: dict[str, Any], out: str | Path) -> None:
    """The workflow's per-run record that `entry` is in `store` (rule fetch_model's output)."""
    write_json_atomic(
        Path(out),
        {
            "store": str(store.resolve()),
            "manifest": str(manifest_path(entry, store).resolve()),
            "key": entry.key,
            "revision": manifest["revision"],
            "files": {k: v["sha256"] for k, v in manifest["files"].items()},
        },
    )
