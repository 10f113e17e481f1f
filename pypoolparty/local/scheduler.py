"""The local "scheduler": jobs are worker processes on this machine.

At most ``max_running`` run at once; a queued job starts the moment a slot
frees (a thread waits on each process), so local maps do not wait for polls.
A later process continuing the map adopts workers that outlived the one that
started them: it finds them by their environment, which names their job
(the submission's job name), and their command line, which names the chunk.
"""

from __future__ import annotations

import collections
import itertools
import os
import signal
import subprocess
import threading
from collections.abc import Sequence

from ..scheduler import Job, JobState, JobStatus, Scheduler, Submission
from . import parsing

JOB_START_VARIABLES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR", "SHELL")
CANCEL_WAIT = 10.0
"""Seconds ``cancel`` waits for a killed worker to exit."""


class LocalScheduler(Scheduler):
    """Runs each chunk as a local process of the worker script."""

    name = "local"

    def __init__(self, max_running: int) -> None:
        self.max_running = max_running
        self._lock = threading.Lock()
        self._queue: collections.deque[tuple[Job, list[str], str]] = collections.deque()
        self._queued: set[str] = set()
        self._running: dict[str, subprocess.Popen] = {}
        self._exit_codes: dict[str, int] = {}
        self._cancelled: set[str] = set()
        self._start_errors: dict[str, str] = {}
        self._counter = itertools.count()

    def submit(self, submission: Submission) -> list[Job]:
        jobs = []
        with self._lock:
            for ichunk in submission.chunks:
                job = _job(submission, ichunk, jobid=f"{os.getpid()}.{next(self._counter)}")
                arguments = submission.worker.arguments(ichunk=ichunk)
                self._queue.append((job, arguments, submission.job_name))
                self._queued.add(job.jobid)
                jobs.append(job)
            self._start_queued()
        return jobs

    def query(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        statuses = {}
        with self._lock:
            foreign = [job for job in jobs if not self._knows(job)]
            adoptable = _workers_of(foreign)
            for job in jobs:
                if job.jobid in adoptable:
                    status = JobStatus(JobState.RUNNING, "running", "started by an earlier process")
                else:
                    status = self._status(job)
                if status is not None:
                    statuses[job.jobid] = status
        return statuses

    def cancel(self, jobs: Sequence[Job]) -> None:
        """Kill the workers of ``jobs`` and wait until they are gone."""
        with self._lock:
            ids = {job.jobid for job in jobs}
            self._cancelled |= ids & self._queued
            self._queue = collections.deque(q for q in self._queue if q[0].jobid not in ids)
            self._queued -= ids
            killed = [self._running[job.jobid] for job in jobs if job.jobid in self._running]
            foreign = [job for job in jobs if not self._knows(job)]
            _kill([process.pid for process in killed] + list(_workers_of(foreign).values()))
        # SIGKILL takes effect a moment later: a cancelled job must be gone
        # when cancel returns, as it is from a real queue.
        for process in killed:
            try:
                process.wait(CANCEL_WAIT)
            except subprocess.TimeoutExpired:
                pass

    def recover(self, submission: Submission) -> list[Job]:
        """The workers of ``submission`` still running, started by an earlier process.

        Workers outlive the process that started them (a session of their
        own); the ones it had queued but not started died with it.
        """
        found = _workers_on_this_host({submission.job_name})
        return [
            _job(submission, ichunk, jobid=f"{found[submission.job_name, ichunk]}.recovered")
            for ichunk in submission.chunks
            if (submission.job_name, ichunk) in found
        ]

    def capacity(self) -> int:
        return self.max_running

    def _knows(self, job: Job) -> bool:
        return (
            job.jobid in self._queued
            or job.jobid in self._running
            or job.jobid in self._exit_codes
            or job.jobid in self._cancelled
        )

    def _status(self, job: Job) -> JobStatus | None:
        if job.jobid in self._queued:
            return JobStatus(JobState.PENDING, "queued")
        if job.jobid in self._running:
            return JobStatus(JobState.RUNNING, "running")
        if job.jobid in self._exit_codes:
            code = self._exit_codes[job.jobid]
            if code == 0:
                return JobStatus(JobState.ENDED, "exited", "exit code 0")
            reason = self._start_errors.get(job.jobid) or parsing.describe_exit(code)
            return parsing.failed_status(code, reason)
        return None

    def _start_queued(self) -> None:
        while self._queue and len(self._running) < self.max_running:
            job, arguments, job_name = self._queue.popleft()
            self._queued.discard(job.jobid)
            process = self._start(job, arguments, job_name)
            if process is None:
                self._exit_codes[job.jobid] = 127
            else:
                self._running[job.jobid] = process

    def _start(self, job: Job, arguments: list[str], job_name: str) -> subprocess.Popen | None:
        """Start ``job``'s worker; ``None`` if it could not be started."""
        try:
            with _open_private(job.stdout_path) as stdout, _open_private(job.stderr_path) as err:
                # A session of its own: Ctrl-C in a terminal reaches the map,
                # which cancels its jobs, not every worker at once.
                process = subprocess.Popen(
                    arguments,
                    env=_job_environment(job_name),
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=err,
                    start_new_session=True,
                )
        except OSError as error:
            self._start_errors[job.jobid] = f"cannot start the worker: {error}"
            return None
        threading.Thread(target=self._wait, args=(job, process), daemon=True).start()
        return process

    def _wait(self, job: Job, process: subprocess.Popen) -> None:
        code = process.wait()
        with self._lock:
            self._running.pop(job.jobid, None)
            self._exit_codes[job.jobid] = code
            self._start_queued()


def _job(submission: Submission, ichunk: int, jobid: str) -> Job:
    base = os.path.join(submission.directory, str(ichunk))
    return Job(jobid, ichunk, f"{base}.stdout", f"{base}.stderr", submission.job_name)


def _job_environment(job_name: str) -> dict[str, str]:
    """What a batch system gives a job before its launcher exports the
    variables: enough to start, nothing of the submitting shell's state, and
    the job's name, by which :meth:`LocalScheduler.recover` finds it."""
    environment = {name: os.environ[name] for name in JOB_START_VARIABLES if name in os.environ}
    environment[parsing.JOB_NAME_VARIABLE] = job_name
    return environment


def _open_private(path: str):
    """Open an output file for a worker to write into, readable only by us.

    Not :func:`pypoolparty.work_dir.write_private`: the worker writes it
    while it runs, so there is no content to write atomically here.
    """
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")


def _workers_of(jobs: Sequence[Job]) -> dict[str, int]:
    """Running workers of ``jobs`` started by an earlier process: jobid -> pid."""
    if not jobs:
        return {}
    found = _workers_on_this_host({job.submission for job in jobs})
    return {
        job.jobid: found[job.submission, job.ichunk]
        for job in jobs
        if (job.submission, job.ichunk) in found
    }


def _workers_on_this_host(job_names: set[str]) -> dict[tuple[str, int], int]:
    """(job name, chunk) -> pid of each worker on this host started for one of ``job_names``.

    Job names are unique to their map's session, so a worker is recognised
    without any file of its own.
    """
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                ichunk = parsing.worker_chunk(file.read())
            if ichunk is None:
                continue
            with open(f"/proc/{entry}/environ", "rb") as file:
                name = parsing.job_name(file.read())
        except OSError:
            continue
        if name in job_names:
            found[name, ichunk] = int(entry)
    return found


def _kill(pids: list[int]) -> None:
    """SIGKILL the workers ``pids`` and every process of their sessions.

    A worker leads a session of its own; a task's command may run in a
    process group of its own inside it (:func:`pypoolparty.shell`, to kill
    it alone at its timeout), which a signal to the worker's group misses.
    A real scheduler kills everything of a cancelled job; so must we.
    """
    pids = [pid for pid in pids if pid > 0]
    if not pids:
        return
    for group in [*pids, *_other_groups_of_sessions(set(pids))]:
        try:
            os.killpg(group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def _other_groups_of_sessions(sessions: set[int]) -> set[int]:
    """The process groups, other than the sessions' leaders', of processes in ``sessions``."""
    groups = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as file:
                stat = file.read()
        except OSError:
            continue
        if parsing.session_id(stat) in sessions:
            groups.add(parsing.process_group(stat))
    return {group for group in groups if group and group not in sessions}
