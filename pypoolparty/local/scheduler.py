"""The local "scheduler": jobs are worker processes on this machine.

At most ``max_running`` run at once; a queued job starts the moment a slot
frees (a thread waits on each process), so local maps do not wait for polls.
A later process continuing the map adopts workers that outlived the one that
started them: it finds them by their command line, which names the session
directory and the chunk.
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

JOB_START_VARIABLES = ("PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TMPDIR", "SHELL")


JOB_NAME_VARIABLE = "PYPOOLPARTY_JOB_NAME"
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
            adoptable = _worker_processes(foreign) if foreign else {}
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
            for process in killed:
                _kill(process.pid)
            foreign = [job for job in jobs if not self._knows(job)]
            for pid in (_worker_processes(foreign) if foreign else {}).values():
                _kill(pid)
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
        jobs = []
        for pid, ichunk in _workers_named(submission.job_name):
            if ichunk in submission.chunks:
                jobs.append(_job(submission, ichunk, jobid=f"{pid}.recovered"))
        return jobs

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
            reason = self._start_errors.get(job.jobid) or _describe_exit(code)
            return JobStatus(JobState.ERROR, "failed", reason)
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
    return Job(jobid, ichunk, stdout_path=f"{base}.stdout", stderr_path=f"{base}.stderr")


def _job_environment(job_name: str) -> dict[str, str]:
    """What a batch system gives a job before the worker sets the exported
    variables: enough to start, nothing of the submitting shell's state, and
    the job's name, by which :meth:`LocalScheduler.recover` finds it."""
    environment = {name: os.environ[name] for name in JOB_START_VARIABLES if name in os.environ}
    environment[JOB_NAME_VARIABLE] = job_name
    return environment


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _open_private(path: str):
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")


def _worker_processes(jobs: Sequence[Job]) -> dict[str, int]:
    """Running workers of ``jobs`` started by an earlier process: jobid -> pid.

    A worker's command line names its session directory and chunk, so it is
    recognised without any file of its own.
    """
    wanted = {}
    for job in jobs:
        session_dir = os.path.dirname(os.path.dirname(os.path.dirname(job.stdout_path)))
        wanted[(session_dir, job.ichunk)] = job.jobid
    found = {}
    for pid, ichunk, arguments in _workers_on_this_host():
        for argument in arguments:
            jobid = wanted.get((argument, ichunk))
            if jobid is not None:
                found[jobid] = pid
    return found


def _workers_named(job_name: str) -> list[tuple[int, int]]:
    """(pid, chunk) of each running worker started for the job named ``job_name``."""
    marker = f"{JOB_NAME_VARIABLE}={job_name}".encode()
    found = []
    for pid, ichunk, _ in _workers_on_this_host():
        try:
            with open(f"/proc/{pid}/environ", "rb") as file:
                if marker in file.read().split(b"\0"):
                    found.append((pid, ichunk))
        except OSError:
            continue
    return found


def _workers_on_this_host():
    """(pid, chunk, command line) of each worker process running on this host."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                arguments = file.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        if "--ichunk" in arguments:
            try:
                yield int(entry), int(arguments[arguments.index("--ichunk") + 1]), arguments
            except (IndexError, ValueError):
                continue


def _kill(pid: int) -> None:
    if pid <= 0:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
