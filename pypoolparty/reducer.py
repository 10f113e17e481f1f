"""Fold chunk outputs into zip archives as they arrive.

Each poll, the outcome files the workers wrote (``outcomes/<ichunk>.pickle``)
and the scheduler's stdout/stderr files of those jobs are added to
``results.zip``, ``exceptions.zip``, ``stdout.zip`` and ``stderr.zip``, and
then deleted. So the number of files in the work_dir stays bounded by the
number of running jobs, and a 100,000-task map leaves four archives, not
400,000 files.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import pickle
import re

from . import archive, crash_points
from .scheduler import Job
from .work_dir import SessionDir

logger = logging.getLogger(__name__)

OUTCOME_NAME = re.compile(r"^(\d+)\.pickle$")
MAX_CAPTURED_OUTPUT = 10 * 1024 * 1024
"""Bytes of one job's stdout or stderr kept in the archives (the end of it)."""


@dataclasses.dataclass(frozen=True)
class TaskFailure:
    """The first task of a chunk that raised (or whose result was unusable)."""

    itask: int
    error: dict
    host: str


@dataclasses.dataclass(frozen=True)
class FoldedChunk:
    ichunk: int
    num_failed_tasks: int
    first_failure: TaskFailure | None
    outcome: dict
    """The worker's outcome of the chunk, for those who want results as they come."""


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
        return [int(m.group(1)) for m in map(OUTCOME_NAME.match, names) if m]

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
            failures = list(_failures(outcome, first_itask=self.bounds[ichunk][0]))
            # A chunk with failed tasks is kept apart: a later call of the
            # same map runs it again rather than reusing its failures.
            results[f"{ichunk}.failed.pickle" if failures else f"{ichunk}.pickle"] = raw
            for failure in failures:
                exceptions[f"{failure.itask}.txt"] = _describe_failure(ichunk, failure).encode()
            if job is not None:
                stdout[f"{ichunk}.txt"] = _tail(job.stdout_path)
                stderr[f"{ichunk}.txt"] = _tail(job.stderr_path)
                consumed += [job.stdout_path, job.stderr_path]
            consumed.append(path)
            folded.append(
                FoldedChunk(
                    ichunk=ichunk,
                    num_failed_tasks=len(failures),
                    first_failure=failures[0] if failures else None,
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
        return folded

    def fold_failed_attempt(self, job: Job, attempt: int) -> str:
        """Archive the output of a job that failed; return the end of its stderr."""
        err = _tail(job.stderr_path)
        self._append("stdout", {f"{job.ichunk}.attempt{attempt}.txt": _tail(job.stdout_path)})
        self._append("stderr", {f"{job.ichunk}.attempt{attempt}.txt": err})
        for path in (job.stdout_path, job.stderr_path):
            _remove(path)
        return err.decode("utf-8", errors="replace")

    def discard_duplicate(self, ichunk: int) -> None:
        """A chunk that ran twice: its first outcome is archived, drop the second."""
        _remove(self.session_dir.outcome_path(ichunk))

    def archived_chunks(self) -> set[int]:
        """Chunks whose tasks all succeeded and whose outcome is archived."""
        names = archive.names(self.session_dir.archive_path("results"))
        return {int(m.group(1)) for m in map(OUTCOME_NAME.match, names) if m}

    def load_outcome(self, ichunk: int) -> dict:
        return pickle.loads(
            archive.read(self.session_dir.archive_path("results"), f"{ichunk}.pickle")
        )

    def _append(self, kind: str, members: dict[str, bytes]) -> None:
        archive.append(self.session_dir.archive_path(kind), members)


def _failures(outcome: dict, first_itask: int):
    host = outcome.get("host", "?")
    if outcome.get("setup_error") is not None:
        # The worker could not even load the function: report it as the
        # failure of the chunk's first task, with the worker's own error.
        yield TaskFailure(itask=first_itask, error=outcome["setup_error"], host=host)
        return
    for task in outcome["tasks"]:
        if "error" in task:
            yield TaskFailure(itask=task["itask"], error=task["error"], host=host)


def _describe_failure(ichunk: int, failure: TaskFailure) -> str:
    return (
        f"task {failure.itask} (chunk {ichunk}) on host {failure.host}\n"
        f"{failure.error['type']}: {failure.error['message']}\n\n{failure.error['traceback']}"
    )


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
