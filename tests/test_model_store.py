"""The model store: hub models fetched once into a folder, then loaded from there only.

No hub can be reached here, so a stand-in hub serves tiny models built on the spot (a random
Wav2Vec2 and BERT saved with transformers, a tiny open_clip model, fake CTranslate2 and
alignment files): its `snapshot_download` / `hf_hub_download` write exactly what
huggingface_hub's write into the cache folder they are given (blobs, snapshots/COMMIT,
refs/REVISION). Fetching goes through those; loading goes through the real libraries, with
sockets forbidden in process and a dead proxy plus HF_HUB_OFFLINE in subprocesses.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

from mepr import shards
from mepr.cli import main
from mepr.config import AsrParams, EncoderParams
from mepr.embed import fetch as mf
from mepr.embed import store as ms

REPO = Path(__file__).resolve().parents[1]
CLIP_NAME, CLIP_TAG = "mepr-test-clip", "test"
AUDIO = EncoderParams(kind="wav2vec2", model="test-org/tiny-wav2vec2", window_s=0.5)
TEXT = EncoderParams(kind="hf_text", model="test-org/tiny-bert", revision="v1.0", pooling="mean")
CLIP = EncoderParams(kind="open_clip", model=CLIP_NAME, pretrained=CLIP_TAG)
CLIP_HUB = EncoderParams(kind="open_clip", model="hf-hub:test-org/tiny-clip-hub")
WHISPER = AsrParams(backend="whisperx", model="test-org/faster-whisper-tiny", language="en")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class FakeHub:
    """Local folders (ROOT/ORG/NAME) served as hub repositories, written into a cache folder
    the way huggingface_hub writes its downloads; records every call."""

    def __init__(self, root: Path):
        self.root = root
        self.calls: list[tuple[str, str, str | None]] = []

    @staticmethod
    def commit(repo_id: str, revision: str | None) -> str:
        if revision and re.fullmatch(r"[0-9a-f]{40}", revision):
            return revision
        return hashlib.sha1(f"{repo_id}@{revision or 'main'}".encode()).hexdigest()

    def _place(self, repo_id: str, revision: str | None, cache_dir, files: list[str]) -> Path:
        base = Path(cache_dir) / f"models--{repo_id.replace('/', '--')}"
        commit = self.commit(repo_id, revision)
        snap = base / "snapshots" / commit
        for rel in files:
            src = self.root / repo_id / rel
            blob = base / "blobs" / _sha256(src)
            blob.parent.mkdir(parents=True, exist_ok=True)
            if not blob.exists():
                shutil.copyfile(src, blob)
            link = snap / rel
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(os.path.relpath(blob, link.parent))
        if revision is None or commit != revision:  # a branch or tag: refs/NAME -> commit
            (base / "refs").mkdir(parents=True, exist_ok=True)
            (base / "refs" / (revision or "main")).write_text(commit)
        return snap

    def snapshot_download(self, repo_id, *, revision=None, cache_dir=None, **kw):
        from huggingface_hub.utils import filter_repo_objects

        self.calls.append(("snapshot_download", repo_id, revision))
        src = self.root / repo_id
        if not src.is_dir():
            raise FileNotFoundError(f"no repository {repo_id}")
        files = [p.relative_to(src).as_posix() for p in sorted(src.rglob("*")) if p.is_file()]
        allow, ignore = kw.get("allow_patterns"), kw.get("ignore_patterns")
        files = list(filter_repo_objects(files, allow_patterns=allow, ignore_patterns=ignore))
        return str(self._place(repo_id, revision, cache_dir, files))

    def hf_hub_download(self, repo_id, filename, *, revision=None, cache_dir=None, **_):
        self.calls.append(("hf_hub_download", repo_id, revision))
        if not (self.root / repo_id / filename).is_file():
            raise FileNotFoundError(f"{repo_id} has no {filename}")
        return str(self._place(repo_id, revision, cache_dir, [filename]) / filename)


@pytest.fixture(scope="module")
def clip_registered():
    """A tiny open_clip architecture with a pretrained tag served from the (fake) hub."""
    import open_clip
    from open_clip import pretrained

    from mepr.embed.demo_models import TINY_CLIP

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(open_clip.factory._MODEL_CONFIGS, CLIP_NAME, TINY_CLIP)
        mp.setitem(
            pretrained._PRETRAINED,
            CLIP_NAME,
            {CLIP_TAG: pretrained._pcfg(hf_hub="test-org/tiny-clip/")},
        )
        yield


@pytest.fixture(scope="module")
def hub(tmp_path_factory, clip_registered) -> FakeHub:
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from mepr.embed.demo_models import BUILDERS, build_demo_encoder

    root = tmp_path_factory.mktemp("hub")
    w2v = root / "test-org/tiny-wav2vec2"
    w2v.mkdir(parents=True)
    BUILDERS["tiny-wav2vec2"](w2v)
    (w2v / "README.md").write_text("a model card")

    bert = root / "test-org/tiny-bert"
    bert.mkdir(parents=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "known", "sentence", "hello"]
    (bert / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(bert / "vocab.txt")).save_pretrained(bert)
    config = BertConfig(
        vocab_size=len(words),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(bert)
    # what real repositories also carry: PyTorch weights beside the safetensors, an ONNX export
    shutil.copyfile(bert / "model.safetensors", bert / "pytorch_model.bin")
    (bert / "onnx").mkdir()
    (bert / "onnx/model.onnx").write_bytes(b"onnx")

    clip_hub = build_demo_encoder("tiny-clip", root / "test-org/tiny-clip-hub")
    (root / "test-org/tiny-clip").mkdir()
    shutil.copyfile(
        clip_hub / "open_clip_model.safetensors",
        root / "test-org/tiny-clip/open_clip_model.safetensors",
    )

    ct2 = root / "test-org/faster-whisper-tiny"
    ct2.mkdir()
    for name in ("config.json", "preprocessor_config.json", "tokenizer.json", "vocabulary.json"):
        (ct2 / name).write_text("{}")
    (ct2 / "model.bin").write_bytes(os.urandom(1024))
    (ct2 / "README.md").write_text("not needed")

    web = root / "web"  # what the URLs of the ASR entries serve
    web.mkdir()
    (web / "align.pth").write_bytes(os.urandom(512))
    with zipfile.ZipFile(web / "punkt_tab.zip", "w") as zf:
        zf.writestr("punkt_tab/english/sent_starters.txt", "however\n")
    return FakeHub(root)


def _serve(mp: pytest.MonkeyPatch, hub: FakeHub) -> None:
    """Point every download the store makes at the fake hub."""
    import huggingface_hub
    from open_clip import pretrained

    mp.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    mp.setattr(pretrained, "hf_hub_download", hub.hf_hub_download)
    files = {
        ms.PUNKT_TAB: hub.root / "web/punkt_tab.zip",
        ms.TORCHAUDIO_MODELS + ms.ALIGN_CHECKPOINTS["en"]: hub.root / "web/align.pth",
    }
    mp.setattr(mf, "_open_url", lambda url: io.BytesIO(files[url].read_bytes()))
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # fetching needs the (fake) hub
        mp.delenv(var, raising=False)


def _entries() -> list[ms.Entry]:
    found = [ms.encoder_entry(vars(p)) for p in (AUDIO, TEXT, CLIP, CLIP_HUB)]
    return [*found, *ms.asr_entries(vars(WHISPER)).all()]


@pytest.fixture(scope="module")
def filled(tmp_path_factory, hub) -> Path:
    """A store holding every entry of the tests, fetched from the fake hub."""
    store = tmp_path_factory.mktemp("store") / "models"
    with pytest.MonkeyPatch.context() as mp:
        _serve(mp, hub)
        for entry in _entries():
            _, fetched = mf.fetch(entry, store)
            assert fetched
    return store


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt fails; the offline switches are restored afterwards."""

    def refuse(*args, **kwargs):
        raise OSError("network access attempted in a test that forbids it")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE", "NLTK_DATA"):
        monkeypatch.delenv(var, raising=False)
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", constants.HF_HUB_OFFLINE)


