"""``pypoolparty.local.Pool``: the same machinery, jobs are local processes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .. import pool
from ..pool_options import PoolOptionsButGracePeriod
from ..signatures import with_inherited_options
from .scheduler import LocalScheduler

if TYPE_CHECKING:
    from typing_extensions import Unpack


@with_inherited_options(scheduler="local")
class Pool(pool.Pool):
    """A pool whose jobs are processes on this machine; no cluster needed.

    It runs exactly the machinery of the cluster pools (work_dir, worker
    script, babysitting, resubmission), so a map that works here works on a
    cluster, and it is the reference the cluster pools are tested against.

    Parameters
    ----------
    num_simultaneously_running_tasks : int, optional
        Worker processes at once. Default: the number of CPUs.
    polling_interval : float, optional
        Seconds between two looks at the processes and the result files.
        Default: 0.05 s, as a local disk shows files at once.
    missing_result_grace_period : float
        Seconds to wait for the result file of a process that ended: 2 s,
        as a local disk shows files at once.
    **options
        The common options of :class:`pypoolparty.pool.Pool`.
    """

    default_polling_interval = 0.05

    def __init__(
        self,
        num_simultaneously_running_tasks: int | None = None,
        *,
        missing_result_grace_period: float = 2.0,
        **options: Unpack[PoolOptionsButGracePeriod],
    ) -> None:
        if num_simultaneously_running_tasks is None:
            num_simultaneously_running_tasks = os.cpu_count() or 1
        super().__init__(
            num_simultaneously_running_tasks,
            missing_result_grace_period=missing_result_grace_period,
            **options,
        )

    def _make_scheduler(self) -> LocalScheduler:
        return LocalScheduler(max_running=self.num_simultaneously_running_tasks)
