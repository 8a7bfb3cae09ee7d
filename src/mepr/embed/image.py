"""CLIP image embeddings through open_clip (face, body and scene crops).

Batches are formed across videos (every crop of a shard, in order). Preprocessing is the
model's own open_clip transform; when that transform is the standard one (resize the short
side to S, centre crop S x S, to tensor, normalise) and an image's short side already is S
(face/body crops of `frames.crop_size` = S, scene images resized to it), the resize is a copy,
so a batch is only centre-cropped and normalised with the transform's own arithmetic
(x / 255, then (x - mean) / std): the same numbers without per-image PIL work. On a CPU the
crop threads normalise through per-channel lookup tables; for a GPU they copy uint8 crops (a
quarter of the bytes to move) and the GPU normalises them, or nvJPEG decodes and crops there.

The tower's activation follows the weights (`encoders.<modality>.activation`, `quick_gelu_for`):
OpenAI trained CLIP with QuickGELU, but open_clip's plain `ViT-B-32` config is built with GELU,
and loading the `openai` weights into it only warns; every embedding would then be off. So
with `auto` the tower is built with QuickGELU whenever the weights were trained with it.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from mepr.config import EncoderParams
from mepr.devices import pick_device
from mepr.embed import (
    library_versions,
    resolve_model_ref,
    store_identity,
    weights_digest,
)
from mepr.embed.refs import ModelRef
from mepr.embed.store import go_offline, stored_encoder
from mepr.media import jpeg

_POOLING = {"tok": "class token", "avg": "mean of patch tokens", "none": "all tokens"}


ACTIVATIONS = ("auto", "quick_gelu", "gelu")  # encoders.<image modality>.activation


def _is_openai_name(name: str) -> bool:
    """A hub repository or folder named as timm names its conversions of OpenAI's weights
    (timm/vit_base_patch32_clip_224.openai)."""
    return name.rstrip("/").rsplit("/", 1)[-1].lower().endswith(".openai")


def quick_gelu_for(params: EncoderParams) -> bool:
    """Whether the tower must be built with QuickGELU. `activation: auto` answers from where
    the weights come from: a pretrained tag open_clip lists as trained with QuickGELU (every
    `openai` tag, LAION-400M's), the tag `openai` for any model name, or an `hf-hub:` / local
    repository named NAME.openai. A local weights file says nothing about its origin: name the
    activation then. Configs that already say quick_gelu (ViT-B-32-quickgelu, a local-dir's
    open_clip_config.json) get it from open_clip either way."""
    if params.activation not in ACTIVATIONS:
        raise ValueError(f"encoders activation must be one of {ACTIVATIONS}: {params.activation!r}")
    if params.activation != "auto":
        return params.activation == "quick_gelu"
    ref = ModelRef.parse(params.model)
    if ref.kind == "local-dir" or ref.name.startswith("hf-hub:"):
        return _is_openai_name(ref.name.removeprefix("hf-hub:"))
    tag = params.pretrained
    if ref.kind != "plain" or not tag or Path(tag).expanduser().is_file():
        return False
    clean = tag.lower().replace("-", "_")  # open_clip's own normalisation of tags
    if clean == "openai":
        return True
    from open_clip import pretrained as oc

    return bool(oc.get_pretrained_cfg(ref.name.replace("/", "-"), clean).get("quick_gelu"))


def tower_activation(visual: torch.nn.Module) -> str:
    """The MLP activation the built tower really uses (what the shard records)."""
    from open_clip.transformer import QuickGELU

    kinds = {type(m) for m in visual.modules()}
    if QuickGELU in kinds:
        return "quick_gelu"
    return "gelu" if torch.nn.GELU in kinds else "other"


def _standard_transform(preprocess) -> tuple[int, np.ndarray, np.ndarray] | None:
    """(S, mean, std) when `preprocess` is Resize(S) -> CenterCrop(S) -> RGB -> tensor -> Normalize."""
    steps = getattr(preprocess, "transforms", None)
    names = [type(t).__name__ for t in steps or []]
    if names != ["Resize", "CenterCrop", "MaybeConvertMode", "MaybeToTensor", "Normalize"]:
        return None
    resize, crop, _, _, norm = steps
    size = resize.size
    size = size[0] if isinstance(size, (list, tuple)) and len(size) == 1 else size
    if not isinstance(size, int) or tuple(crop.size) != (size, size):
        return None
    if getattr(resize, "max_size", None) is not None:
        return None
    return size, np.asarray(norm.mean, np.float32), np.asarray(norm.std, np.float32)


PREPROCESS = ("open_clip", "clip_processor")  # encoders.<image modality>.preprocess


def _centre(h: int, w: int, s: int, floor: bool = False) -> tuple[int, int]:
    """Top-left corner of the centre S x S crop of an H x W image: torchvision's CenterCrop
    rounds the offsets, CLIPProcessor (`floor`) rounds them down."""
    if floor:
        return (h - s) // 2, (w - s) // 2
    return int(round((h - s) / 2.0)), int(round((w - s) / 2.0))


class FloorCentreCrop:
    """CLIPProcessor's centre crop of a PIL image: the S x S window at floor offsets. The
    rest of its steps are open_clip's for OpenAI's CLIP (short side to S, bicubic, long side
    truncated; x / 255; OpenAI's mean and std), so with this crop in the transform the two
    agree; torchvision's CenterCrop rounds the offset half to even, so the two are a pixel
    apart where the resized long side exceeds S by 3 mod 4 (e.g. 640 x 427 -> 335 x 224)."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, image: Image.Image) -> Image.Image:
        top, left = _centre(image.height, image.width, self.size, floor=True)
        return image.crop((left, top, left + self.size, top + self.size))

    def __repr__(self) -> str:
        return f"FloorCentreCrop(size={self.size})"


def _with_crop(preprocess, std, params: EncoderParams):
    """The model's transform, with CLIPProcessor's centre crop for `preprocess: clip_processor`
    (only a standard transform has a crop step to swap)."""
    if params.preprocess not in PREPROCESS:
        raise ValueError(f"encoders preprocess must be one of {PREPROCESS}: {params.preprocess!r}")
    if params.preprocess == "open_clip":
        return preprocess
    if std is None:
        raise ValueError(
            f"preprocess: clip_processor needs open_clip's standard transform (resize, centre "
            f"crop, normalise); {params.model} has {preprocess}"
        )
    steps = list(preprocess.transforms)
    steps[1] = FloorCentreCrop(std[0])
    return type(preprocess)(steps)


def _in_parallel(pool: Executor | None, workers: int, n: int, fill) -> None:
    """fill(indices) over range(n), as `workers` strided parts on `pool` (if given)."""
    if pool is not None and workers > 1 and n > 1:
        list(pool.map(fill, [range(k, n, workers) for k in range(workers)]))
    else:
        fill(range(n))


@dataclass
class GpuCrops:
    """(N, S, S, 3) uint8 crops decoded on the GPU on a side stream, ready after `ready`."""

    crops: torch.Tensor
    ready: torch.cuda.Event


def input_dtype(visual: torch.nn.Module) -> torch.dtype:
    """The dtype images must have: that of the tower's first conv / linear weight. open_clip's
    fp16 precision converts those layers only (norms and embeddings stay fp32), so the first
    parameter's dtype is not the answer."""
    for m in visual.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            return m.weight.dtype
    return next(visual.parameters()).dtype


class ClipImageEncoder:
    def __init__(self, params: EncoderParams, store=None):
        self.stored = stored_encoder(params, store)  # a hub model: its store copy
        go_offline()  # before open_clip (and huggingface_hub) are imported
        import open_clip

        self.params = params
        self.device = pick_device(params.device)
        pretrained, cache_dir = params.pretrained, None
        if self.stored is None:
            self.resolved = resolve_model_ref(params.model)
            demo = ModelRef.parse(params.model).is_demo
            ref = f"local-dir:{self.resolved}" if demo else self.resolved
        elif self.stored.entry.kind == "hf":  # hf-hub:REPO at a revision: its snapshot folder
            self.resolved = str(self.stored.path)
            ref, pretrained = f"local-dir:{self.resolved}", None
        else:  # name + pretrained tag: open_clip finds the file in its cache, the store's
            self.resolved = str(self.stored.path)
            ref, cache_dir = params.model, str(self.stored.store / "open_clip")
        precision = "fp16" if self.device == "cuda" else "fp32"
        model, _, preprocess = open_clip.create_model_and_transforms(
            ref,
            pretrained=pretrained,
            device=self.device,
            precision=precision,
            cache_dir=cache_dir,
            force_quick_gelu=quick_gelu_for(params),
        )
        self.model = model.eval()
        self.dtype = input_dtype(self.model.visual)
        self.batch_size = params.batch_size
        self.name = f"open_clip:{params.model}:{params.pretrained or ''}"
        std = _standard_transform(preprocess)
        self._floor = params.preprocess == "clip_processor"
        self.preprocess = _with_crop(preprocess, std, params)
        self._size = std[0] if std else None
        self._pinned: list[torch.Tensor] = []
        self._next = 0
        # on CUDA, JPEGs are decoded by nvJPEG (torchvision) on a side stream, overlapping
        # the forward pass; CPU threads are the fallback (and the only way on CPU)
        self._decode_stream = torch.cuda.Stream() if self.device == "cuda" else None
        if std:  # per-channel (1, 3, 1, 1) constants of Normalize, on the encoder's device
            self._mean, self._std = (
                torch.from_numpy(v).view(1, 3, 1, 1).to(self.device) for v in std[1:]
            )
            # the same arithmetic as a lookup per channel (uint8 -> float32), for CPU batches
            v = torch.arange(256, dtype=torch.float32).div(255)
            mean, sd = (torch.from_numpy(x)[:, None] for x in std[1:])
            self._lut = [np.ascontiguousarray(r.reshape(1, 256)) for r in ((v - mean) / sd).numpy()]

    @property
    def dim(self) -> int:
        return int(self.model.visual.output_dim)

    def identity(self) -> dict[str, Any]:
        """What produced the vectors: stored in every embedding shard's metadata."""
        visual = self.model.visual
        pool = str(getattr(visual, "pool_type", "tok"))
        local = Path(self.resolved)
        return {
            "library": "open_clip",
            "model": self.params.model,
            "resolved": self.resolved,
            "pretrained": self.params.pretrained,
            **store_identity(self.stored),
            "weights": weights_digest(local) if local.exists() else None,
            "layer": "image tower output (visual projection)",
            "pooling": _POOLING.get(pool, pool),
            "activation": tower_activation(visual),
            "normalised": False,
            "dim": self.dim,
            "image_size": list(getattr(visual, "image_size", ())),
            "preprocess": " ".join(repr(self.preprocess).split()),
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": self.device,
            "versions": library_versions("open_clip_torch", "torch", "torchvision", "pillow"),
        }

    # ---- preprocessing
    def crop_batch(
        self,
        images: list[np.ndarray],
        bgr: bool = False,
        out: torch.Tensor | None = None,
        pool: Executor | None = None,
        workers: int = 1,
        normalise: bool = False,
    ) -> torch.Tensor | None:
        """uint8 images -> (N, S, S, 3) uint8 RGB centre crops, or with `normalise` the
        transform's (N, 3, S, S) float32 (ToTensor + Normalize as per-channel lookup tables:
        one pass, the same numbers); into `out` when given, split into `workers` tasks for
        `pool` when given. None where the standard transform does not apply (another
        transform, or an image that needs resizing). OpenCV releases the GIL."""
        s = self._size
        if s is None or any(min(im.shape[:2]) != s for im in images):
            return None
        if out is None:
            shape = (len(images), 3, s, s) if normalise else (len(images), s, s, 3)
            out = torch.empty(shape, dtype=torch.float32 if normalise else torch.uint8)
        dst = out.numpy()
        source = (2, 1, 0) if bgr else (0, 1, 2)  # RGB plane c comes from image plane source[c]

        def fill(indices: range) -> None:
            for i in indices:
                im = images[i]
                top, left = _centre(*im.shape[:2], s, self._floor)
                crop = im[top : top + s, left : left + s]
                if normalise:
                    planes = cv2.split(crop)
                    for c in range(3):
                        cv2.LUT(planes[source[c]], self._lut[c], dst=dst[i, c])
                elif bgr:  # a numpy copy through a reversed view is several times slower
                    cv2.cvtColor(crop, cv2.COLOR_BGR2RGB, dst=dst[i])
                else:
                    dst[i] = crop

        _in_parallel(pool, workers, len(images), fill)
        return out

    def _staging(self, n: int) -> torch.Tensor | None:
        """A pinned host buffer for n crops (CUDA only): copies to the GPU from pinned memory
        run at full speed without the caller waiting. Three rotate: one being filled, one
        being copied, one spare; a batch is done with its buffer when forward returns."""
        if self.device != "cuda" or self._size is None or n > self.batch_size:
            return None
        if not self._pinned:
            shape = (self.batch_size, self._size, self._size, 3)
            self._pinned = [torch.empty(shape, dtype=torch.uint8).pin_memory() for _ in range(3)]
        self._next = (self._next + 1) % len(self._pinned)
        return self._pinned[self._next][:n]

    def prepare(
        self,
        images: list[np.ndarray],
        bgr: bool = False,
        pool: Executor | None = None,
        workers: int = 1,
    ) -> torch.Tensor:
        """What `forward` takes: for a GPU uint8 crops (a quarter of the bytes to move; the
        GPU normalises), on a CPU the transform's floats (normalised here, in the background,
        while the model runs). Call from one thread at a time (the staging buffers rotate)."""
        on_cpu = self.device == "cpu"
        staging = None if on_cpu else self._staging(len(images))
        crops = self.crop_batch(images, bgr, staging, pool, workers, normalise=on_cpu)
        if crops is not None:
            return crops
        rgb = [np.ascontiguousarray(im[..., ::-1]) if bgr else im for im in images]
        return torch.stack([self.preprocess(Image.fromarray(im)) for im in rgb])

    def prepare_jpegs(
        self, data: list[bytes], pool: Executor | None = None, workers: int = 1
    ) -> torch.Tensor | GpuCrops:
        """JPEG bytes -> what `forward` takes. On CUDA: nvJPEG batch decode on a side stream
        (when every image has the standard size); else decoded by `workers` CPU threads."""
        if self._decode_stream is not None and self._size is not None:
            gpu = self._decode_on_gpu(data)
            if gpu is not None:
                return gpu
        images: list[np.ndarray] = [None] * len(data)  # type: ignore[list-item]

        def decode(indices: range) -> None:
            for i in indices:
                images[i] = jpeg.decode(data[i])  # BGR where jpeg.DECODES_BGR (see prepare)

        _in_parallel(pool, workers, len(data), decode)
        return self.prepare(images, jpeg.DECODES_BGR, pool, workers)

    def _decode_on_gpu(self, data: list[bytes]) -> GpuCrops | None:
        from torchvision.io import ImageReadMode, decode_jpeg

        s = self._size
        with torch.cuda.stream(self._decode_stream):
            raw = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in data]
            images = decode_jpeg(raw, mode=ImageReadMode.RGB, device="cuda")
            if any(min(im.shape[1:]) != s for im in images):
                return None  # needs a resize: the CPU path does what the transform does
            crops = []
            for im in images:
                top, left = _centre(*im.shape[1:], s, self._floor)
                crops.append(im[:, top : top + s, left : left + s])
            batch = torch.stack(crops).permute(0, 2, 3, 1)  # NHWC, as the CPU path gives
            ready = torch.cuda.Event()
            ready.record(self._decode_stream)
        return GpuCrops(batch, ready)

    def normalise(self, crops: torch.Tensor) -> torch.Tensor:
        """(N, S, S, 3) uint8 -> (N, 3, S, S) float32 on the device: ToTensor + Normalize."""
        x = crops.to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div(255)
        return x.sub_(self._mean).div_(self._std)

    def preprocess_batch(self, images: list[np.ndarray], bgr: bool = False) -> torch.Tensor:
        """uint8 images (RGB, or BGR as OpenCV decodes them) -> (N, 3, S, S) float32, exactly
        as the model's transform makes them."""
        batch = self.prepare(images, bgr)
        return self.normalise(batch).cpu() if batch.dtype == torch.uint8 else batch

    # ---- forward
    @torch.inference_mode()
    def forward(self, batch: torch.Tensor | GpuCrops) -> np.ndarray:
        """A prepared batch (uint8 crops, GPU-decoded crops or preprocessed floats) ->
        (N, dim) float32."""
        if isinstance(batch, GpuCrops):
            torch.cuda.current_stream().wait_event(batch.ready)
            batch.crops.record_stream(torch.cuda.current_stream())  # made on the side stream
            batch = batch.crops
        x = self.normalise(batch) if batch.dtype == torch.uint8 else batch.to(self.device)
        out = self.model.encode_image(x.to(self.dtype))
        return out.float().cpu().numpy()

    def encode(self, images: list[np.ndarray]) -> np.ndarray:
        """RGB uint8 images -> (N, dim) float32 (not L2-normalised, as in the reference)."""
        b = self.batch_size
        out = [self.forward(self.prepare(images[i : i + b])) for i in range(0, len(images), b)]
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)
