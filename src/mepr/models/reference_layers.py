"""The SSL-MEPR authors' stage-1/2 layers, rewritten for mepr's (B, T, D) + mask interface.

These are the encoder kinds ``gated_mlp`` and ``postnorm_transformer`` of
:func:`mepr.models.encoders.build_encoder` and the bridge blocks ``postnorm`` and ``mha`` of
:class:`mepr.models.unimodal.CrossDomainModel`.  They follow the authors' published code
(github.com/LEYA-HSE/SSL-MEPR, app branch), so their trained weights can be loaded
(:mod:`mepr.reference.unimodal`) and give their outputs (tests/test_parity_unimodal.py).

* :class:`GatedMLPBlock` is what the authors' code calls ``CustomMambaBlock`` and their
  configs "Mamba": a position-wise gated MLP, not a state-space model.  Nothing mixes time
  steps, so the mask is not needed; their ``mamba_d_state`` is the MLP's ``width``.
* :class:`PostNormBlock` is their ``TransformerEncoderLayer`` (post-norm, FFN width = D with
  GELU, optional sinusoidal position encoding added to query, key and value inside the
  layer) together with the residual their encoders and bridges add around every layer.
* :class:`ResidualAttention` is their audio bridge: one bare multi-head attention + residual.

Attention takes the mask as key padding (a row without any valid key attends to all keys
instead of producing NaN); with an all-true mask every output equals theirs.
"""

from __future__ import annotations

import torch
from torch import nn

from mepr.models.encoders import safe_mask, sinusoidal_encoding

# Their position encoding keeps its own dropout at its default 0.1, whatever the model's
# dropout is; training with their layer draws it too.
PE_DROPOUT = 0.1


class GatedMLPBlock(nn.Module):
    """``LN(x + Drop(out(ReLU(h + gate_b(h) + gate_c(h)))))`` with ``h = in(x)``, per step."""

    def __init__(self, dim: int, width: int, dropout: float = 0.1):
        super().__init__()
        self.in_proj = nn.Linear(dim, width)
        self.gate_b = nn.Linear(width, width)
        self.gate_c = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, dim)
        self.norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.in_proj(x)
        h = torch.relu(h + self.gate_b(h) + self.gate_c(h))
        return self.norm(x + self.dropout(self.out_proj(h)))


class GatedMLPEncoder(nn.Module):
    """Stacked :class:`GatedMLPBlock` layers; no final norm (each block ends in one)."""

    def __init__(self, d_model: int, layers: int = 1, width: int = 64, dropout: float = 0.1):
        super().__init__()
        self.layers = nn.ModuleList(GatedMLPBlock(d_model, width, dropout) for _ in range(layers))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        # position-wise: a valid step never sees a masked one, so the mask is not used
        for layer in self.layers:
            x = layer(x)
        return x


class PostNormBlock(nn.Module):
    """``x + layer(x, context)``, ``layer`` being the authors' post-norm attention layer:

    ``a = LN1(MHA(q, kv, kv) + Drop(q))``,  ``layer = LN2(FFN(a) + Drop(a))``,  FFN = Linear(D,
    D) - GELU - Dropout - Linear(D, D);  q = x and kv = context (x for self-attention), each
    plus the sinusoidal position encoding (then dropout 0.1) when ``positional``.  Their
    add-and-norm drops out the skip input, not the sub-layer output: kept as it is.
    """

    def __init__(self, dim: int, heads: int, dropout: float = 0.1, positional: bool = False):
        super().__init__()
        self.positional = positional
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ff = nn.Sequential(
            nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(dim, dim)
        )
        self.norm_attn = nn.LayerNorm(dim)
        self.norm_ff = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        self.pe_dropout = nn.Dropout(PE_DROPOUT)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        if not self.positional:
            return x
        pe = sinusoidal_encoding(x.shape[1], x.shape[2], x.device).to(x.dtype)
        return self.pe_dropout(x + pe)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        kv = x if context is None else context
        # key, value and query each get their own encoding (and dropout draw), in their order
        k, v, q = self._encode(kv), self._encode(kv), self._encode(x)
        pad = None if context_mask is None else ~safe_mask(context_mask)
        a, _ = self.attn(q, k, v, key_padding_mask=pad, need_weights=False)
        h = self.norm_attn(a + self.dropout(q))
        h = self.norm_ff(self.ff(h) + self.dropout(h))
        return x + h


class PostNormEncoder(nn.Module):
    """Self-attention :class:`PostNormBlock` layers (outer residual each); no final norm."""

    def __init__(
        self,
        d_model: int,
        layers: int = 1,
        heads: int = 4,
        dropout: float = 0.1,
        positional: bool = True,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            PostNormBlock(d_model, heads, dropout, positional) for _ in range(layers)
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x, context_mask=mask)
        return x


class ResidualAttention(nn.Module):
    """``x + MHA(x, context, context)``: no norm, no feed-forward (the authors' audio bridge)."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.1):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        kv = x if context is None else context
        pad = None if context_mask is None else ~safe_mask(context_mask)
        a, _ = self.attn(x, kv, kv, key_padding_mask=pad, need_weights=False)
        return x + a
