"""The model store: every hub model a config names, fetched once where a hub can be reached,
then loaded from there only.

Compute nodes of many clusters cannot reach a model hub. The workflow therefore fetches each
model into one folder, the store (config `models.store`, default `resources/models`, relative
to the working directory; several runs may share one), on the submitting node (rule
`fetch_model`, a local rule; `snakemake fetch_models` fetches them all), and the jobs that use
a model load it from the store with hub access switched off (`HF_HUB_OFFLINE`,
`TRANSFORMERS_OFFLINE`, `local_files_only`). A model the store lacks fails the job with a
message naming the model and the command that fetches it.

Layout of a store:

    hf/                 a huggingface_hub cache (models--ORG--NAME/blobs, snapshots/COMMIT, refs):
                        transformers encoders, faster-whisper (CTranslate2) models and open_clip
                        `hf-hub:` models, each at its pinned revision
    open_clip/          open_clip's own download cache (`cache_dir`) for name + pretrained tag
    torchaudio/, nltk/  plain files: WhisperX's alignment model, NLTK's punkt_tab
    manifests/KEY.json  one per model: reference, revision requested and resolved, source,
                        every file with its size and sha256 (written atomically, last)

`demo:`, `package:`, `local-dir:` and local paths need no store. This module names the entries
and finds them; `mepr.embed.fetch` fills the store. Only the standard library is imported: the
Snakefile reads the entries when it plans the DAG, and loaders need no hub client.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mepr import layout
from mepr.embed.refs import ModelRef, is_local

DEFAULT_STORE = "resources/models"
STORE_ENV = "MEPR_MODEL_STORE"  # set by the workflow for its jobs (workflow/rules/common.smk)
RECEIPTS_DIR = Path(layout.MODEL_RECEIPT).parent  # per-run outputs of rule fetch_model
MANIFEST_SCHEMA, MANIFEST_VERSION = "mepr.model-store", 1
FETCH_HINT = (
    "fetch it on a machine that can reach the hub (the login / submitting node): "
    "`snakemake --cores 1 fetch_models` with this run's --configfile / --config options, or "
    "`python -m mepr fetch-models --store {store} --config CONFIG.yaml`"
)

_WHISPER_SIZES = {
    "tiny", "tiny.en", "base", "base.en", "small", "small.en", "medium", "medium.en",
    "large-v1", "large-v2", "large-v3",
}  # fmt: skip
# WhisperX aligns these languages with torchaudio checkpoints (download.pytorch.org)
TORCHAUDIO_MODELS = "https://download.pytorch.org/torchaudio/models/"
ALIGN_CHECKPOINTS = {
    "en": "wav2vec2_fairseq_base_ls960_asr_ls960.pth",
    "fr": "wav2vec2_voxpopuli_base_10k_asr_fr.pt",
    "de": "wav2vec2_voxpopuli_base_10k_asr_de.pt",
    "es": "wav2vec2_voxpopuli_base_10k_asr_es.pt",
    "it": "wav2vec2_voxpopuli_base_10k_asr_it.pt",
}
# WhisperX splits sentences with NLTK's punkt_tab (and downloads it on first use otherwise)
PUNKT_TAB = "https://raw.githubusercontent.com/nltk/nltk_data/gh-pages/packages/tokenizers/punkt_tab.zip"  # fmt: skip


class ModelNotInStore(FileNotFoundError, RuntimeError):
    """A model the job needs is not (completely) in the store."""


def model_store(store: str | Path | None = None) -> Path:
    """The store folder: `store`, else $MEPR_MODEL_STORE, else resources/models (cwd-relative)."""
    return Path(store or os.environ.get(STORE_ENV) or DEFAULT_STORE)


def go_offline() -> None:
    """Switch hub access off in this process: call before transformers / open_clip / whisperx
    are imported (huggingface_hub reads the variables on import; if it already was, its flag
    is set too)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ[var] = "1"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:
        constants.HF_HUB_OFFLINE = True


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)


# ---------------------------------------------------------------------------------------------
# entries: what a config asks for


