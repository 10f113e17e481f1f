"""The interface between the scheduler-agnostic session and one batch system.

An adapter is three operations on *jobs*: ``submit`` a batch of chunks
(one scheduler call wherever the scheduler has arrays), ``query`` the state of
jobs (one scheduler call per poll, whatever their number) and ``cancel`` jobs.
It knows nothing about pickles, results or tasks; the session knows nothing
about command lines. Adding a scheduler means one new package (``pool.py``,
``scheduler.py`` with a :class:`Scheduler`, ``options.py``, ``parsing.py``)
and a dummy: see ``docs/new_scheduler.rst``.

A *chunk* is a slice of the tasks; a *job* is what the scheduler runs. Today a
job runs exactly the one chunk it was submitted for.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import os
import shlex
from collections.abc import Sequence

from . import container as containers
from . import launcher

# Adapters raise it from here; it lives with the errors a map's caller sees.
# Classifying failures: :class:`JobStatus` says whether a job failed
# (:attr:`JobState.ERROR`, handled at once) or just ended (the result file
# decides, after a grace period), and :attr:`JobStatus.fix` whether a
# resubmission may cure the failure. Every adapter fills both from its
# parsing through :func:`failed` and :func:`incurable`; the session only reads them.
from .errors import SubmissionRejected as SubmissionRejected


class JobState(enum.Enum):
    """What the session needs to know about a job, whatever the scheduler."""

    PENDING = "pending"
    """Waiting in the queue (also throttled, requeued, waiting for resources)."""

    RUNNING = "running"
    """Started (also completing, suspended, transferring)."""

    HELD = "held"
    """Held on purpose by the job's own user (``scontrol hold``, ``qhold``,
    ``condor_hold``): left alone and reported, never resubmitted. A hold by
    the system or an admin is an :attr:`ERROR`, not this."""

    ERROR = "error"
    """The scheduler says the job failed or will never run: handled at once,
    without waiting for a late result file. Cancelled and resubmitted if
    :attr:`JobStatus.fix` is empty; else the map ends (see :class:`JobStatus`)."""

    ENDED = "ended"
    """The scheduler says the job ended without saying that it failed (exit
    code 0, or no exit code known): the result file decides success, after
    the grace period for late files."""

    UNKNOWN = "unknown"
    """A state this adapter does not know: keep waiting and log it."""


@dataclasses.dataclass(frozen=True)
class JobStatus:
    """The state of one job as reported by one scheduler query."""

    state: JobState
    scheduler_state: str
    """The scheduler's own word for it, e.g. ``NODE_FAIL``, ``Eqw``, ``5``."""

    reason: str = ""
    """The scheduler's reason, e.g. ``NodeDown`` or a HoldReason, if any; for a
    pending job, why it waits (``Priority``, ``BeginTime``, ...)."""

    blocked: bool = False
    """Pending for a reason that does not clear by itself -- nodes down or
    drained, a request beyond a partition's or an account's limits, no queue
    or machine that matches -- so someone must act (see
    :mod:`pypoolparty.pending`). Waiting for free resources, a start time or
    a dependency is not blocked."""

    fix: str = ""
    """Only for :attr:`JobState.ERROR`: what the user must change, when no
    resubmission can cure this failure (a permission or path hold, a missing
    interpreter, a request the cluster can never satisfy). Empty for a failure
    a resubmission may cure (a node failure, an eviction, a preemption, a
    vanished job, a hold by the system or an admin). Adapters fill it from
    their parsing, through :func:`incurable`; the session ends the map at the
    first job with a fix, with the scheduler's reason and this text."""

    time_limit: str = ""
    """Only for :attr:`JobState.ERROR`: the job was killed at its time limit,
    which this text names with the pool option that sets it, e.g. "the job's
    time limit (SLURM TIMEOUT; the pool's ``time`` option)". A limit is the
    user's estimate: the unfinished tasks run again, but a task that alone
    exceeds the limit ends the map. Adapters fill it through :func:`timed_out`."""

    by_the_cluster: bool = False
    """Only for :attr:`JobState.ERROR`: the cluster stopped a job that did
    nothing wrong -- a preemption, an eviction, a requeue by an admin, a node
    failure. Its chunk runs again without counting against
    ``max_num_resubmissions``. Adapters fill it through
    :func:`stopped_by_the_cluster`."""

    def __post_init__(self) -> None:
        # Python 3.9 has no keyword-only dataclass fields: catch a fix passed
        # where ``blocked`` stands, which would silently make a failure curable.
        if (
            not isinstance(self.blocked, bool)
            or not isinstance(self.fix, str)
            or not isinstance(self.time_limit, str)
            or not isinstance(self.by_the_cluster, bool)
        ):
            raise TypeError(
                "JobStatus: pass blocked, fix, time_limit and by_the_cluster by keyword"
            )

    @property
    def curable(self) -> bool:
        """Whether resubmitting the job may help (always true but for ERROR with a fix)."""
        return not self.fix


