"""Temporal encoders over padded sequences (B, T, D) with a boolean step mask (B, T).

``mask[b, t]`` is True where step t of sample b holds signal.  Masked steps may sit anywhere
(a frame without a face in the middle of a clip) and a row may be fully masked (a video
missing from a modality): every module here returns finite values for such rows, and
:func:`masked_mean` pools them to zeros.

Four encoders, chosen per modality and task by name (:func:`build_encoder`):

* ``transformer``: pre-norm self-attention blocks with a sinusoidal position encoding.
* ``mamba``: residual blocks around a selective state-space mixer (Mamba, Gu & Dao 2023).
  The mixer's parameters carry the names and shapes of ``mamba_ssm.modules.mamba_simple.Mamba``
  (``in_proj``, ``conv1d``, ``x_proj``, ``dt_proj``, ``A_log``, ``D``, ``out_proj``), and the scan
  has the argument layout of ``mamba_ssm``'s ``selective_scan_fn``, so the CUDA kernel can be
  dropped in (see :data:`selective_scan_kernel`).  The default is a pure-PyTorch scan.
* ``gated_mlp`` and ``postnorm_transformer``: the SSL-MEPR authors' encoders (their code calls
  the gated MLP "Mamba"), in :mod:`mepr.models.reference_layers`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

try:  # optional CUDA kernel; not installable in the reference environment
    from mamba_ssm.ops.selective_scan_interface import (  # type: ignore[import-not-found]
        selective_scan_fn as selective_scan_kernel,
    )
except Exception:  # noqa: BLE001 - any import problem means "no kernel"
    selective_scan_kernel = None

ENCODERS: tuple[str, ...] = ("mamba", "transformer", "gated_mlp", "postnorm_transformer")
# the encoders whose attention heads must divide the width
ATTENTION_ENCODERS: tuple[str, ...] = ("transformer", "postnorm_transformer")


def safe_mask(mask: torch.Tensor) -> torch.Tensor:
    """The mask with fully masked rows opened up, so attention never sees an empty key set."""
    return mask | ~mask.any(dim=-1, keepdim=True)


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of x (B, T, D) over the steps where mask (B, T) is True; zeros for empty rows."""
    w = mask.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


