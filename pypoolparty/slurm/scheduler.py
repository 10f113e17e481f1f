"""The SLURM adapters: one job array per submission, or one ``sbatch`` per chunk.

:class:`SlurmScheduler` is what both share: the command paths, ``sbatch``,
query (one ``squeue`` for the jobs' names), cancel, capacity and explain.
Its two subclasses differ only in how they submit:

- :class:`ArrayScheduler`: one ``sbatch --array`` per submission, array task
  index == chunk index, so a resubmission of chunks 3, 7 and 12 is
  ``--array=3,7,12``. SLURM refuses indices of ``MaxArraySize`` or more;
  chunks beyond it go into further arrays whose task ``i`` runs the chunk on
  line ``i`` of a chunk list file.
- :class:`JobScheduler`: one ``sbatch`` per chunk, for sites without arrays.
  SLURM has no throttle for separate jobs, so ``num_simultaneously_running``
  is kept with dependencies: the jobs form that many lanes, and each job
  waits for the one before it in its lane to end (``--dependency=afterany:ID``).

Every job carries its submission's job name, by which one ``squeue`` call
finds it again (also after a restart of the submitting process); the array
pieces of one submission are told apart by their ``--comment``. A job's
output files are ``<job name>_<index>.stdout`` and ``.stderr`` in the
submission's directory. The three classes share one file because the
subclasses are small and only make sense beside their base.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pwd
from collections.abc import Sequence
from typing import Callable

from .. import commands
from ..scheduler import Job, JobStatus, Scheduler, Submission, SubmissionRejected, timed_out
from ..work_dir import write_private
from . import parsing
from .options import SbatchOptions, users_signal

logger = logging.getLogger(__name__)

# Arguments per scancel call: far below any command line limit, and few calls.
CANCEL_BATCH_SIZE = 2000
# SLURM's own default MaxArraySize, for sites where scontrol does not answer.
DEFAULT_MAX_ARRAY_SIZE = 1001
TASK_ID_VARIABLE = "SLURM_ARRAY_TASK_ID"
# Characters no escaping gets through sbatch: their names, and why (see check_path).
UNUSABLE_IN_PATHS = {
    "\\": (
        "a backslash",
        "a backslash in --output makes sbatch stop expanding filename patterns "
        "(sbatch(1)), so the jobs' output files cannot be named",
    ),
}


@dataclasses.dataclass(frozen=True)
class CommandPaths:
    """Where the SLURM commands are; tests point these at the dummy queue."""

    sbatch: str = "sbatch"
    squeue: str = "squeue"
    scancel: str = "scancel"
    scontrol: str = "scontrol"
    sinfo: str = "sinfo"


class SlurmScheduler(Scheduler):
    """Base of the SLURM adapters; subclasses implement :meth:`submit` and :meth:`recover`."""

    name = "slurm"

    def __init__(
        self,
        options: SbatchOptions,
        policy: commands.RetryPolicy,
        paths: CommandPaths | None = None,
    ) -> None:
        self.options = options
        self.policy = policy
        self.paths = paths or CommandPaths()

    # ---------------------------------------------------------------- submit

    def sbatch(
        self, options: list[str], command: str, find_existing: Callable[[], str | None]
    ) -> str:
        """Submit ``command`` with ``sbatch --wrap`` and return the job id it printed.

        ``find_existing`` is asked before each retry for the id of a job the
        failed attempt may have created anyway (e.g. sbatch timed out after
        slurmctld had accepted the job), so that no job is submitted twice.

        Raises
        ------
        SubmissionRejected
            sbatch refused the job (e.g. an unknown partition).
        pypoolparty.commands.CommandFailed
            SLURM could not be reached for longer than the outage budget.
        """
        # exec: the worker becomes the batch shell, the process SLURM's
        # --signal=B:... reaches (sh would die of SIGUSR1 and leave the worker
        # to SIGKILL).
        args = [self.paths.sbatch, "--parsable", *options, "--wrap", f"exec {command}"]
        try:
            return commands.call(
                args, parsing.submitted_job_id, self.policy, before_retry=find_existing
            )
        except commands.PermanentError as error:
            raise SubmissionRejected(f"sbatch refused the job: {error}") from None

    def common_sbatch_options(self, job_name: str, directory: str, stem: str) -> list[str]:
        """Options of every job: name, output files, no exported environment, resources.

        ``--export=NONE``: the job's launcher exports the environment from a
        private file; the submitting environment may hold secrets.
        """
        check_path(directory)
        # --chdir takes the path as it is; --output and --error are filename
        # patterns, in which only the stem's own %a may be a pattern.
        output = f"{escape_pattern(directory)}/{stem}"
        return [
            f"--job-name={job_name}",
            f"--chdir={directory}",
            f"--output={output}.stdout",
            f"--error={output}.stderr",
            "--export=NONE",
            *self.options.arguments(),
        ]

    def squeue_by_names(self, names: Sequence[str], format: str, parse):
        """``parse`` of one squeue call listing every job and array task named one of ``names``.

        Only the current user's jobs (``-u``): a name must never reach another
        user's jobs. Retried until it parses: a garbled answer must not pass
        for "no job".
        """
        args = [self.paths.squeue, "-h", "--array", "-t", "all", "-u", _current_user()]
        args += ["-n", ",".join(sorted(set(names))), "-o", format]
        return commands.call(args, parse, self.policy)

    # ---------------------------------------------------------------- query

    def query(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        if not jobs:
            return {}
        names = [job.submission for job in jobs]
        records = self.squeue_by_names(names, parsing.SQUEUE_FORMAT, parsing.squeue_records)
        statuses = parsing.statuses(
            records, [job.jobid for job in jobs], self.options.time_limit_words()
        )
        for jobid, status in statuses.items():
            if status.scheduler_state == "FAILED" and status.curable:
                statuses[jobid] = self._why_failed(jobid, status)
        return statuses

    def _why_failed(self, jobid: str, status: JobStatus) -> JobStatus:
        """A FAILED job's exit code (one ``scontrol show job``, only for failed jobs)."""
        args = [self.paths.scontrol, "show", "job", jobid]
        answer = commands.ask(args, lambda completed: completed, self.policy.timeout)
        return status if answer is None else parsing.failed_job_status(status, answer)

    # ---------------------------------------------------------------- cancel

    def cancel(self, jobs: Sequence[Job]) -> None:
        selectors = cancel_selectors([job.jobid for job in jobs])
        for start in range(0, len(selectors), CANCEL_BATCH_SIZE):
            args = [self.paths.scancel, *selectors[start : start + CANCEL_BATCH_SIZE]]
            commands.call(args, parsing.cancelled, self.policy)

    def stopped_on(self, signal_name: str) -> JobStatus | None:
        """The time limit, for the signal the pool asked SLURM to send before it.

        That is ``--signal=B:USR1@N`` (the ``time_limit_warning`` option), or a
        ``--signal`` of the user's own in ``sbatch_arguments``.
        """
        warning = self.options.warning_signal()
        if warning is None or signal_name != warning:
            return None
        if users_signal(self.options.sbatch_arguments) is not None:
            sent = "by the --signal of sbatch_arguments"
        else:
            sent = (
                f"{self.options.time_limit_warning} s ahead, or up to a minute earlier "
                "(the pool's time_limit_warning)"
            )
        return timed_out(
            signal_name,
            f"SLURM's warning before the time limit, sent {sent}",
            self.options.time_limit_words(),
        )

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
        partitions = self.options.partitions()
        return commands.ask(
            [self.paths.sinfo, "-h", "-o", "%P|%C"],
            lambda completed: parsing.total_cpus(completed, partitions),
            self.policy.timeout,
        )

    def explain(self, job: Job) -> str:
        """State, reason and exit code from ``scontrol show job`` while SLURM knows the job."""
        args = [self.paths.scontrol, "show", "job", job.jobid]
        return commands.ask(args, parsing.job_explanation, self.policy.timeout) or ""


