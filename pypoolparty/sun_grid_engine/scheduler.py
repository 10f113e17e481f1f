"""The Grid Engine adapter: one ``qsub -t`` array job per submission.

Array task ``t`` runs the chunk on line ``t`` of the submission's chunk list
(Grid Engine's task ids are a range starting at 1, the chunk indices need not
be). Its job id is ``"<job number>.<t>"``.
"""

from __future__ import annotations

import dataclasses
import os
import pwd
import re
import shlex
import time
from collections.abc import Sequence

from .. import commands
from ..event_log import consecutive_runs
from ..scheduler import (
    Job,
    JobState,
    JobStatus,
    Scheduler,
    Submission,
    SubmissionRejected,
    timed_out,
)
from ..work_dir import write_private
from . import parsing
from .options import QsubOptions

QSUB_PATH_LIST_SPECIALS = ",:$"


@dataclasses.dataclass(frozen=True)
class CommandPaths:
    """Where the Grid Engine commands are; tests point these at the dummy queue.

    They need ``SGE_ROOT`` and ``SGE_CELL`` in the environment unless they are
    wrappers that set them (as Debian's ``/usr/bin/qsub`` does).
    """

    qsub: str = "qsub"
    qstat: str = "qstat"
    qdel: str = "qdel"

    @property
    def qacct(self) -> str:
        """``qacct`` beside ``qstat`` (asked only how jobs that left the queue ended)."""
        return os.path.join(os.path.dirname(self.qstat), "qacct")


