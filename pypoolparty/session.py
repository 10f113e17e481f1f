"""One map call from start to end: babysit, resubmit, finish or abort, restore.

The session knows nothing about any scheduler: it talks to one through the
three operations of :class:`pypoolparty.scheduler.Scheduler`. It keeps the
state of every chunk -- not yet submitted, queued, done, or in error -- and
writes what happens to the event log, so an interrupted map can be continued
by calling it again with the same ``work_dir`` (see :func:`run_map`). What
happens before the first job -- the session directory -- is
:mod:`pypoolparty.prepare`'s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import uuid
from typing import Callable

from . import (
    claims,
    crash_points,
    crashes,
    event_log,
    interpreter,
    launcher,
    pending,
    prepare,
    progress,
    splitting,
    stops,
    task_outputs,
    task_records,
    work_dir,
)
from .errors import (
    Cancelled,
    InterpreterMismatch,
    JobCannotRun,
    ResubmissionsExhausted,
    SubmissionRejected,
    TaskCrashed,
    Terminated,
    WorkDirError,
)
from .map_jobs import MapJobs
from .outcome import TaskFailure, last_lines, results_of, task_values
from .reducer import FoldedChunk, Reducer
from .scheduler import Job, JobState, JobStatus, Scheduler, Submission, WorkerCall, incurable
from .session_claims import ClaimedChunks
from .session_end import Ending
from .session_resume import Restoring
from .session_state import Chunk, Stop, distinct_jobs, joined, quietly
from .session_stops import StoppedJobs
from .settings import MapSettings
from .withdrawal import Withdrawals

logger = logging.getLogger("pypoolparty")

OUTCOME_CHECK_INTERVAL = 0.2
"""Seconds between two looks for arrived outcomes while the session waits for
its next poll of the scheduler (one ``listdir`` of ``outcomes/``)."""


def run_map(
    settings: MapSettings,
    scheduler: Scheduler,
    func: Callable,
    tasks: list,
    chunksize: int | None,
    star: bool,
    stop: threading.Event | None = None,
    on_chunk_done: Callable[[int, list], None] | None = None,
    withdrawals: Withdrawals | None = None,
) -> list | None:
    """Run one map: the entry point the Pool calls.

    A map that was started before and did not finish is continued: its
    finished chunks are not run again and its jobs still in the queue are
    adopted. A map that finished before returns its stored results only with
    ``settings.reuse_results``; otherwise it runs afresh (see
    :mod:`pypoolparty.prepare` for how a map is recognised). Either reuse is
    announced by one line on standard error.

    Parameters
    ----------
    settings : MapSettings
        The pool's checked options.
    scheduler : Scheduler
        The adapter to run the jobs with, new for this map.
    func : callable
        The function to map.
    tasks : list
        The tasks, not empty.
    chunksize : int or None
        Tasks per chunk; ``None``: chunks that shrink towards the end (see
        :mod:`pypoolparty.chunking`).
    star : bool
        ``starmap`` (``func(*task)``) rather than ``map``.
    stop : threading.Event, optional
        Once set, ends the map the way Ctrl-C does (its jobs are cancelled,
        the session directory kept), raising :class:`pypoolparty.Cancelled`.
    on_chunk_done : callable, optional
        Called with each chunk as soon as it is archived -- the index of its
        first task and its tasks' ``(True, result)`` or ``(False,
        exception)`` -- and the map returns ``None`` instead of the results;
        a failed task still raises at the end.
    withdrawals : Withdrawals, optional
        With ``on_chunk_done``: lets the caller take tasks back while their
        jobs wait in the queue (see :mod:`pypoolparty.withdrawal`).

    Returns
    -------
    list or None
        The results in the order of ``tasks``; ``None`` with ``on_chunk_done``.

    Raises
    ------
    pypoolparty.PoolError
        A subclass of it for every failure of the map's own (see
        :mod:`pypoolparty.errors`); a task's exception with its own type.
    """
    with prepare.session_dir(settings, scheduler, func, tasks, chunksize, star) as prepared:
        session = Session(
            settings,
            scheduler,
            prepared.session_dir,
            prepared.bounds,
            prepared.resuming,
            stop=stop,
            on_chunk_done=on_chunk_done,
            withdrawals=withdrawals,
            reusing_results=prepared.finished,
            finished_runs=prepared.finished_runs,
            parallelism=prepared.parallelism,
            claiming=prepared.claiming,
        )
        return session.run()


class Session(StoppedJobs, ClaimedChunks, Ending, Restoring):
    """Babysits one map's jobs until every chunk is done or has failed for good."""

    def __init__(
        self,
        settings: MapSettings,
        scheduler: Scheduler,
        session_dir: work_dir.SessionDir,
        bounds: list[tuple[int, int]],
        resuming: bool,
        stop: threading.Event | None = None,
        on_chunk_done: Callable[[int, list], None] | None = None,
        withdrawals: Withdrawals | None = None,
        reusing_results: bool = False,
        finished_runs: tuple[str, ...] = (),
        parallelism: int | None = None,
        claiming: bool = False,
    ) -> None:
        self.settings = settings
        self.scheduler = scheduler
        self.dir = session_dir
        self.metadata = work_dir.SessionMetadata.read(session_dir)
        # With the pieces of chunks an earlier call split at a time limit.
        self.bounds = splitting.current_bounds(bounds, self.metadata)
        self.resuming = resuming
        self.chunks = [Chunk(ichunk) for ichunk in range(len(self.bounds))]
        self.reducer = Reducer(session_dir, self.bounds)
        self.first_failure: TaskFailure | None = None
        self.num_failed_tasks = 0
        self.num_submissions = 0
        self.num_done = 0
        self.seen_unknown: set[tuple[str, str]] = set()
        self.job_name_base = f"{settings.job_name_prefix}-{self.metadata.session_id}"
        self.log: event_log.EventLog | None = None
        self.stop = stop
        self.submitting: Submission | None = None
        self.on_chunk_done = on_chunk_done
        self.withdrawals = withdrawals
        self.reusing_results = reusing_results
        self.finished_runs = finished_runs
        self.pending = pending.PendingWatch(
            scheduler, settings.pending_warning_after, settings.pending_timeout
        )
        self.claiming = claiming
        self.max_jobs = parallelism if claiming else None
        """Jobs kept in the queue at most: where jobs claim work, one per slot
        is enough; the chunks beyond are claimed by jobs that finish theirs."""
        self.jobs = MapJobs(settings.missing_result_grace_period)
        self.collected: dict[int, list] = {}
        """For ``map``: the results of the chunks this call folded, by chunk."""
        self.ending_jobs: list[Job] = []
        """Jobs left running when the map finished: they wrote the last results."""
        self.call = f"{os.getpid()}.{uuid.uuid4().hex[:8]}"
        """Names this call in the claims it makes for withdrawn chunks."""
        if withdrawals is not None and claiming:
            withdrawals.claim_with(self._withdraw_at_once)

    def run(self) -> list:
        self.dir.acquire_lock()
        self.log = event_log.EventLog(self.dir.log_path)
        succeeded = False
        try:
            shown = progress.shown(self.metadata.num_tasks, self.settings.verbose)
            with shown as display, _sigterm_raises_terminated():
                try:
                    self.log.write(
                        event_log.SESSION_STARTED, resuming=self.resuming, pid=os.getpid()
                    )
                    if self.resuming:
                        self._restore()
                    else:
                        self._note_finished_runs()
                    self._babysit(display)
                except BaseException as error:
                    # The last progress line comes before the message saying
                    # why the map stopped, never after it.
                    if display is not None:
                        display.close()
                    self._abort(error)
                    raise
            results = self._finish()
            succeeded = True
            return results
        finally:
            quietly(self.log.close)
            if succeeded and not self.settings.keep_work_dir:
                # The files the tasks wrote (pypoolparty.output_dir) are the user's.
                kept = task_outputs.keep(self.dir.path)
                if kept is not None:
                    message = f"the tasks' output files are in {kept}"
                    progress.announce(message, self.settings.verbose)
                self._wait_for_ending_jobs()
                self.dir.remove()
                work_dir.remove_base_if_empty(os.path.dirname(self.dir.path))
            else:
                self.dir.release_lock()

    # -- the loop ---------------------------------------------------------

    def _babysit(self, display: progress.Progress | None) -> None:
        self._fold(before_submitting=True)
        self._refresh_claims()
        if self._unsubmitted():
            self._pause(0)
            crash_points.reached("before_submit")
            self._top_up()
            crash_points.reached("after_submit")
        next_poll = 0.0
        while True:
            self._fold()
            self._withdraw()
            if display is not None:
                display.update(**self._task_counts())
            if self.num_done == len(self.chunks):
                return
            if time.monotonic() >= next_poll:
                self._poll()
                self._top_up()
                next_poll = time.monotonic() + self.settings.polling_interval
            self._wait_for_outcomes(next_poll)

    def _wait_for_outcomes(self, until: float) -> None:
        """Sleep until ``until`` (``time.monotonic()``), or until an outcome arrives.

        The scheduler is asked once per ``polling_interval``; the session
        directory is looked at more often, so that a map ends as soon as its
        last result is there, not up to a polling interval later.
        """
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            self._pause(min(left, OUTCOME_CHECK_INTERVAL))
            if self.reducer.arrived():
                return

    def _pause(self, seconds: float) -> None:
        """Sleep between polls; raise :class:`Cancelled` once ``stop`` is set."""
        if self.stop is None:
            time.sleep(seconds)
        elif self.stop.wait(seconds):
            raise Cancelled("the pool was terminated")

    def _fold(self, before_submitting: bool = False) -> None:
        """Archive the outcomes that arrived; end the map on an interpreter mismatch.

        ``before_submitting``: this call has not submitted yet, so an
        interpreter mismatch arrived from a job of an earlier call, which
        stopped on it; it is dropped and its chunk runs again (and reports
        again, if the interpreter is still wrong).
        """
        fresh = {}
        for ichunk in self.reducer.arrived():
            if ichunk >= len(self.chunks):
                continue
            chunk = self.chunks[ichunk]
            if chunk.done:
                self.reducer.discard_duplicate(ichunk)
            else:
                # A job that claims work goes on after this chunk: its
                # output is archived once it has ended (_fold_job_outputs).
                fresh[ichunk] = None if self.claiming else chunk.job
        if not fresh:
            return
        try:
            folded = self.reducer.fold(fresh)
        except OSError as error:
            raise WorkDirError.from_os_error(self.dir.path, error) from error
        mismatched = [item for item in folded if item.interpreter_mismatch is not None]
        interrupted = [
            item for item in folded if item.interrupted is not None and self._of_current_job(item)
        ]
        for item in folded:
            if item.interpreter_mismatch is not None or item.interrupted is not None:
                continue
            self._mark_done(self.chunks[item.ichunk])
            self.chunks[item.ichunk].written_by = item.outcome.get("home_chunk")
            self._record_failures(item.num_failed_tasks, item.first_failure)
            self.log.write(
                event_log.CHUNK_DONE, ichunk=item.ichunk, failed_tasks=item.num_failed_tasks
            )
            self._hand_out(item.ichunk, item.outcome)
        for item in mismatched:
            # No task ran: the chunk runs again in a later call.
            self.reducer.discard_duplicate(item.ichunk)
        if mismatched and not before_submitting:
            self._wrong_interpreter(self.chunks[mismatched[0].ichunk], mismatched[0])
        for item in interrupted:
            chunk = self.chunks[item.ichunk]
            if chunk.job is None:
                # The job of an earlier call, which cancelled it when it
                # stopped: the chunk is submitted as any chunk without a job.
                self.log.write(
                    event_log.JOB_INTERRUPTED,
                    jobid="",
                    ichunk=chunk.ichunk,
                    cause="cancelled",
                    signal=str(item.interrupted.get("signal", "")),
                    scheduler_state="",
                    reason="cancelled by an earlier call of the map",
                    interruptions=chunk.num_interruptions,
                    unfinished_tasks=item.interrupted.get("unfinished_tasks"),
                )
                continue
            # The job's status at the poll that follows says what stopped it.
            chunk.stopped = item

    def _of_current_job(self, item: FoldedChunk) -> bool:
        """Whether an interrupted outcome comes from its chunk's current job.

        A job this map cancelled (to resubmit it, say) may stop on the
        scheduler's SIGTERM and write one after its successor was submitted;
        that successor must not be cancelled in turn. A worker cannot start
        before its job was submitted, so an outcome that started earlier is
        from an older job (clocks of the nodes assumed roughly in step).
        """
        chunk = self.chunks[item.ichunk]
        started = item.outcome.get("start")
        if isinstance(started, (int, float)) and started < chunk.submitted_at:
            logger.info("chunk %d: ignoring the stop of an earlier job", chunk.ichunk)
            return False
        return True

    def _hand_out(self, ichunk: int, outcome: dict) -> None:
        if self.on_chunk_done is not None:
            bounds = self.bounds[ichunk]
            self.on_chunk_done(bounds[0], task_values(outcome, bounds, self.dir.path))
        elif self.first_failure is not None:
            self.collected.clear()  # the map raises: no result is returned
        else:
            # Unpickled now, while the jobs still run, not all at the end:
            # the list that map returns holds them anyway.
            self.collected[ichunk] = results_of(outcome)

    def _mark_done(self, chunk: Chunk) -> None:
        if not chunk.done:
            chunk.done = True
            self.num_done += 1

    def _record_failures(self, count: int, failure: TaskFailure | None) -> None:
        self.num_failed_tasks += count
        if failure is not None and (
            self.first_failure is None or failure.itask < self.first_failure.itask
        ):
            self.first_failure = failure

    def _poll(self) -> None:
        live = [c for c in self.chunks if not c.done and c.job is not None]
        chunk_jobs = distinct_jobs(c.job for c in live)
        # Jobs that run no chunk now (their own was claimed by another job)
        # are polled in the same call: they may start and claim work.
        polled = {job.jobid for job in chunk_jobs}
        others = [job for job in self.jobs.live() if job.jobid not in polled]
        statuses = self.scheduler.query(chunk_jobs + others)
        statuses = self.pending.refine(chunk_jobs, statuses)
        statuses.update(self._how_ended([c for c in live if c.job.jobid not in statuses]))
        self._note_job_statuses(chunk_jobs + others, statuses)
        now = time.monotonic()
        failed: list[Chunk] = []
        stopped: list[Stop] = []
        for chunk in live:
            status = statuses.get(chunk.job.jobid)
            self._note_status(chunk, status)
            if status is not None and status.state is JobState.RUNNING:
                chunk.running_since = chunk.running_since or now
            if status is None or status.state in (JobState.ERROR, JobState.ENDED):
                self._check_setup(chunk)
            if status is not None and not status.curable:
                if not self.reducer.has_outcome(chunk.ichunk):
                    self._cannot_run(chunk, status)
            stop = self._stop_of(chunk, status)
            if stop is not None:
                stopped.append(stop)
                continue
            if chunk.stopped is not None:
                continue  # its job is still ending
            reason = self._error_reason(chunk, status, now)
            if reason and not self.reducer.has_outcome(chunk.ichunk):
                chunk.last_error = reason
                failed.append(chunk)
        if stopped:
            self._run_again(stopped)
        if failed:
            self._resubmit(failed)
        self.pending.check()

    def _how_ended(self, gone: list[Chunk]) -> dict[str, JobStatus]:
        """What the scheduler's records say of jobs that left the queue without a result."""
        missing = [c.job for c in gone if not self.reducer.has_outcome(c.ichunk)]
        if not missing:
            return {}
        try:
            return self.scheduler.how_ended(missing)
        except Exception as error:  # only a hint: without it, the grace period decides
            logger.info("could not ask how %d job(s) ended: %s", len(missing), error)
            return {}

    def _error_reason(self, chunk: Chunk, status: JobStatus | None, now: float) -> str:
        """Why ``chunk``'s job counts as failed now, or '' if it does not."""
        if status is not None and status.state == JobState.ERROR:
            explained = self._explain(chunk.job)
            return joined(f"{status.scheduler_state}", status.reason, explained)
        if status is None or status.state == JobState.ENDED:
            if chunk.missing_since is None:
                chunk.missing_since = now
            if now - chunk.missing_since < self.settings.missing_result_grace_period:
                return ""
            if status is None:
                return "the job left the queue without writing a result"
            return joined(
                f"the job ended ({status.scheduler_state}) without a result", status.reason
            )
        chunk.missing_since = None
        return ""

    def _cannot_run(self, chunk: Chunk, status: JobStatus) -> None:
        """End the map: ``chunk``'s job failed in a way no resubmission cures.

        Raises
        ------
        JobCannotRun
            Always, with the scheduler's reason and the fix; the abort that
            follows cancels this job and the map's others.
        """
        reason = joined(status.scheduler_state, status.reason, self._explain(chunk.job))
        stderr_tail = last_lines(
            self.reducer.fold_failed_attempt(chunk.job, chunk.ichunk, chunk.num_submissions)
        )
        self.log.write(
            event_log.JOB_FAILED,
            jobid=chunk.job.jobid,
            ichunk=chunk.ichunk,
            attempt=chunk.num_submissions,
            reason=reason,
            fix=status.fix,
        )
        start, stop = self.bounds[chunk.ichunk]
        lines = [
            f"job {chunk.job.jobid} (chunk {chunk.ichunk}, tasks {start}..{stop - 1}) "
            f"cannot run: {reason}",
            f"{status.fix}",
            "A resubmission would fail the same way, so none was made.",
        ]
        if stderr_tail:
            lines += ["  stderr (last lines):"] + [
                f"    {line}" for line in stderr_tail.splitlines()
            ]
        raise JobCannotRun("\n".join(lines))

    def _wrong_interpreter(self, chunk: Chunk, folded: FoldedChunk) -> None:
        """End the map: ``chunk``'s worker found another Python or cloudpickle version.

        The worker ran no task. Every job on that interpreter would fail the
        same way, so nothing is resubmitted; the job's output is archived (its
        outcome was dropped), so a later call (once the interpreter is fixed)
        runs the chunk.

        Raises
        ------
        InterpreterMismatch
            Always, naming both versions and the fix; the abort that follows
            cancels the map's other jobs.
        """
        mismatch = folded.interpreter_mismatch
        start, stop = self.bounds[chunk.ichunk]
        jobid = chunk.job.jobid if chunk.job is not None else "?"
        where = (
            f"in job {jobid} (chunk {chunk.ichunk}, tasks {start}..{stop - 1}) on host "
            f"{folded.outcome.get('host', '?')}"
        )
        message = interpreter.mismatch_message(
            self.settings.python_path, mismatch["expected"], mismatch["found"], where
        )
        if chunk.job is not None:
            self.reducer.fold_failed_attempt(chunk.job, chunk.ichunk, chunk.num_submissions)
        self.log.write(
            event_log.JOB_FAILED,
            jobid=jobid,
            ichunk=chunk.ichunk,
            attempt=chunk.num_submissions,
            reason=f"interpreter mismatch on host {folded.outcome.get('host', '?')}",
            fix=message,
        )
        raise InterpreterMismatch(
            f"{message}\nNo task ran, and a resubmission would fail the same way, so none was made."
        )

    def _too_old_interpreter(self, chunk: Chunk) -> None:
        """End the map: ``chunk``'s job failed because its Python could not read the worker.

        Raises
        ------
        InterpreterMismatch
            Always: every job on that interpreter would fail the same way.
        """
        start, stop = self.bounds[chunk.ichunk]
        where = f"in job {chunk.job.jobid} (chunk {chunk.ichunk}, tasks {start}..{stop - 1})"
        message = interpreter.too_old_message(
            self.settings.python_path, interpreter.submitter_versions(), where
        )
        tail = [f"    {line}" for line in chunk.stderr_tail.splitlines()]
        raise InterpreterMismatch(
            "\n".join(
                [
                    message,
                    "No task ran, and a resubmission would fail the same way, so none was made.",
                    "  stderr (last lines):",
                    *tail,
                ]
            )
        )

    def _check_setup(self, chunk: Chunk) -> None:
        """End the map if ``chunk``'s job, which ended, failed in a setup line.

        Raises
        ------
        JobCannotRun
            The launcher left a setup failure: the line, its exit status and
            the job's stderr. Every job would fail the same way.
        """
        if self.reducer.has_outcome(chunk.ichunk):
            return
        failure = launcher.read_setup_failure(self.dir, chunk.ichunk)
        if failure is None:
            return
        launcher.forget_setup_failure(self.dir, chunk.ichunk)
        setup = self.settings.setup
        line = setup[failure.line - 1] if 0 < failure.line <= len(setup) else "?"
        self._cannot_run(
            chunk,
            incurable(
                "setup failed",
                f"setup line {failure.line} ({line!r}) failed with exit status "
                f"{failure.status} on host {failure.host}; the worker was not started",
                "Fix that line of the setup option, or what it needs on the nodes "
                "(its stderr is below). See 'Debugging a job that fails before the "
                "worker starts' in docs/job_environment.rst.",
            ),
        )

    def _explain(self, job: Job) -> str:
        try:
            return self.scheduler.explain(job)
        except Exception as error:  # a missing explanation must not end the map
            logger.info("could not explain job %s: %s", job.jobid, error)
            return ""

    def _note_status(self, chunk: Chunk, status: JobStatus | None) -> None:
        if status == chunk.status:
            return
        chunk.status = status
        self.log.write(
            event_log.JOB_STATE,
            jobid=chunk.job.jobid,
            ichunk=chunk.ichunk,
            state=status.state.value if status else "gone",
            scheduler_state=status.scheduler_state if status else "",
            reason=status.reason if status else "",
            **({"blocked": True} if status is not None and status.blocked else {}),
        )
        if status is not None and status.state == JobState.UNKNOWN:
            key = (status.scheduler_state, status.reason)
            if key not in self.seen_unknown:
                self.seen_unknown.add(key)
                logger.warning(
                    "job %s is in a state pypoolparty does not know (%s %s); waiting for it",
                    chunk.job.jobid,
                    status.scheduler_state,
                    status.reason,
                )
        if status is not None and status.state == JobState.HELD:
            logger.warning(
                "job %s (chunk %d) is held (%s); pypoolparty leaves it alone and waits "
                "until it is released",
                chunk.job.jobid,
                chunk.ichunk,
                status.reason or status.scheduler_state,
            )

    # -- submitting -------------------------------------------------------

    def _unsubmitted(self) -> list[int]:
        """Chunks without a job: neither submitted nor claimed."""
        return [
            c.ichunk for c in self.chunks if not c.done and c.job is None and c.claimed_by is None
        ]

    def _top_up(self) -> None:
        """Submit jobs for chunks that have none, up to :attr:`max_jobs` jobs in the queue.

        Where jobs claim work, the lowest chunks get a job of their own, one per
        slot the map may use; the others are claimed by those jobs as they
        finish their own, or get a job of their own once a job has left.
        """
        # An outcome that arrived since the fold may end the map (a wrong
        # interpreter): before anything more is submitted.
        self._fold()
        # After the poll: a job seen gone had made all its claims before.
        self._refresh_claims()
        waiting = self._unsubmitted()
        if self.max_jobs is not None:
            waiting = waiting[: max(0, self.max_jobs - len(self.jobs.live()))]
        if waiting:
            self._submit(waiting)

    def _submit_again(self, ichunks: list[int]) -> None:
        """Submit chunks whose jobs failed or were stopped, taking back their claims first."""
        if self.claiming:
            claims.release(self.dir.path, ichunks)
        self._submit(ichunks)

    def _submit(self, ichunks: list[int]) -> None:
        self.num_submissions += 1
        name = f"{self.job_name_base}-{self.num_submissions}"
        submission = self._submission(name, ichunks)
        self.log.write(
            event_log.SUBMITTING,
            submission=name,
            chunks=event_log.consecutive_runs(sorted(ichunks)),
        )
        # A setup failure left by an earlier job of these chunks is no news.
        launcher.remove_setup_failures(self.dir, ichunks)
        # Until its jobs are recorded, an interruption must find them by name.
        self.submitting = submission
        # Before the call: a slow submission's jobs may finish tasks before it
        # returns, and those must count as what they got done.
        got_done = stops.progress_of(self.dir.path, self.bounds, ichunks)
        submitted_at = time.time()
        try:
            jobs = self.scheduler.submit(submission)
        except SubmissionRejected:
            # Refused: whatever record the scheduler keeps under this name
            # (SLURM's FAILED BadConstraints) is never cancelled or adopted.
            self.submitting = None
            self.log.write(event_log.SUBMISSION_REJECTED, submission=name)
            raise
        crash_points.reached("during_submit")
        self._take_jobs(name, jobs, submitted_at=submitted_at, got_done=got_done)
        self.submitting = None
        logger.info("submitted %d job(s) as %s", len(jobs), name)

    def _submission(self, name: str, ichunks: list[int]) -> Submission:
        return Submission(
            chunks=ichunks,
            job_name=name,
            worker=WorkerCall(
                python_path=self.settings.python_path,
                script_path=self.dir.worker_script_path,
                session_dir=self.dir.path,
                container=self.settings.container,
                working_dir=os.getcwd(),
                launcher_path=self._launcher_path(),
                submission=name,
            ),
            directory=self.dir.submission_dir(name),
            num_simultaneously_running=self.settings.num_simultaneously_running_tasks,
        )

    def _launcher_path(self) -> str | None:
        path = launcher.launcher_path(self.dir)
        # A map prepared by a version without the launcher starts its worker
        # directly, as it did then (its worker sets the environment itself).
        return path if os.path.exists(path) else None

    def _take_jobs(
        self,
        name: str,
        jobs: list[Job],
        adopted: bool = False,
        submitted_at: float = 0.0,
        got_done: dict[int, stops.Progress] | None = None,
    ) -> None:
        """Make ``jobs`` the current jobs of their chunks, and log their ids.

        ``submitted_at``: when the submission began; no worker of these jobs
        started earlier. ``got_done``: the chunks' progress just before it
        (read now if not given).
        """
        if got_done is None:
            got_done = (
                {}
                if adopted
                else stops.progress_of(self.dir.path, self.bounds, [j.ichunk for j in jobs])
            )
        for job in jobs:
            self.jobs.add(job)
            chunk = self.chunks[job.ichunk]
            chunk.job = job
            chunk.claimed_by = None
            chunk.status = None
            chunk.missing_since = None
            chunk.stopped = None
            chunk.running_since = None
            chunk.progress = got_done.get(job.ichunk)
            chunk.adopted = adopted
            chunk.num_submissions = 1 if adopted else chunk.num_submissions + 1
            chunk.submitted_at = submitted_at
        self.log.write(
            event_log.SUBMITTED,
            submission=name,
            jobs=[
                event_log.job_row(
                    j.jobid, j.ichunk, self._relative(j.stdout_path), self._relative(j.stderr_path)
                )
                for j in jobs
            ],
        )

    def _resubmit(self, failed: list[Chunk]) -> None:
        # Jobs that cannot write their results look like failed jobs; a full
        # work_dir must stop the map rather than burn its resubmissions.
        work_dir.check_writable(self.dir.path)
        in_queue = distinct_jobs(c.job for c in failed if c.status is not None)
        if in_queue:
            self.scheduler.cancel(in_queue)
            self.jobs.note_gone(in_queue)
        crashed = {}
        for chunk in failed:
            attempt = chunk.num_submissions
            stderr = self.reducer.fold_failed_attempt(chunk.job, chunk.ichunk, attempt)
            chunk.stderr_tail = last_lines(stderr)
            crashed[chunk.ichunk] = (self._crash_of(chunk, stderr), stderr)
            self.log.write(
                event_log.JOB_FAILED,
                jobid=chunk.job.jobid,
                ichunk=chunk.ichunk,
                attempt=chunk.num_submissions,
                reason=chunk.last_error,
            )
            logger.warning(
                "job %s (chunk %d) failed: %s", chunk.job.jobid, chunk.ichunk, chunk.last_error
            )
        for chunk in failed:
            if interpreter.cannot_read_the_worker(chunk.stderr_tail):
                self._too_old_interpreter(chunk)
        for chunk in failed:
            self._check_crash(chunk, *crashed[chunk.ichunk])
        exhausted = [
            c
            for c in failed
            if c.num_submissions - c.num_interruptions > self.settings.max_num_resubmissions
        ]
        if exhausted:
            raise ResubmissionsExhausted(self._exhausted_message(exhausted))
        self._submit_again([c.ichunk for c in failed])

    def _crash_of(self, chunk: Chunk, stderr: str) -> tuple[int, str] | None:
        """``(itask, signal)`` if ``chunk``'s failed job died of a fatal signal of its own.

        The task is the chunk's first one without a task record: the one
        its job was running (the worker records each task it finishes).
        """
        name = crashes.crash_signal(chunk.last_error, stderr)
        if not name:
            return None
        progress = stops.progress_of(self.dir.path, self.bounds, [chunk.ichunk])[chunk.ichunk]
        return stops.first_unfinished_task(progress, self.bounds[chunk.ichunk]), name

    def _check_crash(self, chunk: Chunk, crash: tuple[int, str] | None, stderr: str) -> None:
        """End the map when ``chunk``'s job crashed like the one before it.

        One crash may be a bad node: the chunk runs again. The same signal
        in the same task a second time is the task's doing.

        Raises
        ------
        TaskCrashed
            The second crash in a row of the same task with the same signal.
        """
        previous, chunk.last_crash = chunk.last_crash, crash
        if crash is None:
            return
        itask, name = crash
        if crash != previous:
            logger.warning(
                "job %s (chunk %d) died of %s in task %d, perhaps on a faulty node; "
                "a second %s in that task ends the map",
                chunk.job.jobid,
                chunk.ichunk,
                name,
                itask,
                name,
            )
            return
        raise TaskCrashed(
            crashes.crashed_message(
                itask,
                chunk.ichunk,
                self.bounds[chunk.ichunk],
                chunk.job.jobid,
                name,
                2,
                chunk.last_error,
                crashes.where_it_crashed(stderr, chunk.stderr_tail),
            ),
            itask=itask,
            ichunk=chunk.ichunk,
            jobid=chunk.job.jobid,
            signal=name,
        )

    def _relative(self, path: str) -> str:
        return os.path.relpath(path, self.dir.path)

    def _task_counts(self) -> dict:
        """Tasks by the state of their chunk, for the progress display."""
        counts = dict.fromkeys(("done", "running", "pending", "in_error", "held"), 0)
        by_state = {
            JobState.RUNNING: "running",
            JobState.ERROR: "in_error",
            JobState.HELD: "held",
        }
        for chunk, (start, stop) in zip(self.chunks, self.bounds):
            if chunk.done:
                key = "done"
            elif chunk.status is None:
                key = "pending"
            else:
                key = by_state.get(chunk.status.state, "pending")
            counts[key] += stop - start
        resubmissions = sum(
            max(0, c.num_submissions - 1 - c.num_interruptions) for c in self.chunks
        )
        return {
            **counts,
            "resubmissions": resubmissions,
            "failed_tasks": self.num_failed_tasks,
            "pending_reasons": self._pending_reasons(),
        }

    def _num_finished_tasks(self) -> int:
        """Tasks whose results the session directory keeps for a later call.

        Those of finished chunks, and those the jobs of the other chunks
        recorded as finished (:mod:`pypoolparty.task_records`), which the
        chunk's next job skips. Records still on a node (no shared file
        system) are not counted.
        """
        unfinished = [chunk.ichunk for chunk in self.chunks if not chunk.done]
        recorded = task_records.finished_tasks(self.dir.path, unfinished) if unfinished else {}
        count = 0
        for chunk, (start, stop) in zip(self.chunks, self.bounds):
            if chunk.done:
                count += stop - start
            else:
                count += sum(1 for itask in recorded.get(chunk.ichunk, ()) if start <= itask < stop)
        return count

    def _pending_reasons(self) -> tuple[tuple[str, int], ...]:
        """Pending tasks by the reason their job waits, the most common first.

        Once the scheduler gives a reason, the tasks of chunks that have no
        job yet (they wait to be claimed by a running job, or for a free
        slot) are counted too, as :data:`pypoolparty.pending.NO_JOB_YET`, so
        that the reasons add up to the pending count.
        """
        by_reason: dict[str, int] = {}
        without_job = 0
        for chunk, (start, stop) in zip(self.chunks, self.bounds):
            if chunk.done:
                continue
            reason = pending.shown_reason(chunk.status)
            if reason:
                label = pending.label(reason)
                by_reason[label] = by_reason.get(label, 0) + stop - start
            elif chunk.job is None:
                without_job += stop - start
        if by_reason and without_job:
            by_reason[pending.NO_JOB_YET] = without_job
        return tuple(sorted(by_reason.items(), key=lambda item: (-item[1], item[0])))


@contextlib.contextmanager
def _sigterm_raises_terminated():
    """During a map, SIGTERM raises :class:`Terminated` so the jobs get cancelled."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated("received SIGTERM")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