def _offline_env(store: Path) -> dict[str, str]:
    """A subprocess environment in which no connection can succeed."""
    env = {k: v for k, v in os.environ.items() if k.lower() not in {"no_proxy"}}
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens there
    env.update(
        PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        MEPR_MODEL_STORE=str(store),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HTTPS_PROXY=dead,
        HTTP_PROXY=dead,
        ALL_PROXY=dead,
        https_proxy=dead,
        http_proxy=dead,
        all_proxy=dead,
    )
    return env


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    pcm = {
        v: (rng.normal(0, 0.1, int(16000 * s)) * 32767).astype("<i2")
        for v, s in (("a", 1.2), ("b", 0.7))
    }
    audio = [
        {
            "video_id": v,
            "sample_rate": 16000,
            "n_samples": len(x),
            "has_audio": True,
            "pcm_s16le": x.tobytes(),
        }
        for v, x in pcm.items()
    ]
    texts = [
        {"video_id": "a", "text": "hello world", "source": "corpus", "words": []},
        {"video_id": "b", "text": "a known sentence", "source": "corpus", "words": []},
    ]
    return {
        "audio": shards.write_table(audio, shards.AUDIO, d / "audio.parquet"),
        "text": shards.write_table(texts, shards.TRANSCRIPTS, d / "text.parquet"),
    }