# -------------------------------------------------------------------- arrays


@dataclasses.dataclass(frozen=True)
class Piece:
    """One ``sbatch --array`` call of a submission: which chunk each array index runs.

    Every piece carries the submission's job name, by which squeue finds all
    of them; its comment tells the pieces apart.
    """

    number: int
    """0 for the array whose indices are the chunks; 1, 2, ... for those beyond
    ``MaxArraySize``, whose task ``i`` runs the chunk on line ``i`` of a chunk list."""

    chunk_of_index: dict[int, int]

    chunk_list_path: str | None = None

    @property
    def comment(self) -> str:
        return f"pypoolparty array {self.number}"

    def stem(self, submission: Submission) -> str:
        """Start of the names of this piece's output files, unique in the submission."""
        suffix = f".{self.number}" if self.number else ""
        return f"{submission.job_name}{suffix}"


class ArrayScheduler(SlurmScheduler):
    """One ``sbatch --array`` per submission (more only beyond ``MaxArraySize``)."""

    def __init__(self, *args, max_array_size: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._max_array_size = max_array_size

    def submit(self, submission: Submission) -> list[Job]:
        jobs = []
        for piece in split(submission, self.max_array_size()):
            jobs += self._submit_piece(submission, piece)
        return submission_order(submission, jobs)

    def max_array_size(self) -> int:
        """The option if given, else the site's ``MaxArraySize`` (asked once)."""
        if self._max_array_size is None:
            # Remember only the site's answer: a failed look is tried again next time.
            self._max_array_size = commands.ask(
                [self.paths.scontrol, "show", "config"],
                parsing.site_max_array_size,
                self.policy.timeout,
            )
            if self._max_array_size is None:
                logger.info("cannot read MaxArraySize, assuming %d", DEFAULT_MAX_ARRAY_SIZE)
        return self._max_array_size or DEFAULT_MAX_ARRAY_SIZE

    def _submit_piece(self, submission: Submission, piece: Piece) -> list[Job]:
        if piece.chunk_list_path is None:
            command = submission.worker.shell_command(ichunk_from_env=TASK_ID_VARIABLE)
        else:
            write_chunk_list(piece)
            command = submission.worker.shell_command(
                ichunk_from_env=TASK_ID_VARIABLE, chunk_list_path=piece.chunk_list_path
            )
        array = parsing.index_expression(piece.chunk_of_index)
        if submission.num_simultaneously_running:
            array += f"%{submission.num_simultaneously_running}"
        options = [
            f"--array={array}",
            f"--comment={piece.comment}",
            *self.common_sbatch_options(
                submission.job_name, submission.directory, f"{piece.stem(submission)}_%a"
            ),
        ]
        array_job_id = self.sbatch(
            options, command, lambda: self._find_arrays(submission.job_name).get(piece.comment)
        )
        return jobs_of(submission, piece, array_job_id)

    def recover(self, submission: Submission) -> list[Job]:
        """The array tasks of ``submission`` from the arrays squeue still lists."""
        found = self._find_arrays(submission.job_name)
        jobs = []
        for piece in split(submission, self.max_array_size()):
            if piece.comment in found:
                jobs += jobs_of(submission, piece, found[piece.comment])
        return jobs

    def _find_arrays(self, job_name: str) -> dict[str, str]:
        """Comment -> array job id of the arrays named ``job_name`` that squeue lists."""
        return self.squeue_by_names(
            [job_name], parsing.SQUEUE_ARRAY_COMMENT_FORMAT, parsing.jobs_with_comment
        )


def split(submission: Submission, max_array_size: int) -> list[Piece]:
    """Split the chunks into arrays SLURM accepts (indices below ``max_array_size``)."""
    direct = [ichunk for ichunk in submission.chunks if ichunk < max_array_size]
    beyond = [ichunk for ichunk in submission.chunks if ichunk >= max_array_size]
    pieces = []
    if direct:
        pieces.append(Piece(0, {ichunk: ichunk for ichunk in direct}))
    per_piece = max_array_size - 1  # list indices start at 1
    for number, start in enumerate(range(0, len(beyond), per_piece), start=1):
        chunks = beyond[start : start + per_piece]
        path = os.path.join(submission.directory, f"{submission.job_name}.{number}.chunks")
        pieces.append(Piece(number, dict(enumerate(chunks, start=1)), path))
    return pieces


def jobs_of(submission: Submission, piece: Piece, array_job_id: str) -> list[Job]:
    """The job of each chunk of ``piece`` once sbatch made it array ``array_job_id``."""

    def output(index: int, suffix: str) -> str:
        return os.path.join(submission.directory, f"{piece.stem(submission)}_{index}.{suffix}")

    return [
        Job(
            jobid=f"{array_job_id}_{index}",
            ichunk=ichunk,
            stdout_path=output(index, "stdout"),
            stderr_path=output(index, "stderr"),
            submission=submission.job_name,
        )
        for index, ichunk in piece.chunk_of_index.items()
    ]


def write_chunk_list(piece: Piece) -> None:
    """Write the chunk list of ``piece``: line ``i`` holds the chunk of task ``i``."""
    text = "".join(f"{piece.chunk_of_index[i]}\n" for i in sorted(piece.chunk_of_index))
    write_private(piece.chunk_list_path, text.encode())


def submission_order(submission: Submission, jobs: list[Job]) -> list[Job]:
    """``jobs`` in the order of ``submission.chunks``."""
    by_chunk = {job.ichunk: job for job in jobs}
    return [by_chunk[ichunk] for ichunk in submission.chunks]


# ---------------------------------------------------------- single jobs


class JobScheduler(SlurmScheduler):
    """One ``sbatch`` per chunk; the job's comment names its chunk."""

    def submit(self, submission: Submission) -> list[Job]:
        lanes = submission.num_simultaneously_running
        jobs: list[Job] = []
        for ichunk in submission.chunks:
            waits_for = jobs[-lanes].jobid if lanes and len(jobs) >= lanes else None
            jobs.append(self._submit_chunk(submission, ichunk, waits_for))
        return jobs

    def _submit_chunk(self, submission: Submission, ichunk: int, waits_for: str | None) -> Job:
        name, directory = submission.job_name, submission.directory
        comment = chunk_comment(ichunk)
        options = [
            f"--comment={comment}",
            *self.common_sbatch_options(name, directory, f"{name}_{ichunk}"),
        ]
        if waits_for is not None:
            options.append(f"--dependency=afterany:{waits_for}")
        command = submission.worker.shell_command(ichunk=ichunk)
        jobid = self.sbatch(options, command, lambda: self._find_jobs(name).get(comment))
        return job_of(submission, ichunk, jobid)

    def recover(self, submission: Submission) -> list[Job]:
        """The jobs of ``submission`` that squeue still lists, found by their comments."""
        found = self._find_jobs(submission.job_name)
        return [
            job_of(submission, ichunk, found[chunk_comment(ichunk)])
            for ichunk in submission.chunks
            if chunk_comment(ichunk) in found
        ]

    def _find_jobs(self, job_name: str) -> dict[str, str]:
        """Comment -> job id of the jobs named ``job_name`` that squeue lists."""
        return self.squeue_by_names(
            [job_name], parsing.SQUEUE_COMMENT_FORMAT, parsing.jobs_with_comment
        )


def job_of(submission: Submission, ichunk: int, jobid: str) -> Job:
    stem = os.path.join(submission.directory, f"{submission.job_name}_{ichunk}")
    return Job(jobid, ichunk, f"{stem}.stdout", f"{stem}.stderr", submission.job_name)


def chunk_comment(ichunk: int) -> str:
    return f"pypoolparty chunk {ichunk}"


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


def escape_pattern(path: str) -> str:
    """``path`` as a literal in sbatch's filename patterns (``--output``, ``--error``).

    sbatch replaces ``%A``, ``%a``, ``%j``, ``%x``, ... in these and reads
    ``%%`` as one ``%`` (sbatch(1), "filename pattern"), so a directory named
    ``100%a`` must be written ``100%%a``.
    """
    return path.replace("%", "%%")


def check_path(directory: str) -> None:
    """Refuse a submission directory that sbatch's options cannot name.

    Raises
    ------
    SubmissionRejected
        ``directory`` holds a character of :data:`UNUSABLE_IN_PATHS`.
        Nothing was submitted.
    """
    for character, (name, why) in UNUSABLE_IN_PATHS.items():
        if character in directory:
            raise SubmissionRejected(
                f"SLURM cannot take a work_dir whose path holds {name}: {why} "
                f"(in {directory!r}). Nothing was submitted; pass a work_dir without it."
            )


def _current_user() -> str:
    """The user whose jobs a map may see: the effective uid's name, not ``$USER``."""
    return pwd.getpwuid(os.geteuid()).pw_name
