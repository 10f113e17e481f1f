"""The local "scheduler": jobs are worker processes on this machine.

At most ``max_running`` run at once; a queued job starts the moment a slot
frees (a thread waits on each process), so local maps do not wait for polls.
Each job's pid is written next to its output, so a later process continuing
the map can adopt workers that outlived the one that started them.
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
        self._counter = itertools.count()

    def submit(self, submission: Submission) -> list[Job]:
        jobs = []
        with self._lock:
            for ichunk in submission.chunks:
                base = os.path.join(submission.directory, str(ichunk))
                job = Job(
                    jobid=f"{os.getpid()}.{next(self._counter)}",
                    ichunk=ichunk,
                    stdout_path=f"{base}.stdout",
                    stderr_path=f"{base}.stderr",
                )
                arguments = submission.worker.arguments(ichunk=ichunk)
                self._queue.append((job, arguments, f"{base}.pid"))
                self._queued.add(job.jobid)
                jobs.append(job)
            self._start_queued()
        return jobs

    def query(self, jobs: Sequence[Job]) -> dict[str, JobStatus]:
        statuses = {}
        with self._lock:
            for job in jobs:
                status = self._status(job)
                if status is not None:
                    statuses[job.jobid] = status
        return statuses

    def cancel(self, jobs: Sequence[Job]) -> None:
        with self._lock:
            ids = {job.jobid for job in jobs}
            self._cancelled |= ids & self._queued
            self._queue = collections.deque(q for q in self._queue if q[0].jobid not in ids)
            self._queued -= ids
            for job in jobs:
                process = self._running.get(job.jobid)
                if process is not None:
                    _kill(process.pid)
                elif job.jobid not in self._exit_codes:
                    pid = _adoptable_pid(job)
                    if pid is not None:
                        _kill(pid)

    def capacity(self) -> int:
        return self.max_running

    def _status(self, job: Job) -> JobStatus | None:
        if job.jobid in self._queued:
            return JobStatus(JobState.PENDING, "queued")
        if job.jobid in self._running:
            return JobStatus(JobState.RUNNING, "running")
        if job.jobid in self._exit_codes:
            code = self._exit_codes[job.jobid]
            if code == 0:
                return JobStatus(JobState.ENDED, "exited", "exit code 0")
            return JobStatus(JobState.ERROR, "failed", _describe_exit(code))
        if job.jobid in self._cancelled:
            return None
        if _adoptable_pid(job) is not None:
            return JobStatus(JobState.RUNNING, "running", "started by an earlier process")
        return None

    def _start_queued(self) -> None:
        while self._queue and len(self._running) < self.max_running:
            job, arguments, pid_path = self._queue.popleft()
            self._queued.discard(job.jobid)
            process = self._start(job, arguments, pid_path)
            if process is None:
                self._exit_codes[job.jobid] = 127
            else:
                self._running[job.jobid] = process

    def _start(self, job: Job, arguments: list[str], pid_path: str) -> subprocess.Popen | None:
        with open(job.stdout_path, "ab") as stdout, open(job.stderr_path, "ab") as stderr:
            try:
                # A session of its own: Ctrl-C in a terminal reaches the map,
                # which cancels its jobs, not every worker at once.
                process = subprocess.Popen(
                    arguments,
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=stderr,
                    start_new_session=True,
                )
            except OSError as error:
                stderr.write(f"cannot start the worker: {error}\n".encode())
                return None
        with open(pid_path, "w") as file:
            file.write(str(process.pid))
        threading.Thread(target=self._wait, args=(job, process), daemon=True).start()
        return process

    def _wait(self, job: Job, process: subprocess.Popen) -> None:
        code = process.wait()
        with self._lock:
            self._running.pop(job.jobid, None)
            self._exit_codes[job.jobid] = code
            self._start_queued()


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _adoptable_pid(job: Job) -> int | None:
    """The pid of a still running worker of ``job`` started by an earlier process."""
    pid_path = job.stdout_path[: -len(".stdout")] + ".pid"
    try:
        with open(pid_path) as file:
            pid = int(file.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            cmdline = file.read().split(b"\0")
    except (OSError, ValueError):
        return None
    session_dir = os.path.dirname(os.path.dirname(os.path.dirname(job.stdout_path)))
    expected = [session_dir.encode(), b"--ichunk", str(job.ichunk).encode()]
    if all(part in cmdline for part in expected):
        return pid
    return None


def _kill(pid: int) -> None:
    if pid <= 0:
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