def failed(scheduler_state: str, reason: str = "") -> JobStatus:
    """A job the scheduler reports as failed for a reason a resubmission may cure.

    Parameters
    ----------
    scheduler_state : str
        The scheduler's own word, e.g. ``NODE_FAIL`` or ``5 (Held)``.
    reason : str
        The scheduler's reason, if it gives one.

    Returns
    -------
    JobStatus
        In :attr:`JobState.ERROR`, without a fix: the session cancels the job
        and resubmits its chunk at once, counting a resubmission.
    """
    return JobStatus(JobState.ERROR, scheduler_state, reason)


def incurable(scheduler_state: str, reason: str, fix: str) -> JobStatus:
    """A job that failed in a way no resubmission can cure.

    Parameters
    ----------
    scheduler_state : str
        The scheduler's own word, e.g. ``5 (Held)``.
    reason : str
        The scheduler's reason, in its own words.
    fix : str
        What the user must change, one or two sentences, e.g. "Make the
        work_dir readable to the user the jobs run as".

    Returns
    -------
    JobStatus
        In :attr:`JobState.ERROR` with ``fix``: the session ends the map at
        once with :class:`pypoolparty.errors.JobCannotRun`.
    """
    if not fix:
        raise ValueError("an incurable failure needs a fix")
    return JobStatus(JobState.ERROR, scheduler_state, reason, fix=fix)


def timed_out(scheduler_state: str, reason: str, time_limit: str) -> JobStatus:
    """A job the scheduler killed at its time limit.

    Parameters
    ----------
    scheduler_state : str
        The scheduler's own word, e.g. ``TIMEOUT``.
    reason : str
        The scheduler's reason, if it gives one.
    time_limit : str
        The limit and the pool option that sets it, e.g. "the job's time
        limit (SLURM TIMEOUT; the pool's ``time`` option)".

    Returns
    -------
    JobStatus
        In :attr:`JobState.ERROR` with :attr:`JobStatus.time_limit`.
    """
    if not time_limit:
        raise ValueError("a time limit kill needs the limit's name")
    return JobStatus(JobState.ERROR, scheduler_state, reason, time_limit=time_limit)


def stopped_by_the_cluster(scheduler_state: str, reason: str = "") -> JobStatus:
    """A job the cluster stopped through no fault of its own.

    Preemption, eviction, a requeue by an admin or a node failure.

    Parameters
    ----------
    scheduler_state : str
        The scheduler's own word, e.g. ``PREEMPTED`` or ``NODE_FAIL``.
    reason : str
        The scheduler's reason, if it gives one.

    Returns
    -------
    JobStatus
        In :attr:`JobState.ERROR` with :attr:`JobStatus.by_the_cluster`: the
        chunk runs again, not counted as a resubmission.
    """
    return JobStatus(JobState.ERROR, scheduler_state, reason, by_the_cluster=True)


@dataclasses.dataclass(frozen=True)
class Job:
    """One job of the scheduler, running one chunk."""

    jobid: str
    """The scheduler's id for this job, e.g. ``123_4``, ``77.5`` or ``12.3``."""

    ichunk: int
    """The chunk this job runs."""

    stdout_path: str
    """Where the scheduler writes the job's standard output."""

    stderr_path: str
    """Where the scheduler writes the job's standard error."""

    submission: str
    """The :attr:`Submission.job_name` of the submission that made this job:
    how an adapter finds the job in its scheduler's queue again, also for a
    job submitted by an earlier process whose map is being continued."""


