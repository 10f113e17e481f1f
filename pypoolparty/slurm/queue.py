"""What both SLURM adapters share: the commands, query, cancel and capacity.

The two adapters differ only in how they submit (one array, or one job per
chunk). Both name a job's output files ``<job name>_<index>.stdout`` in the
submission's directory, so :meth:`SlurmQueue.query` finds the job names to ask
``squeue`` for in the jobs themselves, also for jobs submitted by an earlier
process whose map is being resumed.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from typing import Callable

from .. import commands
from ..scheduler import Job, JobStatus, Scheduler, Submission, SubmissionRejected
from . import parsing
from .resources import Resources

logger = logging.getLogger(__name__)

# Arguments per scancel call: far below any command line limit, and few calls.
CANCEL_BATCH_SIZE = 2000


@dataclasses.dataclass(frozen=True)
class Commands:
    """Where the SLURM commands are; tests point these at the dummy queue."""

    sbatch: str = "sbatch"
    squeue: str = "squeue"
    scancel: str = "scancel"
    scontrol: str = "scontrol"
    sinfo: str = "sinfo"


class SlurmQueue(Scheduler):
    """Base of the SLURM adapters; subclasses implement :meth:`submit`."""

    name = "slurm"

    def __init__(self, resources: Resources, paths: Commands, policy: commands.RetryPolicy):
        self.resources = resources
        self.paths = paths
        self.policy = policy

    # ---------------------------------------------------------------- submit

    def sbatch(
        self, options: list[str], command: str, find_existing: Callable[[], str | None]
    ) -> str:
        """Submit ``command`` with ``sbatch --wrap`` and return the job id it printed.

        ``find_existing`` is asked before each retry for the id of a job the
        failed attempt may have created anyway (e.g. sbatch timed out after
        slurmctld had accepted the job), so that no job is submitted twice.
        """
        args = [self.paths.sbatch, "--parsable", *options, "--wrap", command]
        try:
            return commands.call(
                args, parsing.submitted_job_id, self.policy, before_retry=find_existing
            )
        except commands.PermanentError as error:
            raise SubmissionRejected(f"sbatch refused the job: {error}") from None

    def common_sbatch_options(self, job_name: str, directory: str, stem: str) -> list[str]:
        """Options of every job: name, output files, no exported environment, resources.

        ``--export=NONE``: the worker sets its environment itself from a
        private file; the submitting environment may hold secrets.
        """
        return [
            f"--job-name={job_name}",
            f"--chdir={directory}",
            f"--output={os.path.join(directory, stem)}.stdout",
            f"--error={os.path.join(directory, stem)}.stderr",
            "--export=NONE",
            *self.resources.sbatch_options(),
        ]

    def squeue_by_names(self, names: Sequence[str], format: str, parse):
        """``parse`` of one squeue call listing every job and array task named one of ``names``.

        Retried until it parses: a garbled answer must not pass for "no job".
        """
        args = [self.paths.squeue, "-h", "--array", "-t", "all"]
        args += ["-n", ",".join(sorted(set(names))), "-o", format]
        return commands.call(args, parse, self.policy)

    # ---------------------------------------------------------------- query

    def query(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        if not jobs:
            return {}
        names = [job_name_of(job) for job in jobs]
        records = self.squeue_by_names(names, parsing.SQUEUE_FORMAT, parsing.squeue_records)
        return parsing.statuses(records, [job.jobid for job in jobs])

    # ---------------------------------------------------------------- cancel

    def cancel(self, jobs: Sequence[Job]) -> None:
        selectors = cancel_selectors([job.jobid for job in jobs])
        for start in range(0, len(selectors), CANCEL_BATCH_SIZE):
            args = [self.paths.scancel, *selectors[start : start + CANCEL_BATCH_SIZE]]
            commands.call(args, _cancelled, self.policy)

    def required_commands(self) -> dict[str, str]:
        paths = self.paths
        return {
            "sbatch_path": paths.sbatch,
            "squeue_path": paths.squeue,
            "scancel_path": paths.scancel,
        }

    # ---------------------------------------------------------------- extras

    def capacity(self) -> int | None:
        """Total CPUs of the partition(s) the jobs go to, from ``sinfo``."""
        args = [self.paths.sinfo, "-h", "-o", "%P|%C"]
        try:
            completed = commands.run(args, timeout=self.policy.timeout)
            return parsing.total_cpus(completed, self.resources.partitions())
        except (
            commands.CommandNotFound,
            commands.CommandTimedOut,
            commands.TransientError,
        ) as error:
            logger.info("cannot tell the number of CPUs: %s", error)
            return None

    def explain(self, job: Job) -> str:
        """State, reason and exit code from ``scontrol show job`` while SLURM knows the job."""
        args = [self.paths.scontrol, "show", "job", job.jobid]
        try:
            completed = commands.run(args, timeout=self.policy.timeout)
        except (commands.CommandNotFound, commands.CommandTimedOut):
            return ""
        wanted = ("JobState=", "Reason=", "ExitCode=", "NodeList=")
        words = completed.stdout.split()
        return " ".join(word for word in words if word.startswith(wanted))


def job_name_of(job: Job) -> str:
    """The SLURM job name of ``job``, read from its output file ``<name>_<index>.stdout``."""
    stem = os.path.basename(job.stdout_path).rsplit(".", 1)[0]
    return stem.rsplit("_", 1)[0]


def cancel_selectors(jobids: Sequence[str]) -> list[str]:
    """scancel arguments for ``jobids``: the tasks of an array as one ``ID_[0-99,120]``."""
    singles, tasks = set(), {}
    for jobid in jobids:
        array_id, _, index = jobid.partition("_")
        if index:
            tasks.setdefault(array_id, set()).add(int(index))
        else:
            singles.add(jobid)
    grouped = [f"{a}_[{parsing.index_expression(i)}]" for a, i in sorted(tasks.items())]
    return sorted(singles) + grouped


def _cancelled(completed: commands.Completed) -> None:
    # scancel is silent and exits 0 for jobs that are gone; older versions
    # complain about them, which is fine too: cancelling is idempotent.
    if completed.returncode == 0:
        return None
    message = completed.describe().lower()
    if "invalid job id" in message or "already completing or completed" in message:
        return None
    parsing.raise_for_failed_command(completed)
    return None


def submission_order(submission: Submission, jobs: list[Job]) -> list[Job]:
    """``jobs`` in the order of ``submission.chunks``."""
    by_chunk = {job.ichunk: job for job in jobs}
    return [by_chunk[ichunk] for ichunk in submission.chunks]
