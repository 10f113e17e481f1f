"""Fold chunk outputs into zip archives as they arrive.

Each poll, the outcome files the workers wrote (``outcomes/<ichunk>.pickle``)
and the scheduler's stdout/stderr files of those jobs are added to
``results.zip``, ``exceptions.zip``, ``stdout.zip`` and ``stderr.zip``, and
then deleted, with the records of the chunks' finished tasks
(:mod:`pypoolparty.task_records`). An interrupted outcome is no result: it is
deleted, and its chunk's records stay for the run that continues it. So the
number of files in the work_dir stays bounded by the number of running jobs,
and a 100,000-task map leaves four archives, not 400,000 files.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle

from . import archive, crash_points, task_records, work_dir
from .outcome import (
    TaskFailure,
    describe_failure,
    failed_tasks,
    interpreter_mismatch,
    interruption,
    mark_unloadable_results,
)
from .scheduler import Job
from .work_dir import SessionDir

logger = logging.getLogger(__name__)

MAX_CAPTURED_OUTPUT = 10 * 1024 * 1024
"""Bytes of one job's stdout or stderr kept in the archives (the end of it)."""


@dataclasses.dataclass(frozen=True)
class FoldedChunk:
    ichunk: int
    num_failed_tasks: int
    first_failure: TaskFailure | None
    outcome: dict
    """The worker's outcome of the chunk, for those who want results as they come."""
    interrupted: dict | None = None
    """Set if the job was told to stop before the chunk's end (see
    :func:`pypoolparty.outcome.interruption`): the chunk is not done, its
    finished tasks stay in their records, nothing is archived."""

    interpreter_mismatch: dict | None = None
    """The worker's versions were not the submitter's and it ran nothing
    (:func:`pypoolparty.outcome.interpreter_mismatch`): nothing was archived
    or deleted, and the chunk is not done."""