@dataclasses.dataclass(frozen=True)
class WorkerCall:
    """How to start the worker script on a compute node.

    The worker finds its chunk in one of three ways, matching what schedulers
    offer: a literal chunk index (one job per chunk, HTCondor's ``$(ichunk)``),
    an environment variable that holds the chunk index (SLURM's
    ``SLURM_ARRAY_TASK_ID`` when array index == chunk index), or an
    environment variable holding a 1-based line number of a file that lists
    chunk indices (SGE's ``SGE_TASK_ID``, whose ids must be a range).
    """

    python_path: str
    """The interpreter that runs the worker on the compute node."""

    script_path: str
    """The worker script, copied into the session directory."""

    session_dir: str
    """The map's session directory, ``<work_dir>/map-<fingerprint>``: the
    worker reads its chunk from there and writes the outcome there."""

    container: containers.Container | None = None
    """The image the worker runs in, if any (the pool's ``container``)."""

    working_dir: str = ""
    """The submitting process's working directory (``os.getcwd()`` at
    submission): with a container, mounted at the same path (as is the
    work_dir) and the worker's working directory there."""

    launcher_path: str | None = None
    """The session directory's ``launcher.sh``, which sets the exported
    environment and runs the setup lines before it execs the worker (see
    :mod:`pypoolparty.launcher`); ``None`` starts the interpreter directly
    (a stand-in worker in adapter tests)."""

    submission: str = ""
    """The submission's job name, passed on as ``--submission``: with the
    chunk a job was submitted for, it names the job in the claims its worker
    makes (:mod:`pypoolparty.claims`)."""

    def arguments(
        self,
        ichunk: int | str | None = None,
        ichunk_from_env: str | None = None,
        chunk_list_path: str | None = None,
    ) -> list[str]:
        """Return the job's command line as a list of arguments.

        Give exactly one of ``ichunk`` (an int, or a scheduler macro such as
        ``$(ichunk)``) or ``ichunk_from_env``; ``chunk_list_path`` only with
        ``ichunk_from_env``. The command starts the launcher, which execs
        ``python_path script_path session_dir`` and the chunk's options
        (:func:`pypoolparty.launcher.job_command`).
        """
        if (ichunk is None) == (ichunk_from_env is None):
            raise ValueError("give exactly one of ichunk or ichunk_from_env")
        if chunk_list_path is not None and ichunk_from_env is None:
            raise ValueError("chunk_list_path needs ichunk_from_env")
        args = [self.python_path, self.script_path, self.session_dir]
        if ichunk is not None:
            args += ["--ichunk", str(ichunk)]
        else:
            args += ["--ichunk-from-env", ichunk_from_env]
            if chunk_list_path is not None:
                args += ["--chunk-list", chunk_list_path]
        if self.submission:
            args += ["--submission", self.submission]
        # -- containers: the one place the worker's command is wrapped ------
        # The launcher (the exported variables, the setup lines) runs inside
        # the image too; the runtime's own command line comes from
        # pypoolparty.container.command.
        args = launcher.job_command(self.launcher_path, args)
        if self.container is not None:
            args = containers.command(
                self.container,
                args,
                # The work_dir, not the session directory: a read-only image
                # (Charliecloud's) needs a mount point per bind, made once.
                binds=[os.path.dirname(self.session_dir)],
                workdir=self.working_dir or self.session_dir,
                environment=[ichunk_from_env] if ichunk_from_env else [],
                user=(os.getuid(), os.getgid()),
            )
        return args

    def shell_command(self, **kwargs) -> str:
        """The same as :meth:`arguments`, quoted for a POSIX shell."""
        return " ".join(shlex.quote(a) for a in self.arguments(**kwargs))


@dataclasses.dataclass(frozen=True)
class Submission:
    """What the session asks an adapter to submit."""

    chunks: Sequence[int]
    """The chunk indices to run, one job each. Never empty."""

    job_name: str
    """Name for the job(s), unique to this submission; letters, digits, ``_.-``,
    starting with a letter. Use it to find the jobs again (e.g. after a
    submission timed out, to avoid submitting twice)."""

    worker: WorkerCall

    directory: str
    """A private directory (0700) for this submission's scripts and the
    scheduler's stdout/stderr files; it exists when ``submit`` is called."""

    num_simultaneously_running: int | None = None
    """Throttle: how many jobs of this submission may run at once, if limited."""