class GridEngineScheduler(Scheduler):
    """Submit, watch and cancel array jobs with ``qsub``, ``qstat`` and ``qdel``.

    Parameters
    ----------
    options : QsubOptions
        Queue, parallel environment, resources and extra qsub arguments.
    policy : pypoolparty.commands.RetryPolicy
        Timeout and retries of each scheduler command.
    paths : CommandPaths, optional
        The commands to call; default: found on ``PATH``.
    """

    name = "sge"

    def __init__(
        self,
        options: QsubOptions,
        policy: commands.RetryPolicy,
        paths: CommandPaths | None = None,
    ) -> None:
        self.options = options
        self.policy = policy
        self.paths = paths or CommandPaths()
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        # The error reason of each task seen in an E state, from qstat -j.
        self._error_reasons: dict[str, str] = {}
        # When each task seen running started (qstat's JAT_start_time, seconds
        # since the epoch): without accounting, the hint of an h_rt kill.
        self._started: dict[str, float] = {}

    def submit(self, submission: Submission) -> list[Job]:
        """Submit one array job with a task per chunk; return a job per task."""
        args = self.qsub_command(submission, write_job_script(submission))
        try:
            job_number = commands.call(
                args,
                parse=parsing.parse_qsub,
                policy=self.policy,
                before_retry=lambda: self.find_job_number(submission),
            )
        except commands.PermanentError as error:
            raise SubmissionRejected(f"qsub refused the array job: {error}") from None
        return jobs_of(submission, job_number)

    def recover(self, submission: Submission) -> list[Job]:
        """The tasks of the array job of ``submission``, if qsub created it."""
        job_number = self.find_job_number(submission)
        return [] if job_number is None else jobs_of(submission, job_number)

    def qsub_command(self, submission: Submission, script_path: str) -> list[str]:
        """The qsub call for ``submission``: an array job of one task per chunk."""
        stem = os.path.join(submission.directory, submission.job_name)
        args = [self.paths.qsub, "-terse", "-N", submission.job_name]
        args += ["-t", f"1-{len(submission.chunks)}"]
        if submission.num_simultaneously_running is not None:
            args += ["-tc", str(submission.num_simultaneously_running)]
        # -cwd: tasks start where the map was called, as multiprocessing's do;
        # where qsub would garble that path, the job script goes there itself.
        args += ["-S", "/bin/sh"]
        if qsub_can_name(submission.worker.working_dir or os.getcwd()):
            args += ["-cwd"]
        # The job number in the file names tells which job ran, even after it
        # left the queue (see find_job_number).
        if qsub_can_name(submission.directory):
            args += ["-o", f"{stem}.$JOB_ID.$TASK_ID.out", "-e", f"{stem}.$JOB_ID.$TASK_ID.err"]
        else:
            # The job script sends its output to the same files itself.
            args += ["-o", "/dev/null", "-e", "/dev/null"]
        return args + self.options.arguments() + [script_path]

    def qstat(self) -> list[parsing.QstatEntry]:
        """The jobs of this user that Grid Engine lists (one ``qstat -xml`` call)."""
        return commands.call(
            [self.paths.qstat, "-xml", "-u", self.user],
            parse=parsing.parse_qstat,
            policy=self.policy,
        )

    def find_job_number(self, submission: Submission) -> str | None:
        """The number of the array job of ``submission`` if qsub created it.

        Asked before retrying a ``qsub`` that failed or timed out: the job may
        have been created anyway, and must not be submitted twice. It is
        either still listed by ``qstat`` under its name, or some of its tasks
        already ran, which left output files named after the job number.
        """
        listed = [int(e.job_number) for e in self.qstat() if e.name == submission.job_name]
        if listed:
            return str(min(listed))
        pattern = re.compile(rf"^{re.escape(submission.job_name)}\.(\d+)\.\d+\.(out|err)$")
        matches = (pattern.match(name) for name in os.listdir(submission.directory))
        ran = [int(match.group(1)) for match in matches if match]
        return str(min(ran)) if ran else None

    def query(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        """The status of each of ``jobs`` that ``qstat`` still lists.

        One ``qstat -xml`` call; a job in an error state costs one ``qstat -j``
        the first time it is seen (its error reason says whether a
        resubmission may cure it), and held jobs one ``qstat -s hu`` (a
        user's own hold is left alone, another's is an error).
        """
        wanted = {job.jobid for job in jobs}
        statuses = {}
        for entry in self.qstat():
            for task_id in entry.tasks or (1,):
                jobid = f"{entry.job_number}.{task_id}"
                if jobid in wanted:
                    statuses[jobid] = JobStatus(parsing.job_state(entry.state), entry.state)
                    self._note_start(jobid, entry.start_time)
        held = [jobid for jobid, status in statuses.items() if status.state is JobState.HELD]
        if held:
            user_held = self._user_held()
            for jobid in held:
                statuses[jobid] = parsing.held_status(
                    statuses[jobid].scheduler_state, jobid in user_held
                )
        for jobid, status in list(statuses.items()):
            if status.state is JobState.ERROR and not status.reason:
                reason = self._error_reason(jobid)
                statuses[jobid] = parsing.error_status(status.scheduler_state, reason)
        return statuses

    def _user_held(self) -> set[str]:
        """The job ids of this user's jobs that have a user hold (``qstat -s hu``)."""
        entries = commands.call(
            [self.paths.qstat, "-xml", "-u", self.user, "-s", "hu"],
            parse=parsing.parse_qstat,
            policy=self.policy,
        )
        return {f"{e.job_number}.{task}" for e in entries for task in e.tasks or (1,)}

    def _error_reason(self, jobid: str) -> str:
        if jobid not in self._error_reasons:
            job_number = jobid.partition(".")[0]
            reasons = commands.ask(
                [self.paths.qstat, "-j", job_number], parsing.parse_qstat_j, self.policy.timeout
            )
            for task_id, reason in (reasons or {}).items():
                self._error_reasons[f"{job_number}.{task_id}"] = reason
        return self._error_reasons.get(jobid, "")

    def _note_start(self, jobid: str, start_time: str) -> None:
        started = parsing.start_time_seconds(start_time) if start_time else None
        if started is not None:
            # A rescheduled task starts again: its latest start counts.
            self._started[jobid] = started

    def how_ended(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        """How ``jobs``, gone from ``qstat``, ended, as far as ``qacct`` knows yet.

        One ``qacct -j NUMBER -t FIRST-LAST`` per array job. Grid Engine
        writes the accounting record a little after the job left the queue;
        jobs without one are left out (the session keeps waiting for them),
        but for a job that ran for the pool's whole ``h_rt`` (by ``qstat``'s
        start time): Grid Engine killed it at its limit, with or without
        accounting (:func:`parsing.killed_at_run_time_limit`).
        """
        tasks_by_number: dict[str, list[int]] = {}
        for job in jobs:
            job_number, _, task_id = job.jobid.partition(".")
            tasks_by_number.setdefault(job_number, []).append(int(task_id or 1))
        statuses = {}
        for job_number, task_ids in sorted(tasks_by_number.items()):
            args = [self.paths.qacct, "-j", job_number, "-t", f"{min(task_ids)}-{max(task_ids)}"]
            records = commands.ask(args, parsing.parse_qacct_command, self.policy.timeout)
            for task_id in task_ids:
                if records and task_id in records:
                    statuses[f"{job_number}.{task_id}"] = records[task_id].status()
        h_rt = self.options.resources.get("h_rt", "")
        now = time.time()
        for job in jobs:
            if job.jobid in statuses or not h_rt:
                continue
            limit = parsing.killed_at_run_time_limit(h_rt, self._started.get(job.jobid), now)
            if limit:
                reason = (
                    "left the queue after running its h_rt (by qstat's start time); "
                    "no qacct record of it (yet)"
                )
                statuses[job.jobid] = timed_out("qstat", reason, limit)
        return statuses

    def cancel(self, jobs: Sequence[Job]) -> None:
        """Delete ``jobs`` with one ``qdel`` call; jobs already gone are fine."""
        if not jobs:
            return
        commands.call(
            [self.paths.qdel, *task_ranges(job.jobid for job in jobs)],
            parse=parsing.parse_qdel,
            policy=self.policy,
        )

    def required_commands(self) -> dict[str, str]:
        return {
            "qsub_path": self.paths.qsub,
            "qstat_path": self.paths.qstat,
            "qdel_path": self.paths.qdel,
        }

    def capacity(self) -> int | None:
        """Jobs that fit at once: usable slots of the queue (``qstat -g c``) / slots per job."""
        queue = self.options.queue_name
        if queue is not None and any(c in queue for c in "@,*"):
            queue = None
        slots = commands.ask(
            [self.paths.qstat, "-g", "c"],
            lambda completed: parsing.usable_slots(completed, queue),
            self.policy.timeout,
        )
        return max(slots // self.options.slots, 1) if slots else None

    def pending_reasons(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        """Why ``jobs`` wait, from the ``scheduling info`` of one ``qstat -j N1,N2,...``.

        One call for all their job numbers (an array job's tasks share one).
        Grid Engine writes the reasons only with ``schedd_job_info true`` in
        its scheduler configuration; without, or without an answer, nothing
        is known.
        """
        job_numbers = sorted({job.jobid.partition(".")[0] for job in jobs}, key=int)
        if not job_numbers:
            return {}
        found = commands.ask(
            [self.paths.qstat, "-j", ",".join(job_numbers)],
            parsing.parse_qstat_j_pending,
            self.policy.timeout,
        )
        by_number = {
            number: JobStatus(
                JobState.PENDING,
                "qw",
                parsing.pending_reason(lines),
                blocked=parsing.scheduling_info_blocks(lines),
            )
            for number, lines in (found or {}).items()
            if lines
        }
        return {
            job.jobid: by_number[number]
            for job in jobs
            if (number := job.jobid.partition(".")[0]) in by_number
        }

    def explain(self, job: Job) -> str:
        """Grid Engine's error reason for ``job`` (from ``qstat -j``), if it has one
        and :meth:`query` did not already give it."""
        if job.jobid in self._error_reasons:
            return ""
        job_number, _, task_id = job.jobid.partition(".")
        reasons = commands.ask(
            [self.paths.qstat, "-j", job_number], parsing.parse_qstat_j, self.policy.timeout
        )
        if not reasons:
            return ""
        if task_id.isdigit() and int(task_id) in reasons:
            return reasons[int(task_id)]
        return next(iter(reasons.values()))


def jobs_of(submission: Submission, job_number: str) -> list[Job]:
    """The job of each chunk of ``submission`` once qsub made it array job ``job_number``."""
    stem = os.path.join(submission.directory, submission.job_name)
    return [
        Job(
            jobid=f"{job_number}.{task_id}",
            ichunk=ichunk,
            stdout_path=f"{stem}.{job_number}.{task_id}.out",
            stderr_path=f"{stem}.{job_number}.{task_id}.err",
            submission=submission.job_name,
        )
        for task_id, ichunk in enumerate(submission.chunks, start=1)
    ]


def write_job_script(submission: Submission) -> str:
    """Write the chunk list and the job script into the submission's directory.

    Grid Engine ignores a script's ``#!`` line (it runs scripts with the
    queue's shell, here ``-S /bin/sh``), and ``-S python`` would lose a
    virtual environment (the interpreter is started as plain ``python``).
    So the script is a shell script that ``exec``\\ s the worker.
    """
    stem = os.path.join(submission.directory, submission.job_name)
    chunk_list_path = f"{stem}.chunks"
    write_private(chunk_list_path, "".join(f"{ichunk}\n" for ichunk in submission.chunks).encode())
    command = submission.worker.shell_command(
        ichunk_from_env="SGE_TASK_ID", chunk_list_path=chunk_list_path
    )
    redirect = ""
    if not qsub_can_name(submission.directory):
        # The names qsub -o/-e would give, built by the shell, whose quoting
        # holds any path.
        names = shlex.quote(f"{stem}.") + '"$JOB_ID.$SGE_TASK_ID"'
        redirect = f"umask 077\nexec >{names}.out 2>{names}.err\n"
    working_dir = submission.worker.working_dir or os.getcwd()
    if not qsub_can_name(working_dir):
        # qsub -cwd would replace $HOME, $USER, ... in it (see qsub_command).
        redirect += f"cd {shlex.quote(working_dir)} || exit 1\n"
    script_path = f"{stem}.sh"
    write_private(
        script_path,
        "#!/bin/sh\n"
        f"# pypoolparty array job {submission.job_name}: task t runs the chunk on line t\n"
        f"# of {os.path.basename(chunk_list_path)}.\n"
        f"{redirect}exec {command}\n".encode(),
    )
    return script_path


def qsub_can_name(directory: str) -> bool:
    """Whether qsub's ``-o``/``-e`` can name files in ``directory``.

    qsub reads them as a list of ``[host:]path`` separated by ``,`` and
    replaces ``$HOME``, ``$USER``, ``$JOB_ID``, ... in them, with no way to
    escape ``,``, ``:`` or ``$`` (qsub(1), ``-o``). A directory holding one
    of these gets its job output from the job script instead. That loses
    what Grid Engine itself writes before the script starts, and its error
    state (``Eqw``, "can't open output file") when a node cannot reach the
    directory: such a job ends without a result instead.
    """
    return not any(character in directory for character in QSUB_PATH_LIST_SPECIALS)


def task_ranges(jobids) -> list[str]:
    """``["7.1", "7.2", "7.3", "7.5", "8.1"]`` becomes ``["7.1-3", "7.5", "8.1"]`` for qdel."""
    tasks: dict[str, list[int]] = {}
    for jobid in jobids:
        job_number, _, task_id = jobid.partition(".")
        tasks.setdefault(job_number, []).append(int(task_id or 1))
    ranges = []
    for job_number, ids in tasks.items():
        for first, last in consecutive_runs(sorted(set(ids))):
            ranges.append(
                f"{job_number}.{first}" if first == last else f"{job_number}.{first}-{last}"
            )
    return ranges
