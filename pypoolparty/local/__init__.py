"""Local processes as the jobs of a pool: ``pypoolparty.local.Pool``.

The package's files:

- ``pool.py``: the public :class:`Pool`.
- ``scheduler.py``: the adapter, :class:`~.scheduler.LocalScheduler`, which
  starts, watches and kills worker processes.
- ``parsing.py``: pure readers of what ``/proc`` tells about a process
  (its chunk, its job name) and of a worker's exit status.

There is no ``options.py``: the local pool has no options of its own to
check or to turn into arguments (it only changes the defaults of two common
options), and no command paths, as it calls no scheduler commands.
"""

from .pool import Pool

__all__ = ["Pool"]
