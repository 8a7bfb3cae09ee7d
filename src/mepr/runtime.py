"""What the Snakemake process sets up for the jobs it starts.

Rules call ``python -m mepr ...``. Outside conda that ``python`` must be the interpreter that
runs Snakemake (the one mepr is installed in), whatever PATH says: ``.venv/bin/snakemake``
started from a shell whose PATH lacks ``.venv/bin`` used to fail in every job with "No module
named mepr". With ``--sdm conda`` each job activates its env, whose ``python`` comes first.
Changing PATH (not the command text) keeps the jobs' commands identical on every machine, so
moving a run re-runs nothing.
"""

from __future__ import annotations

import os
import sys


def put_interpreter_first() -> str:
    """Put this interpreter's folder first on PATH (for the jobs started from here)."""
    bindir = os.path.dirname(sys.executable)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if parts[:1] != [bindir]:
        os.environ["PATH"] = os.pathsep.join([bindir, *(p for p in parts if p != bindir)])
    return bindir
