"""The fusion model's attention weights, captured with hooks during its normal forward pass."""

from __future__ import annotations

from typing import Any


class AttentionRecorder:
    """Captures the fusion model's attention weights during a forward pass, via hooks.

    * graph attention: the input of ``graph.dropout`` is the (B, M, M) softmax over edges
      (row i: how much modality node i gathers from node j);
    * query attention: ``attn`` (nn.MultiheadAttention) is asked for per-head weights
      (B, heads, 2, M): how much the emotion / personality query reads from each modality.

    The model is called unchanged (in eval mode dropout is the identity, so the captured
    weights are exactly the ones used).
    """

    def __init__(self, model):
        self.model = model
        self.graph = None
        self.query = None
        self._handles: list[Any] = []

    def __enter__(self) -> AttentionRecorder:
        graph = getattr(self.model, "graph", None)
        if graph is not None and hasattr(graph, "dropout"):
            self._handles.append(graph.dropout.register_forward_hook(self._on_graph))
        attn = getattr(self.model, "attn", None)
        if attn is not None:
            self._handles.append(
                attn.register_forward_pre_hook(self._ask_weights, with_kwargs=True)
            )
            self._handles.append(attn.register_forward_hook(self._on_query))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _on_graph(self, _module, inputs, _output) -> None:
        self.graph = inputs[0].detach().float().cpu().numpy()

    @staticmethod
    def _ask_weights(_module, args, kwargs):
        return args, {**kwargs, "need_weights": True, "average_attn_weights": False}

    def _on_query(self, _module, _inputs, output) -> None:
        if isinstance(output, tuple) and len(output) > 1 and output[1] is not None:
            self.query = output[1].detach().float().cpu().numpy()  # (B, heads, 2, M)
