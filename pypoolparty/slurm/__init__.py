"""SLURM: ``pypoolparty.slurm.array.Pool`` (one job array per map) and
``pypoolparty.slurm.Pool`` (one ``sbatch`` per chunk, for sites without arrays).

The package's files:

- ``pool.py``: :class:`Pool` (one ``sbatch`` per chunk) and
  :class:`~.pool.SlurmPool`, the options both pools share.
- ``array.py``: the array pool. Its own module because
  ``pypoolparty.slurm.array.Pool`` is the public name users import.
- ``scheduler.py``: the adapters, :class:`~.scheduler.ArrayScheduler` and
  :class:`~.scheduler.JobScheduler`, on their shared base
  :class:`~.scheduler.SlurmScheduler`, and :class:`~.scheduler.CommandPaths`.
- ``options.py``: the sbatch options of the pools, checked, as
  :class:`~.options.SbatchOptions`, and turned into sbatch arguments.
- ``parsing.py``: pure parsers of what ``sbatch``, ``squeue``, ``scancel``,
  ``scontrol`` and ``sinfo`` print.
"""

from __future__ import annotations

from . import array
from .pool import Pool

__all__ = ["Pool", "array"]
