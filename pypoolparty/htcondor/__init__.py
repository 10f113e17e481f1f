"""Run maps as HTCondor clusters: ``pypoolparty.htcondor.Pool()``.

The package's files:

- ``pool.py``: the public :class:`Pool`.
- ``scheduler.py``: the adapter, :class:`~.scheduler.HTCondorScheduler`
  (submit, query, cancel), and :class:`~.scheduler.CommandPaths`.
- ``options.py``: the pool's options, checked, as
  :class:`~.options.ClusterOptions`.
- ``parsing.py``: pure parsers of what ``condor_submit``, ``condor_q``,
  ``condor_rm`` and ``condor_status`` print.

And three that HTCondor needs beyond the other schedulers:

- ``submitfile.py``: the submit description of a cluster. HTCondor takes its
  options as a file in a language of its own, with its own quoting, rather
  than as command-line arguments.
- ``eventlog.py``: reading the job event log. HTCondor tells a job's
  history (evictions, holds, its exit) in that log rather than in
  ``condor_q``, which forgets jobs once they leave the queue.
- ``states.py``: what JobStatus codes and events mean for the session; both
  the log and ``condor_q`` feed it.
"""

from .pool import Pool

__all__ = ["Pool"]
