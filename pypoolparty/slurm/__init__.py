"""SLURM: ``pypoolparty.slurm.array.Pool`` (one job array per map) and
``pypoolparty.slurm.Pool`` (one ``sbatch`` per chunk, for sites without arrays).

The parsers (:mod:`.parsing`) and the adapters (:mod:`.array_scheduler`,
:mod:`.job_scheduler`) do not need the session machinery behind the pools.
"""

from __future__ import annotations

from . import array
from .job_pool import Pool

__all__ = ["Pool", "array"]
