"""The keyword options both SLURM pools share, on top of the common ones."""

from __future__ import annotations

import os
from typing import Any

from .. import pool
from .queue import Commands
from .resources import resources


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
        sbatch_path: str = "sbatch",
        squeue_path: str = "squeue",
        scancel_path: str = "scancel",
        scontrol_path: str | None = None,
        sinfo_path: str | None = None,
        **common_options: Any,
    ) -> None:
        super().__init__(num_simultaneously_running_tasks, **common_options)
        self.resources = resources(
            partition=partition,
            time=time,
            mem=mem,
            cpus_per_task=cpus_per_task,
            gpus=gpus,
            account=account,
            qos=qos,
            constraint=constraint,
            sbatch_arguments=sbatch_arguments,
        )
        paths = dict(sbatch=sbatch_path, squeue=squeue_path, scancel=scancel_path)
        paths.update(scontrol=scontrol_path, sinfo=sinfo_path)
        for name, path in paths.items():
            if path is None:
                path = paths[name] = os.path.join(os.path.dirname(str(sbatch_path)), name)
            if not isinstance(path, str) or not path:
                raise ValueError(f"{name}_path must be a non-empty string, not {path!r}")
        self.commands = Commands(**paths)