# ---------------------------------------------------------------------------------------------
# entries


def test_config_entries_name_what_each_job_loads():
    from mepr.config import load_workflow_config as load_configs

    paper = ms.config_entries(load_configs([str(REPO / "configs/paper.yaml")]))
    assert paper["face"] == paper["body"] == paper["scene"]
    assert [e.key for e in paper["face"]] == ["open_clip/ViT-B-32@openai"]
    (audio,) = paper["audio"]
    assert audio.ref == "audeering/wav2vec2-large-robust-12-ft-emotion-msp-dim"
    assert re.fullmatch(r"[0-9a-f]{40}", audio.revision) and audio.key.endswith(audio.revision)
    assert re.fullmatch(r"[0-9a-f]{40}", paper["text"][0].revision)
    whisper, align, punkt = paper["asr"]
    assert whisper.ref == "Systran/faster-whisper-large-v3" and whisper.files == "ctranslate2"
    assert re.fullmatch(r"[0-9a-f]{40}", whisper.revision)
    assert align.dest == "torchaudio/wav2vec2_fairseq_base_ls960_asr_ls960.pth"
    assert punkt.files == "zip"
    # the demo: built (demo:) and packaged (package:) models, offline ASR: nothing to fetch
    demo = ms.config_entries(load_configs([]))
    assert all(not entries for entries in demo.values())
    # a size name means its Systran conversion; unknown names and pins are refused clearly
    assert ms.whisper_repo("large-v3") == ms.whisper_repo("large") == whisper.ref
    with pytest.raises(ValueError, match="not a faster-whisper model"):
        ms.asr_entries({"backend": "whisperx", "model": "en-us"})
    with pytest.raises(ValueError, match="offline alignment covers"):
        ms.asr_entries({"backend": "whisperx", "model": "large-v3", "language": "xx"})
    with pytest.raises(ValueError, match="hf-hub:ORG/REPO"):
        ms.encoder_entry(
            {"kind": "open_clip", "model": "ViT-B-32", "pretrained": "openai", "revision": "abc"}
        )
    assert ms.encoder_entry({"kind": "wav2vec2", "model": "demo:tiny-wav2vec2"}) is None
    assert ms.encoder_entry({"kind": "open_clip", "model": "ViT-B-32", "pretrained": None}) is None


def test_changing_one_encoder_changes_one_entry():
    """Entries (hence the workflow's fetch jobs) are per model: a new revision or encoder is a
    new key, the others stay as they were."""
    base = {
        m: {"kind": "hf_text", "model": "org/a", "revision": "r1"}
        for m in ("face", "body", "scene", "audio", "text")
    }
    changed = {**base, "audio": {"kind": "wav2vec2", "model": "org/a", "revision": "r2"}}
    keys = [
        {e.key for es in ms.config_entries({"encoders": enc}).values() for e in es}
        for enc in (base, changed)
    ]
    assert keys[0] == {"hf/org--a@r1"} and keys[1] == {"hf/org--a@r1", "hf/org--a@r2"}


# ---------------------------------------------------------------------------------------------
# fetching


