"""``pypoolparty.htcondor.Pool``: a map is one HTCondor cluster of chunks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .. import checks
from ..errors import BadInput
from ..pool import Pool as BasePool
from ..pool_options import PoolOptions
from ..scheduler import Scheduler
from ..settings import MapSettings
from ..signatures import with_inherited_options
from .options import checked_options
from .scheduler import CommandPaths, HTCondorScheduler

if TYPE_CHECKING:
    from typing_extensions import Unpack


@with_inherited_options(scheduler="htcondor")
class Pool(BasePool):
    """Run ``func`` over many tasks as the procs of one HTCondor cluster.

    Each map submits one cluster with one proc per chunk (``condor_submit``
    once); chunks whose procs are held or vanish are resubmitted as a new
    cluster of just those chunks. Jobs run as the submitting user, so the
    work_dir must be on a file system the execute nodes reach -- unless
    ``shared_file_system=False``, where each job's files travel with it.

    Parameters
    ----------
    num_simultaneously_running_tasks : int, optional
        At most this many procs of a map exist in the queue at once
        (``max_materialize``), hence at most this many run.
    request_cpus : int
        CPUs per proc.
    request_memory : int or str, optional
        Memory per proc: a number (megabytes) or a number with a unit K, M,
        G or T, e.g. ``"2GB"``. Checked here, because condor_submit accepts
        nonsense that then idles forever.
    request_disk : int or str, optional
        Scratch disk per proc: a number (kilobytes, HTCondor's unit) or a
        number with a unit, e.g. ``"1GB"``.
    request_gpus : int, optional
        GPUs per proc.
    universe : str
        HTCondor universe, ``"vanilla"`` by default.
    submit_directives : dict, optional
        More submit commands, written as ``name = value`` before ``queue``,
        e.g. ``{"requirements": 'OpSysMajorVer == 12', "+ProjectName": '"astro"'}``.
        Commands the Pool writes itself (executable, arguments, log, output,
        error, getenv, environment, request_*, batch name) are refused.
    batch_name : str, optional
        ``JobBatchName`` of the clusters (what ``condor_q`` groups by).
        Default: the map's job name.
    shared_file_system : bool
        ``True`` (default): the execute nodes see the work_dir, and jobs read
        and write their session directory there. ``False``: the session
        directory stays on the submit host; each job gets, by HTCondor's file
        transfer through the schedd's spool (``condor_submit -spool``), the
        worker, the launcher with its private environment file, the pickled
        function and its own chunk's tasks, runs in its scratch directory,
        and sends back only its outcome, task records, stdout and stderr
        (``condor_transfer_data``). ``python_path`` must then name an
        interpreter of the execute nodes with the submitter's Python and
        cloudpickle versions; ``num_simultaneously_running_tasks``,
        ``tasks_per_job`` > 1 and ``container`` need a shared file system
        (refused here, before anything is submitted). See
        ``docs/no_shared_file_system.rst``.
    condor_submit_path, condor_q_path, condor_rm_path : str
        The commands to call.
    condor_transfer_data_path : str
        The command that fetches the output of spooled jobs (only with
        ``shared_file_system=False``).
    **common_options
        The options of :class:`pypoolparty.pool.Pool`, e.g. ``python_path``,
        ``work_dir``, ``polling_interval``, ``max_num_resubmissions``,
        ``command_timeout``, ``outage_timeout``.
    """

    def __init__(
        self,
        num_simultaneously_running_tasks: int | None = None,
        *,
        request_cpus: int = 1,
        request_memory: int | str | None = None,
        request_disk: int | str | None = None,
        request_gpus: int | None = None,
        universe: str = "vanilla",
        submit_directives: Mapping[str, object] | None = None,
        batch_name: str | None = None,
        shared_file_system: bool = True,
        condor_submit_path: str = "condor_submit",
        condor_q_path: str = "condor_q",
        condor_rm_path: str = "condor_rm",
        condor_transfer_data_path: str = "condor_transfer_data",
        **common_options: Unpack[PoolOptions],
    ) -> None:
        super().__init__(num_simultaneously_running_tasks, **common_options)
        if shared_file_system is False:
            _refuse_what_needs_a_shared_file_system(self.settings)
        self.cluster_options = checked_options(
            universe=universe,
            request_cpus=request_cpus,
            request_memory=request_memory,
            request_disk=request_disk,
            request_gpus=request_gpus,
            batch_name=batch_name,
            submit_directives=submit_directives,
            shared_file_system=shared_file_system,
        )
        self.command_paths = CommandPaths(
            condor_submit=checks.command("condor_submit_path", condor_submit_path),
            condor_q=checks.command("condor_q_path", condor_q_path),
            condor_rm=checks.command("condor_rm_path", condor_rm_path),
            condor_transfer_data=checks.command(
                "condor_transfer_data_path", condor_transfer_data_path
            ),
        )

    def _make_scheduler(self) -> Scheduler:
        return HTCondorScheduler(self.cluster_options, self.retry_policy, self.command_paths)


def _refuse_what_needs_a_shared_file_system(settings: MapSettings) -> None:
    """Options that cannot work when jobs get their files by transfer; refused before anything."""
    if settings.num_simultaneously_running_tasks is not None:
        raise BadInput(
            "num_simultaneously_running_tasks needs shared_file_system=True: HTCondor "
            "limits running procs by late materialization (max_materialize), which does "
            "not take spooled input files (its procs are held, unable to enter their "
            "initial directory). Leave it out, or use a shared work_dir."
        )
    if settings.tasks_per_job > 1:
        raise BadInput(
            f"tasks_per_job={settings.tasks_per_job} needs shared_file_system=True: a "
            "job's processes claim their chunks in the session directory, which jobs "
            "without a shared file system do not see. Use tasks_per_job=1 (more jobs, "
            "one process each), or a shared work_dir."
        )
    if settings.container is not None:
        raise BadInput(
            "container needs shared_file_system=True: the image mounts the work_dir, "
            "which the execute nodes do not see. Leave it out, or use a shared work_dir."
        )