class Reducer:
    """Moves arrived outcomes of one session into its archives."""

    def __init__(self, session_dir: SessionDir, bounds: list[tuple[int, int]]) -> None:
        self.session_dir = session_dir
        self.bounds = bounds

    def arrived(self) -> list[int]:
        """Chunk indices whose outcome file is there, in any order."""
        try:
            names = os.listdir(self.session_dir.outcomes_dir)
        except FileNotFoundError:
            return []
        return [int(m.group(1)) for m in map(work_dir.OUTCOME_MEMBER.match, names) if m]

    def has_outcome(self, ichunk: int) -> bool:
        return os.path.exists(self.session_dir.outcome_path(ichunk))

    def fold(self, chunks: dict[int, Job | None]) -> list[FoldedChunk]:
        """Archive the outcomes of ``chunks`` (ichunk -> its current job) and delete them.

        A corrupt outcome file (e.g. cut short by a full disk) is deleted and
        left out, so its chunk counts as not done.
        """
        results: dict[str, bytes] = {}
        exceptions: dict[str, bytes] = {}
        stdout: dict[str, bytes] = {}
        stderr: dict[str, bytes] = {}
        folded: list[FoldedChunk] = []
        consumed: list[str] = []
        for ichunk, job in chunks.items():
            path = self.session_dir.outcome_path(ichunk)
            try:
                with open(path, "rb") as file:
                    raw = file.read()
                outcome = pickle.loads(raw)
            except FileNotFoundError:
                continue
            except Exception as error:
                logger.warning("outcome of chunk %d is unreadable (%s); ignoring it", ichunk, error)
                _remove(path)
                continue
            mismatch = interpreter_mismatch(outcome)
            if mismatch is not None:
                folded.append(FoldedChunk(ichunk, 0, None, outcome, interpreter_mismatch=mismatch))
                continue
            if interruption(outcome) is not None:
                # Not the chunk's outcome: the records of its finished tasks
                # stay for the run that continues it.
                _remove(path)
                folded.append(
                    FoldedChunk(ichunk, 0, None, outcome, interrupted=interruption(outcome))
                )
                continue
            if mark_unloadable_results(outcome):
                # Archived as failed: a later call runs the chunk again, once
                # this process can unpickle what it returns.
                raw = pickle.dumps(outcome, protocol=4)
            failed = failed_tasks(outcome, first_itask=self.bounds[ichunk][0])
            # A chunk with failed tasks is kept apart: a later call of the
            # same map runs it again rather than reusing its failures.
            results[work_dir.outcome_member(ichunk, failed=bool(failed))] = raw
            for failure in failed:
                text = describe_failure(ichunk, failure)
                exceptions[work_dir.task_failure_member(failure.itask)] = text.encode()
            outputs = self._chunk_outputs(ichunk)
            if any(os.path.exists(path) for path in outputs):
                # A job that claims chunks wrote each one's output apart.
                job_outputs = outputs
            elif job is not None:
                job_outputs = [job.stdout_path, job.stderr_path]
            else:
                job_outputs = []
            if job_outputs:
                stdout[work_dir.job_output_member(ichunk)] = _tail(job_outputs[0])
                stderr[work_dir.job_output_member(ichunk)] = _tail(job_outputs[1])
                consumed += job_outputs
            consumed.append(path)
            folded.append(
                FoldedChunk(
                    ichunk=ichunk,
                    num_failed_tasks=len(failed),
                    first_failure=failed[0] if failed else None,
                    outcome=outcome,
                )
            )
        self._append("results", results)
        self._append("exceptions", exceptions)
        self._append("stdout", stdout)
        self._append("stderr", stderr)
        crash_points.reached("during_fold")
        for path in consumed:
            _remove(path)
        # The outcomes hold these chunks' finished tasks now; their records
        # would only pile up (the worker removes them too, unless killed).
        task_records.remove(
            self.session_dir.path, [f.ichunk for f in folded if f.interrupted is None]
        )
        return folded

    def fold_failed_attempt(self, job: Job, ichunk: int, attempt: int) -> str:
        """Archive the output of ``job``, which failed as ``attempt`` of chunk ``ichunk``.

        Returns the end of its stderr.
        """
        # What the chunk's tasks printed, where the job wrote it apart, then
        # what the job printed outside its chunks (the scheduler's last words).
        chunk_out, chunk_err = self._chunk_outputs(ichunk)
        out = _tail(chunk_out) + _tail(job.stdout_path)
        err = _tail(chunk_err) + _tail(job.stderr_path)
        name = work_dir.failed_attempt_member(ichunk, attempt)
        self._append("stdout", {name: out[-MAX_CAPTURED_OUTPUT:]})
        self._append("stderr", {name: err[-MAX_CAPTURED_OUTPUT:]})
        for path in (chunk_out, chunk_err, job.stdout_path, job.stderr_path):
            _remove(path)
        return err.decode("utf-8", errors="replace")

    def _chunk_outputs(self, ichunk: int) -> list[str]:
        return [self.session_dir.chunk_output_path(ichunk, s) for s in ("stdout", "stderr")]

    def fold_job_outputs(self, jobs: list[Job]) -> None:
        """Archive what jobs that ended printed outside their chunks (launcher, setup).

        For jobs that claim work (:mod:`pypoolparty.claims`): the output of
        each chunk is folded with its outcome; the job's own files are
        archived once it has left the queue (:func:`pypoolparty.work_dir.job_log_member`).
        A job whose files are gone (archived already, or never written) is
        skipped.
        """
        stdout: dict[str, bytes] = {}
        stderr: dict[str, bytes] = {}
        consumed: list[str] = []
        for job in jobs:
            paths = [job.stdout_path, job.stderr_path]
            if not any(os.path.exists(path) for path in paths):
                continue
            name = work_dir.job_log_member(f"{job.ichunk}.{job.submission}")
            stdout[name] = _tail(job.stdout_path)
            stderr[name] = _tail(job.stderr_path)
            consumed += paths
        if not consumed:
            return
        self._append("stdout", stdout)
        self._append("stderr", stderr)
        for path in consumed:
            _remove(path)

    def discard_duplicate(self, ichunk: int) -> None:
        """A chunk that ran twice: its first outcome is archived, drop the second."""
        _remove(self.session_dir.outcome_path(ichunk))
        task_records.remove(self.session_dir.path, [ichunk])

    def archived_chunks(self) -> set[int]:
        """Chunks whose tasks all succeeded and whose outcome is archived."""
        names = archive.names(self.session_dir.archive_path("results"))
        return {int(m.group(1)) for m in map(work_dir.OUTCOME_MEMBER.match, names) if m}

    def failed_outcomes(self) -> dict[int, dict]:
        """ichunk -> the archived outcome of each chunk whose tasks partly failed.

        One pass through ``results.zip``; the last outcome of a chunk wins.
        Results stay pickled bytes: no task's code runs.
        """
        path = self.session_dir.archive_path("results")
        found = {}
        for member, data in archive.contents(path, work_dir.FAILED_OUTCOME_MEMBER.match):
            if data is not None:
                ichunk = int(work_dir.FAILED_OUTCOME_MEMBER.match(member.name).group(1))
                found[ichunk] = pickle.loads(data)
        return found

    def load_outcome(self, ichunk: int) -> dict:
        path = self.session_dir.archive_path("results")
        return pickle.loads(archive.read(path, work_dir.outcome_member(ichunk)))

    def _append(self, kind: str, members: dict[str, bytes]) -> None:
        archive.append(self.session_dir.archive_path(kind), members)


def _tail(path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            size = file.seek(0, os.SEEK_END)
            file.seek(max(0, size - MAX_CAPTURED_OUTPUT))
            return file.read()
    except OSError:
        return b""


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
