"""The authors' state dicts mapped onto mepr models; see tests/data/parity.

`fusion` maps their multi-task fusion, `unimodal` their stage-1 and stage-2 models; both raise
:class:`ReferenceMappingError` naming the tensor that does not fit.
"""


class ReferenceMappingError(ValueError):
    """Their state dict does not fit the mepr model their arguments describe."""