@dataclass(frozen=True)
class Entry:
    """One model in the store.

    kind      hf (a hub repository at a revision) | open_clip (name + pretrained tag) | url
    ref       the hub repository id, the open_clip model name, or the URL
    revision  hf: the requested branch, tag or commit ("main" when the config pins none)
    pretrained  open_clip: the pretrained tag (open_clip downloads the file it names)
    files     hf: transformers | ctranslate2 | open_clip; url: file | zip (unpacked beside it)
    dest      url: where the file goes, relative to the store
    """

    kind: str
    ref: str
    revision: str | None = None
    pretrained: str | None = None
    files: str | None = None
    dest: str | None = None

    @property
    def key(self) -> str:
        """Unique, path-safe name: the manifest's (and the workflow receipt's) file stem."""
        if self.kind == "hf":
            return f"hf/{_safe(self.ref.replace('/', '--'))}@{_safe(self.revision or 'main')}"
        if self.kind == "open_clip":
            return f"open_clip/{_safe(self.ref)}@{_safe(self.pretrained or '')}"
        return f"url/{self.dest}"

    def describe(self) -> str:
        if self.kind == "hf":
            return f"'{self.ref}' at revision '{self.revision or 'main'}'"
        if self.kind == "open_clip":
            return f"open_clip '{self.ref}' with pretrained '{self.pretrained}'"
        return f"'{self.dest}' (from {self.ref})"

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> Entry:
        if isinstance(data, str):
            data = json.loads(data)
        return cls(**dict(data))


def encoder_entry(section: Mapping[str, Any]) -> Entry | None:
    """The store entry an `encoders.<modality>` section needs (None: nothing to fetch)."""
    model, revision = section["model"], section.get("revision")
    if not ModelRef.parse(model).needs_store():
        if revision:
            raise ValueError(f"encoder '{model}' is local: it takes no revision ({revision!r})")
        return None
    if section["kind"] == "open_clip":
        if model.startswith("hf-hub:"):
            return Entry("hf", model.removeprefix("hf-hub:"), revision or "main", files="open_clip")
        pretrained = section.get("pretrained")
        if revision:
            raise ValueError(
                f"open_clip '{model}' takes no revision: a pretrained tag pins its weights "
                f"(open_clip downloads the file the tag names); for a pinned hub commit use "
                f"model 'hf-hub:ORG/REPO' with revision"
            )
        if not pretrained or is_local(pretrained):  # random weights, or a local weights file
            return None
        return Entry("open_clip", model, pretrained=pretrained)
    return Entry("hf", model, revision or "main", files="transformers")


def whisper_repo(model: str) -> str:
    """The CTranslate2 repository of a faster-whisper model size or hub id."""
    if "/" in model:
        return model
    size = "large-v3" if model == "large" else model
    if size not in _WHISPER_SIZES:
        raise ValueError(
            f"asr.model '{model}' is not a faster-whisper model: give a size "
            f"({', '.join(sorted(_WHISPER_SIZES))}) or a hub id such as "
            f"Systran/faster-whisper-large-v3"
        )
    return f"Systran/faster-whisper-{size}"


@dataclass(frozen=True)
class AsrEntries:
    model: Entry | None  # None: asr.model is a local folder
    align: Entry
    punkt: Entry

    def all(self) -> list[Entry]:
        return [e for e in (self.model, self.align, self.punkt) if e is not None]


def asr_entries(section: Mapping[str, Any]) -> AsrEntries | None:
    """What the `asr` section's backend loads (None: a backend that ships its models)."""
    if section.get("backend") != "whisperx":
        return None
    model, language = section.get("model", ""), section.get("language", "en")
    entry = None
    if not is_local(model):
        entry = Entry("hf", whisper_repo(model), section.get("revision") or "main", files="ctranslate2")  # fmt: skip
    elif section.get("revision"):
        raise ValueError(f"asr.model '{model}' is local: it takes no revision")
    if language not in ALIGN_CHECKPOINTS:
        raise ValueError(
            f"asr.language '{language}': WhisperX aligns it with a hub model the model store "
            f"does not fetch; offline alignment covers {', '.join(sorted(ALIGN_CHECKPOINTS))}"
        )
    name = ALIGN_CHECKPOINTS[language]
    align = Entry("url", TORCHAUDIO_MODELS + name, files="file", dest=f"torchaudio/{name}")
    punkt = Entry("url", PUNKT_TAB, files="zip", dest="nltk/tokenizers/punkt_tab.zip")
    return AsrEntries(entry, align, punkt)