def test_fetch_writes_the_store_and_a_manifest_per_model(filled, hub):
    for entry in _entries():
        manifest = json.loads(ms.manifest_path(entry, filled).read_text())
        assert manifest["schema"] == ms.MANIFEST_SCHEMA and manifest["key"] == entry.key
        assert manifest["entry"] == entry.to_dict()
        for rel, info in manifest["files"].items():  # every file, hashed as stored
            assert _sha256(filled / rel) == info["sha256"]
            assert (filled / rel).stat().st_size == info["size"]
        assert (filled / manifest["path"]).exists()
    text = ms.require(ms.encoder_entry(vars(TEXT)), filled)
    assert text["revision"] == {
        "requested": "v1.0",
        "resolved": hub.commit("test-org/tiny-bert", "v1.0"),
    }
    names = {Path(rel).name for rel in text["files"]}
    assert {"model.safetensors", "config.json", "tokenizer.json", "vocab.txt"} <= names
    assert not names & {"pytorch_model.bin", "model.onnx"}  # safetensors only, no exports
    whisper = ms.require(ms.asr_entries(vars(WHISPER)).model, filled)
    assert whisper["revision"]["requested"] == "main"
    # what faster-whisper loads, not the README
    loaded = {"config.json", "preprocessor_config.json", "model.bin", "tokenizer.json"}
    assert {Path(r).name for r in whisper["files"]} == loaded | {"vocabulary.json"}
    clip = ms.require(ms.encoder_entry(vars(CLIP)), filled)
    assert clip["source"]["hf_hub"] == "test-org/tiny-clip/"  # what the tag resolves to
    assert clip["path"].startswith("open_clip/models--test-org--tiny-clip/snapshots/")
    assert clip["revision"]["resolved"] == hub.commit("test-org/tiny-clip", None)
    assert (filled / "nltk/tokenizers/punkt_tab/english/sent_starters.txt").is_file()
    assert not list(filled.rglob(".*.json.*"))  # no temporary manifest left behind


def test_a_second_fetch_does_nothing(filled, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    def no_download(*args, **kwargs):
        raise AssertionError("fetched again")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_download)
    monkeypatch.setattr(mf, "_open_url", no_download)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # and needs no hub to say so
    before = {p: p.stat().st_mtime_ns for p in (filled / "manifests").rglob("*.json")}
    for entry in _entries():
        assert mf.fetch(entry, filled)[1] is False
    entry = ms.encoder_entry(vars(TEXT))
    receipt = tmp_path / "receipt.json"
    args = ["fetch-models", "--store", str(filled), "--entry", json.dumps(entry.to_dict())]
    assert main([*args, "--receipt", str(receipt)]) == 0
    assert capsys.readouterr().out.startswith(f"present {entry.key}")
    assert json.loads(receipt.read_text())["revision"]["requested"] == "v1.0"
    assert {p: p.stat().st_mtime_ns for p in (filled / "manifests").rglob("*.json")} == before


def test_an_incomplete_entry_is_fetched_again_and_refused_until_then(filled, hub, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(filled, store, symlinks=True)
    entry = ms.encoder_entry(vars(AUDIO))
    manifest = ms.require(entry, store)
    weights = next(store / r for r in manifest["files"] if r.endswith("model.safetensors"))
    weights.unlink()
    with pytest.raises(ms.ModelNotInStore, match="incomplete.*model.safetensors.*--refresh"):
        ms.require(entry, store)
    with pytest.MonkeyPatch.context() as mp:
        _serve(mp, hub)
        assert mf.fetch(entry, store)[1] is True
    assert ms.require(entry, store)["files"] == manifest["files"]


# ---------------------------------------------------------------------------------------------
# loading: only from the store, with the hub out of reach


def test_embedding_loads_from_the_store_without_network(filled, inputs, no_network, monkeypatch):
    from mepr.embed.shard import embed_audio_shard, embed_text_shard

    monkeypatch.setenv(ms.STORE_ENV, str(filled))
    audio = embed_audio_shard(inputs["audio"], AUDIO)
    text = embed_text_shard(inputs["text"], TEXT)
    assert os.environ["HF_HUB_OFFLINE"] == os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert [r["video_id"] for r in audio.rows] == ["a", "b"] and audio.rows[0]["dim"] == 64
    assert audio.rows[0]["n_steps"] == 3 and text.rows[0]["dim"] == 32
    for result, params in ((audio, AUDIO), (text, TEXT)):
        ident = result.meta["encoder_identity"]
        entry = ms.encoder_entry(vars(params))
        manifest = ms.require(entry, filled)
        assert ident["revision"] == manifest["revision"]
        assert ident["revision"]["requested"] == (params.revision or "main")
        assert re.fullmatch(r"[0-9a-f]{40}", ident["revision"]["resolved"])
        assert ident["store"] == str(filled.resolve()) and ident["store_entry"] == entry.key
        assert ident["resolved"] == str(filled / manifest["path"])
        assert len(ident["weights"]["model.safetensors"]) == 64


def test_embed_cli_runs_offline_in_a_subprocess(filled, inputs, tmp_path):
    """What an embedding job runs on a compute node: hub unreachable, store filled."""
    out = tmp_path / "text.parquet"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mepr",
            "embed",
            "--modality",
            "text",
            "--input",
            str(inputs["text"]),
        ]
        + ["--params", json.dumps(vars(TEXT)), "--out", str(out)]
        + ["--failures", str(tmp_path / "f.parquet")],
        env=_offline_env(filled),
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ident = shards.read_params(out)["encoder_identity"]
    assert ident["revision"]["requested"] == "v1.0" and ident["store"] == str(filled.resolve())
    assert shards.read_params(out)["encoder"]["revision"] == "v1.0"