class Scheduler(abc.ABC):
    """The three operations a batch system must offer to the session."""

    name: str = "scheduler"

    shares_file_system: bool = True
    """Whether the jobs see the work_dir. ``False``: the adapter copies each
    job's files in and its outputs back (:mod:`pypoolparty.job_files`), so the
    worker gets no path of the submit host (its ``sys.path``, working
    directory, script), and the map's fingerprint differs from a shared one's."""

    @abc.abstractmethod
    def submit(self, submission: Submission) -> list[Job]:
        """Submit one job per chunk, with as few scheduler calls as possible.

        Returns the jobs in the order of ``submission.chunks``. Raises
        :class:`SubmissionRejected` when the scheduler refuses, and
        :class:`pypoolparty.commands.CommandFailed` when it cannot be reached
        for longer than the outage budget.
        """

    @abc.abstractmethod
    def query(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        """Return the status of those ``jobs`` the scheduler still knows.

        One scheduler call whatever the number of jobs. A job missing from the
        answer has left the queue; the session judges it by its result file.
        """

    @abc.abstractmethod
    def cancel(self, jobs: Sequence[Job]) -> None:
        """Cancel ``jobs``. Cancelling a job that is already gone is fine."""

    def required_commands(self) -> dict[str, str]:
        """The scheduler commands this adapter calls: option name -> path or name.

        Checked before a map prepares anything, so that a missing ``sbatch``
        is a clear error rather than a failed submission.
        """
        return {}

    def recover(self, submission: Submission) -> list[Job]:
        """The jobs an earlier ``submit(submission)`` created, as far as still known.

        Used when a map continues after its submitting process died during a
        submission, before it recorded the job ids: the scheduler may have
        accepted the jobs anyway. The jobs returned are adopted; chunks
        without one are submitted again (their results, if already written,
        are found first). Look the jobs up by ``submission.job_name``, as
        ``submit`` does before retrying. The default finds none, for
        schedulers whose jobs cannot outlive the process that submitted them.
        """
        return []

    def how_ended(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        """How ``jobs``, which have left the queue without a result so far, ended.

        Asked by the session at most once per poll, only for jobs that
        vanished from :meth:`query`'s answer and whose result has not
        arrived: a scheduler that keeps records of finished jobs (Grid
        Engine's ``qacct``) tells a failed job (:func:`failed`, handled at
        once) from one that ended well (:attr:`JobState.ENDED`, whose result
        may be late on a shared file system). Jobs it does not know are left
        out; they wait ``missing_result_grace_period``. The default knows none.
        """
        return {}

    def capacity(self) -> int | None:
        """How many jobs could run at once on the target, if the scheduler
        tells (used only for the default chunk size); ``None`` if unknown."""
        return None

    def pending_reasons(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        """Why ``jobs`` wait, for schedulers whose :meth:`query` does not tell.

        Called for jobs that :meth:`query` reports pending without a reason,
        once they have waited a while, and at most once a minute
        (:mod:`pypoolparty.pending`): never one call per job. Returns a
        pending :class:`JobStatus` with :attr:`JobStatus.reason` and
        :attr:`JobStatus.blocked` for each job it can tell about; the session
        shows and logs it in place of the poll's. The default tells nothing
        (SLURM's ``squeue`` already gives the reason with every poll).
        """
        return {}

    def stopped_on(self, signal_name: str) -> JobStatus | None:
        """What a worker that stopped on ``signal_name`` says of its job, if this adapter knows.

        The worker stops its chunk on SIGTERM, SIGUSR1 or SIGUSR2 and writes
        an outcome that names the signal (``"SIGUSR1"``). Where the pool asks
        its scheduler for a signal of its own before the time limit (SLURM's
        ``--signal``), that signal means the limit is near: return
        :func:`timed_out` for it, so the session treats the stop as a time
        limit, not as the cluster's doing. The default knows no signal: the
        session goes by the job's status in the scheduler.
        """
        return None

    def explain(self, job: Job) -> str:
        """More words on why ``job`` is in error, if the scheduler has them
        (e.g. ``qstat -j``). Called rarely, only for jobs in error."""
        return ""
