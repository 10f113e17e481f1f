"""The SLURM pools: the options both share (:class:`SlurmPool`), and
``pypoolparty.slurm.Pool``, one ``sbatch`` per chunk, for sites without job arrays.

The array pool, ``pypoolparty.slurm.array.Pool``, lives in its public module
:mod:`pypoolparty.slurm.array`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .. import checks, pool
from ..pool_options import PoolOptions
from ..scheduler import Scheduler
from ..signatures import with_inherited_options
from .options import checked_options
from .scheduler import CommandPaths, JobScheduler

if TYPE_CHECKING:
    from typing_extensions import Unpack


class SlurmPool(pool.Pool):
    """Base of the SLURM pools: checks the resource options and command paths.

    Parameters
    ----------
    num_simultaneously_running_tasks : int, optional
        At most this many jobs of one map run at once.
    partition : str, optional
        ``--partition``; several as ``"a,b"``. Default: the site's default.
    time : int or str, optional
        ``--time``, the time limit of each job: minutes, or e.g. ``"2:00:00"``.
    mem : int or str, optional
        ``--mem`` per job: megabytes, or e.g. ``"4G"``.
    cpus_per_task : int, optional
        ``--cpus-per-task``.
    gpus : int or str, optional
        ``--gpus``: a count or ``"type:count"``.
    account, qos, constraint : str, optional
        ``--account``, ``--qos``, ``--constraint``.
    sbatch_arguments : list of str
        Further sbatch options, one argument each, e.g. ``["--nice=10"]``. They
        come last, so they win over the options above.
    time_limit_warning : int, optional
        Seconds before a job's time limit at which SLURM sends its worker
        SIGUSR1 (``--signal=B:USR1@N``): the worker stops at once, keeping the
        tasks it finished, and the chunk's unfinished tasks run in a new job.
        Default: 60, or half of ``time`` when that is under 2 minutes; 0 for
        no warning. SLURM may send it up to a minute early. A ``--signal`` in
        ``sbatch_arguments`` replaces it. See docs/time_limits.rst.
    sbatch_path, squeue_path, scancel_path, scontrol_path, sinfo_path : str
        The SLURM commands to call (e.g. the dummy queue's in tests).
        ``scontrol`` (for ``MaxArraySize``) and ``sinfo`` (for the number of
        CPUs) are looked for beside ``sbatch_path`` when that names a
        directory and they are not given: SLURM installs them together.
    **common_options
        The options of :class:`pypoolparty.pool.Pool`, e.g. ``work_dir``,
        ``polling_interval``, ``max_num_resubmissions``, ``job_name_prefix``.
    """

    def __init__(
        self,
        num_simultaneously_running_tasks: int | None = None,
        *,
        partition: str | None = None,
        time: int | str | None = None,
        mem: int | str | None = None,
        cpus_per_task: int | None = None,
        gpus: int | str | None = None,
        account: str | None = None,
        qos: str | None = None,
        constraint: str | None = None,
        sbatch_arguments: list[str] | tuple[str, ...] = (),
        time_limit_warning: int | None = None,
        sbatch_path: str = "sbatch",
        squeue_path: str = "squeue",
        scancel_path: str = "scancel",
        scontrol_path: str | None = None,
        sinfo_path: str | None = None,
        **common_options: Unpack[PoolOptions],
    ) -> None:
        super().__init__(num_simultaneously_running_tasks, **common_options)
        self.sbatch_options = checked_options(
            partition=partition,
            time=time,
            mem=mem,
            cpus_per_task=cpus_per_task,
            gpus=gpus,
            account=account,
            qos=qos,
            constraint=constraint,
            sbatch_arguments=sbatch_arguments,
            time_limit_warning=time_limit_warning,
        )
        # SLURM installs its commands together: look for the optional ones
        # beside sbatch.
        beside_sbatch = os.path.dirname(str(sbatch_path))
        if scontrol_path is None:
            scontrol_path = os.path.join(beside_sbatch, "scontrol")
        if sinfo_path is None:
            sinfo_path = os.path.join(beside_sbatch, "sinfo")
        self.command_paths = CommandPaths(
            sbatch=checks.command("sbatch_path", sbatch_path),
            squeue=checks.command("squeue_path", squeue_path),
            scancel=checks.command("scancel_path", scancel_path),
            scontrol=checks.command("scontrol_path", scontrol_path),
            sinfo=checks.command("sinfo_path", sinfo_path),
        )


class SlurmPoolOptions(PoolOptions, total=False):
    """The keyword options of :class:`SlurmPool`, the common ones included, for
    the ``**options`` the array pool passes on (see
    :mod:`pypoolparty.pool_options`)."""

    partition: str | None
    time: int | str | None
    mem: int | str | None
    cpus_per_task: int | None
    gpus: int | str | None
    account: str | None
    qos: str | None
    constraint: str | None
    sbatch_arguments: list[str] | tuple[str, ...]
    time_limit_warning: int | None
    sbatch_path: str
    squeue_path: str
    scancel_path: str
    scontrol_path: str | None
    sinfo_path: str | None


@with_inherited_options(scheduler="slurm")
class Pool(SlurmPool):
    __doc__ = (
        "Run ``func`` over many tasks as SLURM jobs, one ``sbatch`` per chunk.\n\n"
        "    Use :class:`pypoolparty.slurm.array.Pool` where job arrays are allowed:\n"
        "    it submits a map with one call. Here ``num_simultaneously_running_tasks``\n"
        "    is kept with job dependencies.\n" + SlurmPool.__doc__.split("\n", 1)[1]
    )

    def _make_scheduler(self) -> Scheduler:
        return JobScheduler(self.sbatch_options, self.retry_policy, self.command_paths)