def test_a_model_missing_from_the_store_fails_naming_it(
    tmp_path, inputs, no_network, monkeypatch, capsys
):
    from mepr.embed.text import TextEncoder

    empty = tmp_path / "empty-store"
    with pytest.raises(ms.ModelNotInStore) as err:
        TextEncoder(TEXT, store=empty)
    message = str(err.value)
    assert "'test-org/tiny-bert' at revision 'v1.0'" in message and str(empty) in message
    assert "snakemake --cores 1 fetch_models" in message and "mepr fetch-models" in message
    # the job's command says the same and fails
    monkeypatch.setenv(ms.STORE_ENV, str(empty))
    args = [
        "embed",
        "--modality",
        "text",
        "--input",
        str(inputs["text"]),
        "--params",
        json.dumps(vars(TEXT)),
    ]
    assert (
        main(
            [*args, "--out", str(tmp_path / "o.parquet"), "--failures", str(tmp_path / "f.parquet")]
        )
        == 1
    )
    assert (
        "mepr embed: error: model 'test-org/tiny-bert' at revision 'v1.0' is not in"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "o.parquet").exists()


def test_open_clip_models_load_from_the_store_without_network(
    filled, clip_registered, no_network, monkeypatch
):
    """A name + pretrained tag through open_clip's own cache (the store's open_clip/), and an
    hf-hub: repository from its snapshot folder, both with hub access off."""
    from mepr.embed.image import ClipImageEncoder

    monkeypatch.setenv(ms.STORE_ENV, str(filled))
    images = [np.full((224, 224, 3), 60 * i, np.uint8) for i in range(3)]
    for params in (CLIP, CLIP_HUB):
        enc = ClipImageEncoder(params)
        assert enc.encode(images).shape == (3, 64)
        ident = enc.identity()
        manifest = ms.require(ms.encoder_entry(vars(params)), filled)
        assert ident["revision"] == manifest["revision"] and ident["store"] == str(filled.resolve())
        assert ident["resolved"] == str(filled / manifest["path"])
        (digest,) = ident["weights"].values()
        assert digest == next(
            f["sha256"] for r, f in manifest["files"].items() if r.endswith("model.safetensors")
        )
    assert ms.require(ms.encoder_entry(vars(CLIP_HUB)), filled)["revision"]["requested"] == "main"


def test_whisperx_loads_only_from_the_store(filled, tmp_path, no_network, monkeypatch):
    import types

    from mepr.asr import get_transcriber

    calls: dict = {}

    def load_model(name, device, compute_type, language, local_files_only):
        calls["model"] = (name, local_files_only)
        assert os.environ["HF_HUB_OFFLINE"] == "1"  # switched off before whisperx ran
        return object()

    def load_align_model(language_code, device, model_dir):
        calls["align"] = (language_code, model_dir)
        return object(), {}

    fake = types.SimpleNamespace(load_model=load_model, load_align_model=load_align_model)
    monkeypatch.setitem(sys.modules, "whisperx", fake)
    monkeypatch.setenv(ms.STORE_ENV, str(filled))
    get_transcriber(WHISPER)
    snapshot = ms.require(ms.asr_entries(vars(WHISPER)).model, filled)["path"]
    assert calls["model"] == (str(filled / snapshot), True)
    assert calls["align"] == ("en", str(filled / "torchaudio"))
    assert (Path(calls["align"][1]) / ms.ALIGN_CHECKPOINTS["en"]).is_file()
    assert os.environ["NLTK_DATA"].split(os.pathsep)[0] == str(filled / "nltk")
    # an empty store: the transcripts job stops, naming the model
    monkeypatch.setenv(ms.STORE_ENV, str(tmp_path / "none"))
    with pytest.raises(
        ms.ModelNotInStore, match="'test-org/faster-whisper-tiny' at revision 'main'"
    ):
        get_transcriber(WHISPER)