# --------------------------------------------------------------------------- selective scan
def _chunk_size(b: int, d: int, n: int, length: int, budget: int = 1 << 25) -> int:
    """Largest chunk (<= 32) whose (b, d, c, c, n) decay tensor stays within `budget` elements."""
    c = 32
    while c > 1 and b * d * n * c * c > budget:
        c //= 2
    return max(1, min(c, length))


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Selective scan  h_t = exp(Δ_t A) h_{t-1} + Δ_t B_t u_t,  y_t = C_t·h_t + D u_t.

    Shapes follow mamba_ssm: u, delta, z (b, d, l); A (d, n); B, C (b, n, l); D, delta_bias (d,).
    The output is gated by silu(z) when z is given.  On CPU (chunk_size None) it runs the
    recurrence step by step; otherwise chunk by chunk: inside a chunk
    all steps are evaluated at once from cumulative sums of the log-decay (differences of
    cumulative sums are <= 0, so the exponentials never overflow); the state is carried
    between chunks.
    """
    dtype = u.dtype
    u, delta, A, B, C = (t.float() for t in (u, delta, A, B, C))
    if delta_bias is not None:
        delta = delta + delta_bias.float()[:, None]
    if delta_softplus:
        delta = F.softplus(delta)
    b, d, length = u.shape
    n = A.shape[1]
    log_decay = delta.unsqueeze(-1) * A[None, :, None, :]  # (b, d, l, n)
    drive = (delta * u).unsqueeze(-1) * B.transpose(1, 2)[:, None]  # (b, d, l, n)
    h = u.new_zeros(b, d, n)
    ys = []
    if chunk_size is None and u.device.type == "cpu":
        # On CPU the plain recurrence is several times faster than the chunked form (whose
        # (b, d, c, c, n) tensors are memory-bound); chunks pay off on parallel devices.
        decay = torch.exp(log_decay)
        for t in range(length):
            h = decay[:, :, t] * h + drive[:, :, t]
            ys.append(torch.einsum("bdn,bn->bd", h, C[:, :, t]))
        y = torch.stack(ys, dim=2) if ys else u.new_zeros(b, d, 0)
        return _finish(y, u, D, z, dtype)
    c = chunk_size or _chunk_size(b, d, n, length)
    for start in range(0, length, c):
        stop = min(start + c, length)
        k = stop - start
        cum = log_decay[:, :, start:stop].cumsum(dim=2)  # (b, d, k, n)
        seg = cum.unsqueeze(3) - cum.unsqueeze(2)  # [t, s] = sum of log-decay over (s, t]
        causal = torch.ones(k, k, dtype=torch.bool, device=u.device).tril()
        weights = torch.exp(seg.masked_fill(~causal[:, :, None], float("-inf")))
        states = torch.einsum("bdtsn,bdsn->bdtn", weights, drive[:, :, start:stop])
        states = states + torch.exp(cum) * h.unsqueeze(2)
        ys.append(torch.einsum("bdtn,bnt->bdt", states, C[:, :, start:stop]))
        h = states[:, :, -1]
    y = torch.cat(ys, dim=2) if ys else u.new_zeros(b, d, 0)
    return _finish(y, u, D, z, dtype)


def _finish(y, u, D, z, dtype) -> torch.Tensor:
    """Skip connection D·u and the silu(z) gate, shared by both scan forms."""
    if D is not None:
        y = y + u * D.float()[:, None]
    if z is not None:
        y = y * F.silu(z.float())
    return y.to(dtype)


class MambaMixer(nn.Module):
    """A Mamba (S6) mixer: the parameter layout of mamba_ssm's ``Mamba`` block.

    Masked steps are made transparent: their input is zeroed and their step size Δ is 0, so
    the state passes them unchanged (exp(0·A) = 1, no drive).
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        dt_rank: int | None = None,
        dt_min: float = 1e-3,
        dt_max: float = 0.1,
        dt_init_floor: float = 1e-4,
        use_kernel: bool = True,
    ):
        super().__init__()
        self.d_model = d_model
        self.d_state = d_state
        self.d_inner = expand * d_model
        self.dt_rank = dt_rank or math.ceil(d_model / 16)
        self.use_kernel = use_kernel
        self.in_proj = nn.Linear(d_model, 2 * self.d_inner, bias=False)
        self.conv1d = nn.Conv1d(
            self.d_inner,
            self.d_inner,
            kernel_size=d_conv,
            groups=self.d_inner,
            padding=d_conv - 1,
            bias=True,
        )
        self.x_proj = nn.Linear(self.d_inner, self.dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(self.dt_rank, self.d_inner, bias=True)
        # Δ initialisation as in the Mamba paper: bias = softplus^-1(dt), dt log-uniform.
        nn.init.uniform_(self.dt_proj.weight, -(self.dt_rank**-0.5), self.dt_rank**-0.5)
        dt = torch.exp(
            torch.rand(self.d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        ).clamp_min(dt_init_floor)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        a = torch.arange(1, d_state + 1, dtype=torch.float32).repeat(self.d_inner, 1)
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(self.d_inner))
        self.out_proj = nn.Linear(self.d_inner, d_model, bias=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        length = x.shape[1]
        xz = self.in_proj(x).transpose(1, 2)  # (b, 2*d_inner, l)
        u, z = xz.chunk(2, dim=1)
        step = None if mask is None else mask.to(u.dtype).unsqueeze(1)  # (b, 1, l)
        if step is not None:
            u = u * step
        u = F.silu(self.conv1d(u)[..., :length])
        x_dbl = self.x_proj(u.transpose(1, 2))  # (b, l, r + 2n)
        dt, B, C = torch.split(x_dbl, [self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = F.softplus(self.dt_proj(dt)).transpose(1, 2)  # (b, d_inner, l)
        if step is not None:
            delta = delta * step
        A = -torch.exp(self.A_log.float())
        args = (u, delta, A, B.transpose(1, 2).contiguous(), C.transpose(1, 2).contiguous())
        if self.use_kernel and selective_scan_kernel is not None and u.is_cuda:
            y = selective_scan_kernel(*args, self.D.float(), z=z, delta_softplus=False)
        else:
            y = selective_scan(*args, D=self.D, z=z)
        return self.out_proj(y.transpose(1, 2))


class MambaLayer(nn.Module):
    """Pre-norm residual block around a mixer (mamba_ssm's ``Block``: ``norm`` + ``mixer``)."""

    def __init__(self, d_model: int, dropout: float = 0.0, **mixer_kwargs):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.mixer = MambaMixer(d_model, **mixer_kwargs)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return x + self.dropout(self.mixer(self.norm(x), mask))


class MambaEncoder(nn.Module):
    def __init__(
        self,
        d_model: int,
        layers: int = 1,
        dropout: float = 0.1,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            MambaLayer(d_model, dropout, d_state=d_state, d_conv=d_conv, expand=expand)
            for _ in range(layers)
        )
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)


# --------------------------------------------------------------------------- attention
class AttentionBlock(nn.Module):
    """Pre-norm (cross-)attention block: x += MHA(LN x, LN kv); x += FFN(LN x).

    With ``context=None`` it is self-attention.  ``context_mask`` (B, S) marks valid keys;
    rows without any valid key attend to all keys instead of producing NaN.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.1, ff_mult: int = 2):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(
            nn.Linear(dim, ff_mult * dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(ff_mult * dim, dim),
        )
        self.dropout = nn.Dropout(dropout)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        q = self.norm_q(x)
        kv = self.norm_kv(x if context is None else context)
        pad = None if context_mask is None else ~safe_mask(context_mask)
        a, _ = self.attn(q, kv, kv, key_padding_mask=pad, need_weights=False)
        x = x + self.dropout(a)
        return x + self.dropout(self.ff(self.norm_ff(x)))


def sinusoidal_encoding(length: int, dim: int, device=None) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float32, device=device).unsqueeze(1)
    freq = torch.exp(
        torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim)
    )
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


class TransformerEncoder(nn.Module):
    def __init__(
        self,
        d_model: int,
        layers: int = 1,
        heads: int = 4,
        dropout: float = 0.1,
        positional: bool = True,
    ):
        super().__init__()
        self.positional = positional
        self.layers = nn.ModuleList(AttentionBlock(d_model, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.positional:
            x = x + sinusoidal_encoding(x.shape[1], x.shape[2], x.device).to(x.dtype)
        for layer in self.layers:
            x = layer(x, context_mask=mask)
        return self.norm(x)


def build_encoder(
    name: str,
    d_model: int,
    layers: int = 1,
    heads: int = 4,
    dropout: float = 0.1,
    d_state: int = 16,
    d_conv: int = 4,
    expand: int = 2,
    block_width: int = 64,
    positional: bool = True,
) -> nn.Module:
    """The encoder `name`; each kind reads only its own arguments (`d_state`, `d_conv`,
    `expand`: mamba; `block_width`: gated_mlp; `heads`, `positional`: the transformers)."""
    # imported here: reference_layers builds on this module's masking and position helpers
    from mepr.models import reference_layers as ref

    if name == "mamba":
        return MambaEncoder(d_model, layers, dropout, d_state, d_conv, expand)
    if name == "transformer":
        return TransformerEncoder(d_model, layers, heads, dropout, positional)
    if name == "gated_mlp":
        return ref.GatedMLPEncoder(d_model, layers, block_width, dropout)
    if name == "postnorm_transformer":
        return ref.PostNormEncoder(d_model, layers, heads, dropout, positional)
    raise ValueError(f"unknown temporal encoder '{name}' (choose from {', '.join(ENCODERS)})")
