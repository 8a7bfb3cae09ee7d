"""What stops a whole prediction run (as opposed to one video's problem, which is recorded)."""

from __future__ import annotations

from mepr.models.checkpoints import CheckpointError  # re-exported: weights that do not fit

__all__ = ["CheckpointError", "PredictError"]


class PredictError(ValueError):
    """A problem with the model folder or the run it came from (affects every video)."""
