"""The one place a configured device name (`auto`, `cpu`, `cuda`, `cuda:N`) becomes a device."""

from __future__ import annotations

NO_CUDA = "device 'cuda' requested but torch sees no CUDA device"


def pick_device(wanted: str, no_cuda: str = NO_CUDA) -> str:
    """`auto`: CUDA when torch sees a device, else the CPU; `cuda` without one raises
    RuntimeError(`no_cuda`); any other name is returned as given."""
    import torch

    if wanted == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if wanted == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(no_cuda)
    return wanted
