"""``pypoolparty run TASKLIST``: a file of shell commands run as the tasks of a pool.

Each non-empty line that is not a comment is a command, run with ``bash -c``
(:func:`pypoolparty.shell`) as one task of a single map of the chosen pool. A
command that fails does not stop the others. The run is recorded in
``<work_dir>/tasklist/`` so that the same command again continues it.

The package's files:

- ``parsing.py``: reads a task list into numbered commands, and its fingerprint.
- ``state.py``: owns the run's directory ``<work_dir>/tasklist/`` and every
  file in it (what the run is, the map in progress, each task's outcome and
  output, the finished and failed lists).
- ``runner.py``: one run: what is left, the map over it, recording, the summary.
- ``command_line.py``: the ``run`` subcommand's options and its output, for
  :mod:`pypoolparty.cli`; it also serves ``pypoolparty stdout/stderr`` of a
  task-list run.
"""

from .parsing import Task, TaskListError, read_tasklist
from .runner import RunOptions, Summary, run

__all__ = ["RunOptions", "Summary", "Task", "TaskListError", "read_tasklist", "run"]
