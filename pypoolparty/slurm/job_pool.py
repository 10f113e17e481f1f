"""``pypoolparty.slurm.Pool``: one ``sbatch`` per chunk, for sites without job arrays."""

from __future__ import annotations

from ..scheduler import Scheduler
from .job_scheduler import JobScheduler
from .pool_options import SlurmPool


class Pool(SlurmPool):
    __doc__ = (
        "Run ``func`` over many tasks as SLURM jobs, one ``sbatch`` per chunk.\n\n"
        "    Use :class:`pypoolparty.slurm.array.Pool` where job arrays are allowed:\n"
        "    it submits a map with one call. Here ``num_simultaneously_running_tasks``\n"
        "    is kept with job dependencies.\n" + SlurmPool.__doc__.split("\n", 1)[1]
    )

    def _make_scheduler(self) -> Scheduler:
        return JobScheduler(self.resources, self.commands, self.retry_policy)
