"""The session's part for the end of a map: results, stragglers, or an abort.

A map that finished collects its results in task order and leaves nothing
of itself in the queue; a map that failed or was interrupted cancels its
jobs and says where its session directory is, so that calling the same map
again continues it.
"""

from __future__ import annotations

import errno
import logging
import os
import time

from . import event_log
from .commands import CommandFailed, CommandNotFound, PermanentError
from .errors import (
    Cancelled,
    InterpreterMismatch,
    JobCannotRun,
    PendingTimeout,
    ResubmissionsExhausted,
    SchedulerError,
    SchedulerUnavailable,
    SubmissionRejected,
    TaskCrashed,
    Terminated,
    WorkDirError,
)
from .outcome import exception_for, results_of
from .scheduler import Job, JobState
from .session_state import Chunk, capitalized, distinct_jobs, may_linger, quietly

logger = logging.getLogger("pypoolparty")


ENDING_JOBS_GRACE = 10.0
"""Seconds a finished map waits for its last running jobs to end before it
removes its session directory (:meth:`Ending._wait_for_ending_jobs`)."""

ENDING_JOBS_FIRST_LOOK = 0.1
"""Seconds before a finished map first asks whether its last jobs have ended;
each later ask waits twice as long, up to the polling interval or 1 s."""


