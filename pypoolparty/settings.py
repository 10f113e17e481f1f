"""What a map needs to know of its pool's options, checked once.

The Pool checks its options when it is built and hands the session a frozen
:class:`MapSettings`; the session reads nothing else of the Pool. Options
that only the scheduler adapter uses (resources, command paths, the retry
policy) stay with the Pool, which builds the adapter.
"""

from __future__ import annotations

import dataclasses

from .container import Container
from .environment import Selection


@dataclasses.dataclass(frozen=True)
class MapSettings:
    """The common options of every pool, as the session reads them.

    The values are already checked (see :class:`pypoolparty.pool.Pool` for
    what each option means to the user).
    """

    num_simultaneously_running_tasks: int | None
    """At most this many jobs of one map run at once; ``None``: no limit of
    our own. Also the parallelism the default chunk size is made for."""

    python_path: str
    """Absolute path of the interpreter that runs the worker on the compute
    nodes."""

    polling_interval: float
    """Seconds between two looks at the scheduler and the result files."""

    work_dir: str | None
    """Absolute path of the directory that holds the maps' session
    directories; ``None``: ``./.pypoolparty``."""

    keep_work_dir: bool
    """Keep the session directory after a successful map (also true with
    ``reuse_results``: a cache is kept)."""

    verbose: bool
    """Show the progress display and log what happens on standard error."""

    max_num_resubmissions: int
    """How often a chunk whose job failed for scheduler reasons is submitted
    again before the map gives up (>= 0)."""

    missing_result_grace_period: float
    """Seconds to wait for the result of a job that left the queue, for file
    systems that show files late."""

    environment: Selection
    """Which environment variables of the submitting process the jobs get."""

    job_name_prefix: str
    """Start of the scheduler's job names."""

    max_result_size: int | None
    """Largest pickled result of one task, in bytes; ``None``: no limit."""

    reuse_results: bool = False
    """Return the stored results of a finished run of the same map in the
    work_dir instead of running it again (a cache); without it, a finished
    run's directory is left alone and the map runs afresh."""
    pending_warning_after: float = 600.0
    """Seconds a job may wait for a reason that does not clear by itself
    before the map says so on standard error (see :mod:`pypoolparty.pending`)."""

    pending_timeout: float | None = None
    """Seconds a job may wait for such a reason before the map ends with
    :class:`pypoolparty.PendingTimeout`; ``None``: wait for good."""

    container: Container | None = None
    """The image and runtime the worker runs in (checked and completed by
    :func:`pypoolparty.container.for_pool`); ``None``: on the node itself."""

    setup: tuple[str, ...] = ()
    """Shell lines each job runs in order before the worker, under bash with
    ``set -e`` (see :mod:`pypoolparty.launcher`)."""

    tasks_per_job: int = 1
    """How many processes of each job claim and run chunks at once (>= 1;
    see :mod:`pypoolparty.worker`)."""
