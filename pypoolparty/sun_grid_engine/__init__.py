"""Sun Grid Engine (and its successors Son of / Open / Univa Grid Engine).

``pypoolparty.sun_grid_engine.Pool`` (also ``pypoolparty.sge.Pool``) submits
one ``qsub -t`` array job per map; each array task runs one chunk of the tasks.

The package's files:

- ``pool.py``: the public :class:`Pool`.
- ``scheduler.py``: the adapter, :class:`~.scheduler.GridEngineScheduler`
  (submit, query, cancel), and :class:`~.scheduler.CommandPaths`.
- ``options.py``: the pool's qsub options, checked, as
  :class:`~.options.QsubOptions`, and turned into qsub arguments.
- ``parsing.py``: pure parsers of what ``qsub``, ``qstat`` and ``qdel`` print.
"""

from .pool import Pool

__all__ = ["Pool"]
