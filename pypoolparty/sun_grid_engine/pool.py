"""``pypoolparty.sun_grid_engine.Pool``: a map is one Grid Engine array job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from .. import checks, pool
from ..pool_options import PoolOptions
from ..scheduler import Scheduler
from ..signatures import with_inherited_options
from .options import checked_options
from .scheduler import CommandPaths, GridEngineScheduler

if TYPE_CHECKING:
    from typing_extensions import Unpack


@with_inherited_options(scheduler="sge")
class Pool(pool.Pool):
    """Run ``func`` over many tasks as the tasks of one ``qsub -t`` array job per map.

    Each array task runs one chunk of tasks. Tasks whose job ends in an error
    state (``Eqw``) or leaves the queue without a result are resubmitted as a
    new array job. Jobs held on purpose (``qhold``) are left alone.

    Parameters
    ----------
    num_simultaneously_running_tasks : int, optional
        At most this many array tasks run at once (qsub's ``-tc``).
    queue_name : str, optional
        The queue, as for ``qsub -q`` (e.g. ``"all.q"``).
    parallel_environment : str, optional
        A parallel environment for each array task, as for ``qsub -pe``.
    slots : int, optional
        Slots per array task in ``parallel_environment`` (default 1).
    resources : dict, optional
        Resource requests, e.g. ``{"h_vmem": "2G", "h_rt": "1:00:00"}``
        becomes ``-l h_vmem=2G,h_rt=1:00:00``.
    qsub_arguments : list of str, optional
        Further qsub arguments, e.g. ``["-P", "myproject"]``. Options the pool
        sets itself (``-t``, ``-N``, ``-o``, ``-e``, ``-S``, ...) and ``-V``
        are refused: the job's launcher exports your variables from a
        private file (environment.sh), so that secrets do not reach the
        scheduler's spool.
    qsub_path, qstat_path, qdel_path : str
        The Grid Engine commands. The default names are found on ``PATH``,
        e.g. Debian's ``/usr/bin`` wrappers, which set ``SGE_ROOT`` and
        ``SGE_CELL`` themselves. The binaries (e.g. in
        ``/usr/lib/gridengine``) answer faster but need both variables set.
    **common_options
        The options of :class:`pypoolparty.pool.Pool`, such as ``work_dir``,
        ``polling_interval``, ``max_num_resubmissions``, ``command_timeout``,
        ``job_name_prefix``.
    """

    def __init__(
        self,
        num_simultaneously_running_tasks: int | None = None,
        *,
        queue_name: str | None = None,
        parallel_environment: str | None = None,
        slots: int | None = None,
        resources: Mapping[str, str] | None = None,
        qsub_arguments: Sequence[str] | None = None,
        qsub_path: str = "qsub",
        qstat_path: str = "qstat",
        qdel_path: str = "qdel",
        **common_options: Unpack[PoolOptions],
    ) -> None:
        super().__init__(num_simultaneously_running_tasks, **common_options)
        self.qsub_options = checked_options(
            queue_name=queue_name,
            parallel_environment=parallel_environment,
            slots=slots,
            resources=resources,
            qsub_arguments=qsub_arguments,
        )
        self.command_paths = CommandPaths(
            qsub=checks.command("qsub_path", qsub_path),
            qstat=checks.command("qstat_path", qstat_path),
            qdel=checks.command("qdel_path", qdel_path),
        )

    def _make_scheduler(self) -> Scheduler:
        return GridEngineScheduler(self.qsub_options, self.retry_policy, self.command_paths)
