"""``pypoolparty.htcondor.Pool``: a map is one HTCondor cluster of chunks."""

from __future__ import annotations

from collections.abc import Mapping

from ..pool import Pool as BasePool
from ..scheduler import Scheduler
from . import adapter, submitfile


class Pool(BasePool):
    """Run ``func`` over many tasks as the procs of one HTCondor cluster.

    Each map submits one cluster with one proc per chunk (``condor_submit``
    once); chunks whose procs are held or vanish are resubmitted as a new
    cluster of just those chunks. Jobs run as the submitting user, so the
    work_dir must be on a file system the execute nodes reach.

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
    condor_submit_path, condor_q_path, condor_rm_path : str
        The commands to call.
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
        condor_submit_path: str = "condor_submit",
        condor_q_path: str = "condor_q",
        condor_rm_path: str = "condor_rm",
        **common_options,
    ) -> None:
        super().__init__(num_simultaneously_running_tasks, **common_options)
        self.cluster_options = submitfile.ClusterOptions(
            universe=submitfile.validate_universe(universe),
            request_cpus=_whole_number("request_cpus", request_cpus, minimum=1),
            request_memory=submitfile.validate_memory("request_memory", request_memory),
            request_disk=submitfile.validate_memory("request_disk", request_disk),
            request_gpus=None
            if request_gpus is None
            else _whole_number("request_gpus", request_gpus, minimum=0),
            batch_name=_batch_name(batch_name),
            submit_directives=submitfile.validate_directives(submit_directives),
        )
        self.command_paths = adapter.CommandPaths(
            condor_submit=_command("condor_submit_path", condor_submit_path),
            condor_q=_command("condor_q_path", condor_q_path),
            condor_rm=_command("condor_rm_path", condor_rm_path),
        )

    def _make_scheduler(self) -> Scheduler:
        return adapter.HTCondorScheduler(
            self.cluster_options, self.retry_policy, self.command_paths
        )


def _whole_number(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be a whole number >= {minimum}, not {value!r}")
    return value


def _batch_name(name: str | None) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip() or "\n" in name or '"' in name:
        raise ValueError(f"batch_name must be one line without double quotes, not {name!r}")
    return name


def _command(name: str, path: str) -> str:
    if not isinstance(path, str) or not path.strip():
        raise ValueError(f"{name} must be a command name or path, not {path!r}")
    return path