def config_entries(config: Mapping[str, Any]) -> dict[str, list[Entry]]:
    """Role (modality, or 'asr') -> the store entries it needs, for a validated config."""
    out: dict[str, list[Entry]] = {}
    for role in ("face", "body", "scene", "audio", "text"):
        try:
            entry = encoder_entry(config["encoders"][role])
        except ValueError as e:
            raise ValueError(f"encoders.{role}: {e}") from None
        out[role] = [entry] if entry else []
    asr = asr_entries(config.get("asr", {}))
    out["asr"] = asr.all() if asr else []
    return out


def manifest_path(entry: Entry, store: str | Path) -> Path:
    return Path(store) / "manifests" / f"{entry.key}.json"


def receipt_path(entry: Entry) -> Path:
    return RECEIPTS_DIR / f"{entry.key}.json"


# ---------------------------------------------------------------------------------------------
# manifests


def read_manifest(entry: Entry, store: str | Path) -> dict[str, Any] | None:
    path = manifest_path(entry, store)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("schema") != MANIFEST_SCHEMA or data.get("version") != MANIFEST_VERSION:
        return None
    return data


def problem_with(manifest: dict[str, Any], entry: Entry, store: Path) -> str | None:
    """Why a manifest does not describe a usable copy of `entry` (None: it does)."""
    if manifest.get("entry") != entry.to_dict():
        return "its manifest describes another model"
    for rel, info in manifest.get("files", {}).items():
        f = store / rel
        if not f.is_file():
            return f"{f} is missing"
        if f.stat().st_size != info["size"]:
            return f"{f} has {f.stat().st_size} bytes, the manifest says {info['size']}"
    if not (store / manifest["path"]).exists():
        return f"{store / manifest['path']} is missing"
    return None


def require(entry: Entry, store: str | Path | None = None) -> dict[str, Any]:
    """The manifest of `entry` in the store; ModelNotInStore (naming the model and how to
    fetch it) where the store lacks it or holds an incomplete copy."""
    store = model_store(store)
    manifest = read_manifest(entry, store)
    hint = FETCH_HINT.format(store=store)
    if manifest is None:
        raise ModelNotInStore(
            f"model {entry.describe()} is not in the model store {store} (no "
            f"{manifest_path(entry, store)}); jobs load models only from the store, with hub "
            f"access off: {hint}"
        )
    problem = problem_with(manifest, entry, store)
    if problem:
        raise ModelNotInStore(
            f"model {entry.describe()} in the model store {store} is incomplete ({problem}): "
            f"{hint.replace('fetch-models', 'fetch-models --refresh')}"
        )
    return manifest


@dataclass(frozen=True)
class Stored:
    """A model found in the store, as a job loads it."""

    entry: Entry
    store: Path
    manifest: dict[str, Any]

    @property
    def path(self) -> Path:
        """The snapshot folder (hf), the checkpoint file (open_clip) or the file (url)."""
        return self.store / self.manifest["path"]

    def identity(self) -> dict[str, Any]:
        """What shard metadata records about where the weights came from."""
        return {
            "revision": dict(self.manifest["revision"]),
            "store": str(self.store.resolve()),
            "store_entry": self.entry.key,
            "source": self.manifest.get("source"),
        }


def stored(entry: Entry | None, store: str | Path | None = None) -> Stored | None:
    if entry is None:
        return None
    s = model_store(store)
    return Stored(entry, s, require(entry, s))


def stored_encoder(params: Any, store: str | Path | None = None) -> Stored | None:
    """The store copy an encoder (EncoderParams or its config section) loads, None for
    references that need none (demo:, package:, local paths)."""
    section = params if isinstance(params, Mapping) else vars(params)
    return stored(encoder_entry(section), store)


def stored_asr(params: Any, store: str | Path | None = None) -> dict[str, Path] | None:
    """For WhisperX: the Whisper model folder, the alignment checkpoints' folder (torch.hub's
    model_dir) and the NLTK data folder, all from the store (None for other backends)."""
    section = params if isinstance(params, Mapping) else vars(params)
    entries = asr_entries(section)
    if entries is None:
        return None
    s = model_store(store)
    model = stored(entries.model, s)
    align = stored(entries.align, s)
    stored(entries.punkt, s)
    return {
        "model": model.path if model else Path(section["model"]).expanduser(),
        "align_dir": align.path.parent,
        "nltk_data": s / "nltk",
    }