def test_predict_builds_hub_encoders_from_the_store(filled, no_network, monkeypatch):
    """`mepr predict` reads the encoder sections from the run's shards (revision included)
    and builds the encoders like the embedding jobs, so hub models come from the store."""
    from mepr.predict.spec import resolve_encoder

    monkeypatch.setenv(ms.STORE_ENV, str(filled))
    params = resolve_encoder(vars(TEXT), Path("unused"), None)
    assert params == TEXT
    from mepr.embed.text import TextEncoder

    assert TextEncoder(params).identity()["revision"]["requested"] == "v1.0"


# ---------------------------------------------------------------------------------------------
# the workflow


def test_workflow_fetches_on_the_submitting_node_before_embedding(tmp_path):
    from test_workflow import snakemake

    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    cfg["encoders"]["text"] = {"kind": "hf_text", "model": "org/text-model", "revision": "r1"}
    cfg["asr"] = {"backend": "whisperx", "model": "large-v3", "language": "en"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    targets = [f"results/embeddings/demo_pers/{m}/shard-0.parquet" for m in ("text", "face")]
    jobs = _dry_run(snakemake(tmp_path, "-n", *targets))
    fetched = {j["output"] for j in jobs if j["rule"] == "fetch_model"}
    text_key = "hf/org--text-model@r1"
    assert fetched == {
        f"results/models/{text_key}.json",
        "results/models/hf/Systran--faster-whisper-large-v3@main.json",
        "results/models/url/torchaudio/wav2vec2_fairseq_base_ls960_asr_ls960.pth.json",
        "results/models/url/nltk/tokenizers/punkt_tab.zip.json",
    }
    by_rule = {}
    for j in jobs:
        by_rule.setdefault(j["rule"], []).append(j)
    (text,) = [j for j in by_rule["embed"] if "text" in j["output"]]
    (face,) = [j for j in by_rule["embed"] if "face" in j["output"]]
    assert f"results/models/{text_key}.json" in text["input"]
    assert not any("results/models/" in f for f in face["input"])  # demo encoder: no fetch
    (tr,) = by_rule["transcripts"]
    assert sum("results/models/" in f for f in tr["input"]) == 3
    # a local rule: it runs where snakemake runs (the login node), never through the executor
    block = (REPO / "workflow/rules/embed.smk").read_text().split("rule fetch_model:")[1]
    assert "localrule: True" in block.split("\nrule ")[0]
    # one more hub encoder: one more fetch job; the fetched one is not fetched again
    for f in fetched:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("{}")
    cfg["encoders"]["audio"] = {"kind": "wav2vec2", "model": "org/audio-model"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    jobs = _dry_run(snakemake(tmp_path, "-n", "fetch_models"))
    assert [j["output"] for j in jobs if j["rule"] == "fetch_model"] == [
        "results/models/hf/org--audio-model@main.json"
    ]


def _dry_run(proc) -> list[dict]:
    """Each planned job's rule, inputs and output (as one string) from a dry run's log."""
    jobs: list[dict] = []
    for line in (proc.stdout + proc.stderr).splitlines():
        if m := re.match(r"^(?:local)?(?:rule|checkpoint) (\w+):", line):
            jobs.append({"rule": m.group(1), "input": [], "output": ""})
        elif jobs and (m := re.match(r"^\s+input: (.*)", line)):
            jobs[-1]["input"] = m.group(1).split(", ")
        elif jobs and (m := re.match(r"^\s+output: (.*)", line)):
            jobs[-1]["output"] = m.group(1)
    return jobs