class Ending:
    """Methods of :class:`pypoolparty.session.Session`; see the module."""

    def _finish(self) -> list:
        self._cancel_stragglers()
        if self.claiming:
            self._fold_job_outputs(self.jobs.all())
        if self.first_failure is not None:
            self.log.write(
                event_log.SESSION_FAILED, reason="task raised", itask=self.first_failure.itask
            )
            raise exception_for(self.first_failure, self.num_failed_tasks, self.dir.path)
        results = None if self.on_chunk_done is not None else self._collect_results()
        self.log.write(event_log.SESSION_FINISHED, num_chunks=len(self.chunks))
        logger.info("all %d chunks done", len(self.chunks))
        return results

    def _collect_results(self) -> list:
        results = []
        # In task order: the pieces of a split chunk come last by index.
        for ichunk in sorted(range(len(self.chunks)), key=lambda i: self.bounds[i][0]):
            values = self.collected.pop(ichunk, None)
            if values is None:  # archived by an earlier call
                values = results_of(self.reducer.load_outcome(ichunk))
            results.extend(values)
        return results

    def _cancel_stragglers(self) -> None:
        """Nothing of a finished map stays queued or running.

        A job may linger after its chunk's result arrived: held after writing
        it, or a duplicate (the chunk was resubmitted when its result was
        late, or its job was adopted from a killed predecessor) that is still
        pending or running the chunk again. A running job that is its chunk's
        only job wrote the result and is exiting: it is left to end, so the
        scheduler shows it as completed, not cancelled.
        """
        # Also jobs no poll ever saw: all results may arrive before the first
        # poll (a resumed map, a duplicate run). Not a job whose chunk another
        # job claimed and finished before any poll saw the claim: the job may
        # still be starting, and would wait for nothing.
        candidates = {
            c.job.jobid: c
            for c in self.chunks
            if c.job is not None
            and (c.status is not None or c.missing_since is None)
            and c.written_by in (None, c.job.ichunk)
        }
        # Jobs whose own chunk another job claimed: they have nothing to do.
        others = {job.jobid: job for job in self.jobs.live() if job.jobid not in candidates}
        if not candidates and not others:
            return
        try:
            statuses = self.scheduler.query(
                [c.job for c in candidates.values()] + list(others.values())
            )
            lingering = [
                candidates[jobid].job
                for jobid, status in statuses.items()
                if jobid in candidates and may_linger(candidates[jobid], status)
            ] + [
                # Every chunk is done: one that started anyway has nothing to
                # do, and would fail once the session directory is removed.
                others[jobid]
                for jobid, status in statuses.items()
                if jobid in others and status.state != JobState.ENDED
            ]
            if lingering:
                self.scheduler.cancel(lingering)
            cancelled = {job.jobid for job in lingering}
            self.ending_jobs = [
                candidates[jobid].job
                for jobid, status in statuses.items()
                if jobid in candidates
                and jobid not in cancelled
                and status.state in (JobState.RUNNING, JobState.UNKNOWN)
            ]
        except Exception as error:  # the results are in; report, don't fail
            logger.warning("could not cancel jobs left in the queue: %s", error)

    def _wait_for_ending_jobs(self) -> None:
        """Before the session directory goes, let the jobs that wrote the last
        results end (at most :data:`ENDING_JOBS_GRACE` seconds, then cancel them).

        Their files are in it: a job whose files vanish while it exits fails
        (SLURM: FAILED, JobLaunchFailure), which its user would see in the
        scheduler's accounting of a map that succeeded.
        """
        ending = self.ending_jobs
        deadline = time.monotonic() + ENDING_JOBS_GRACE
        longest = min(self.settings.polling_interval, 1.0)
        pause = min(ENDING_JOBS_FIRST_LOOK, longest)
        try:
            while ending and time.monotonic() < deadline:
                # A job that wrote the last outcome exits within a moment, and
                # the map's caller waits for it: ask soon, then less and less
                # often (a handful of asks once per map), up to the polling
                # interval or once a second.
                time.sleep(pause)
                pause = min(2 * pause, longest)
                statuses = self.scheduler.query(ending)
                ending = [
                    job
                    for job in ending
                    if job.jobid in statuses
                    and statuses[job.jobid].state in (JobState.RUNNING, JobState.UNKNOWN)
                ]
            if ending:
                self.scheduler.cancel(ending)
        except Exception as error:  # the results are in; report, don't fail
            logger.warning("could not wait for the map's last jobs to end: %s", error)

    def _abort(self, error: BaseException) -> None:
        """Cancel this map's jobs, keep the session directory, explain where it is.

        Raises what the caller should see instead of ``error``, if anything:
        the errors of the scheduler's commands become subclasses of
        :class:`pypoolparty.PoolError`.
        """
        live = distinct_jobs(
            [c.job for c in self.chunks if not c.done and c.job is not None] + self.jobs.live()
        )
        cancel_note = ""
        cancelled = 0
        interrupted = {}
        if self.submitting is not None:
            recovered = self._jobs_of_interrupted_submission()
            live += recovered
            if recovered:
                interrupted = {"cancelled_submission": self.submitting.job_name}
        if live:
            try:
                self.scheduler.cancel(live)
                cancel_note = f"cancelled {len(live)} job(s); "
                cancelled = len(live)
            except BaseException as cancel_error:
                cancel_note = f"could not cancel {len(live)} job(s) ({cancel_error}); "
        quietly(
            self.log.write,
            event_log.SESSION_ABORTED,
            error=f"{type(error).__name__}: {error}"[:2000],
            cancelled_jobs=cancelled,
            **(interrupted if cancelled else {}),
        )
        kept = (
            f"{cancel_note}the session directory {self.dir.path} keeps the results of "
            f"{self._num_finished_tasks()} of {self.metadata.num_tasks} tasks"
        )
        # A refused request would be refused again: no advice to call again.
        if isinstance(
            error,
            (SubmissionRejected, PermanentError, JobCannotRun, InterpreterMismatch, TaskCrashed),
        ):
            where = f"{kept}."
        else:
            resume = f"work_dir={os.path.dirname(self.dir.path)!r}"
            where = f"{kept}; call the same map with {resume} to continue it."
        # Stopped on purpose (terminate(), leaving a with block): no alarm.
        level = logging.INFO if isinstance(error, Cancelled) else logging.ERROR
        logger.log(level, "map stopped (%s): %s", type(error).__name__, where)
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise WorkDirError.from_os_error(self.dir.path, error) from error
        if isinstance(error, CommandFailed):
            raise SchedulerUnavailable(f"{error} {where}") from error
        if isinstance(error, CommandNotFound):
            raise SchedulerError(
                f"{error} (it was there when the map started).\n{capitalized(where)}"
            ) from error
        if isinstance(error, PermanentError):
            raise SchedulerError(f"{error}\n{capitalized(where)}") from error
        if isinstance(
            error,
            (
                ResubmissionsExhausted,
                SubmissionRejected,
                PendingTimeout,
                JobCannotRun,
                InterpreterMismatch,
            ),
        ):
            raise type(error)(f"{error}\n{capitalized(where)}") from None
        if isinstance(error, TaskCrashed):
            raise TaskCrashed(
                f"{error}\n{capitalized(where)}",
                itask=error.itask,
                ichunk=error.ichunk,
                jobid=error.jobid,
                signal=error.signal,
            ) from None
        if isinstance(error, (KeyboardInterrupt, Terminated, Cancelled)):
            raise type(error)(f"map interrupted: {where}") from error
        if hasattr(error, "add_note"):
            error.add_note(where)

    def _jobs_of_interrupted_submission(self) -> list[Job]:
        """The jobs the scheduler may have taken from a submit cut short."""
        try:
            return self.scheduler.recover(self.submitting)
        except BaseException as error:
            logger.warning("could not look for the jobs of %s: %s", self.submitting.job_name, error)
            return []

    def _exhausted_message(self, exhausted: list[Chunk]) -> str:
        lines = [
            f"{len(exhausted)} chunk(s) failed for scheduler reasons after "
            f"{self.settings.max_num_resubmissions} resubmission(s) each "
            "(max_num_resubmissions):"
        ]
        for chunk in exhausted[:10]:
            start, stop = self.bounds[chunk.ichunk]
            lines.append(
                f"  chunk {chunk.ichunk} (tasks {start}..{stop - 1}), last job "
                f"{chunk.job.jobid}: {chunk.last_error}"
            )
            if chunk.last_crash is not None:
                itask, name = chunk.last_crash
                lines.append(
                    f"    the job died of {name} in task {itask}: the task may have crashed "
                    "the Python process (see the stderr)"
                )
            if chunk.stderr_tail:
                lines += ["    stderr (last lines):"] + [
                    f"      {line}" for line in chunk.stderr_tail.splitlines()
                ]
        if len(exhausted) > 10:
            lines.append(f"  ... and {len(exhausted) - 10} more chunk(s)")
        return "\n".join(lines)
