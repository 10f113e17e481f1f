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
import dataclasses
import errno
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
    event_log,
    interpreter,
    launcher,
    pending,
    prepare,
    progress,
    splitting,
    stops,
    task_outputs,
    work_dir,
)
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
    Terminated,
    TimeLimitTooShort,
    WorkDirError,
)
from .map_jobs import MapJobs
from .outcome import TaskFailure, exception_for, last_lines, results_of, task_values
from .reducer import FoldedChunk, Reducer
from .scheduler import (
    Job,
    JobState,
    JobStatus,
    Scheduler,
    Submission,
    WorkerCall,
    incurable,
    stopped_by_the_cluster,
)
from .settings import MapSettings
from .withdrawal import Withdrawals

logger = logging.getLogger("pypoolparty")

ENDING_JOBS_GRACE = 10.0
"""Seconds a finished map waits for its last running jobs to end before it
removes its session directory (:meth:`Session._wait_for_ending_jobs`)."""

OUTCOME_CHECK_INTERVAL = 0.2
"""Seconds between two looks for arrived outcomes while the session waits for
its next poll of the scheduler (one ``listdir`` of ``outcomes/``)."""

MAX_INTERRUPTIONS_PER_CHUNK = 20
"""Times one call of a map submits a chunk again after a stop of its job in
which no task finished and no checkpoint was saved. A stop -- a warning
signal (SIGTERM, SIGUSR1, SIGUSR2), a preemption, a node failure, an
eviction, a time limit -- keeps the finished tasks and does not count
against ``max_num_resubmissions``; stops that got something done are not
bounded (each finishes a task). This bound only stops a loop, e.g. a job
that is preempted as soon as it starts. A time limit that stops a job
before it got anything done ends the map at once
(:class:`~pypoolparty.errors.TimeLimitTooShort`)."""


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


@dataclasses.dataclass
class Chunk:
    """What the session knows of one chunk."""

    ichunk: int
    job: Job | None = None
    status: JobStatus | None = None
    num_submissions: int = 0
    missing_since: float | None = None
    done: bool = False
    last_error: str = ""
    stderr_tail: str = ""
    adopted: bool = False
    num_interruptions: int = 0
    """Submissions that followed an interruption: not resubmissions."""
    num_idle_interruptions: int = 0
    """Of those, the ones after a job that got nothing done (see
    :data:`MAX_INTERRUPTIONS_PER_CHUNK`)."""
    stopped: FoldedChunk | None = None
    """The current job's worker stopped on a signal and said so; the job's
    status at the next poll tells what to do (:meth:`Session._stop_of`)."""
    progress: stops.Progress | None = None
    """What the chunk's jobs had got done when this call submitted the
    current job; None for an adopted job."""
    running_since: float | None = None
    """When a poll first saw the current job running (``time.monotonic()``)."""
    submitted_at: float = 0.0
    """When this call submitted the current job (seconds since the epoch);
    0 for an adopted job, a claiming job, or none."""
    claimed_by: tuple[str, int] | None = None
    """The job that claimed the chunk (:attr:`pypoolparty.map_jobs.MapJobs.key`),
    once its claim was seen; :attr:`job` is that job."""


class Session:
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
            _quietly(self.log.close)
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

    def _stop_of(self, chunk: Chunk, status: JobStatus | None) -> _Stop | None:
        """Whether ``chunk``'s job was stopped before the chunk's end, and why.

        A stop is a time limit or the cluster's doing (a preemption, a node
        failure, an eviction, a warning signal): its chunk runs again at
        once, from its first unfinished task. A job the scheduler requeued
        itself (SLURM's ``scontrol requeue``) is pending again under its id:
        the map waits for it, and it continues the chunk.
        """
        stopped = chunk.stopped
        cut_short = (
            status is not None
            and status.state is JobState.ERROR
            and bool(status.time_limit or status.by_the_cluster)
        )
        if stopped is None and not cut_short:
            return None
        if self.reducer.has_outcome(chunk.ichunk):
            return None  # arrived since the fold (a requeued job's end, say): the next fold
        if stopped is None:
            return _Stop(chunk, status, None)
        if status is not None and status.state in _WAITING:
            chunk.stopped = None
            self._log_stop(chunk, status, stopped, cause="requeued")
            logger.info(
                "job %s (chunk %d) was requeued by the scheduler (%s); it runs again "
                "from its first unfinished task",
                chunk.job.jobid,
                chunk.ichunk,
                _join(status.scheduler_state, status.reason),
            )
            return None
        if status is not None and status.state in (JobState.RUNNING, JobState.UNKNOWN):
            return None  # still ending (SLURM's COMPLETING), or running again
        if cut_short:
            return _Stop(chunk, status, stopped)
        signal_name = str(stopped.interrupted.get("signal", ""))
        meaning = self._meaning_of(signal_name)
        if meaning is None:
            meaning = stopped_by_the_cluster(
                status.scheduler_state if status is not None else "gone",
                f"the worker stopped on {signal_name}",
            )
        return _Stop(chunk, meaning, stopped)

    def _meaning_of(self, signal_name: str) -> JobStatus | None:
        try:
            return self.scheduler.stopped_on(signal_name)
        except Exception as error:  # only a hint: without it, the stop is the cluster's
            logger.info("could not tell what %s means: %s", signal_name, error)
            return None

    def _run_again(self, stopped: list[_Stop]) -> None:
        """Submit again, at once, the chunks whose jobs were stopped before their end.

        The records keep the finished tasks, so each new job starts at its
        chunk's first unfinished task. Not a resubmission (see
        :data:`MAX_INTERRUPTIONS_PER_CHUNK`).

        Raises
        ------
        TimeLimitTooShort
            A time limit stopped a job that finished no task and saved no
            checkpoint: the next job would stop at the same task.
        ResubmissionsExhausted
            A chunk was stopped too often without getting anything done.
        """
        now = stops.progress_of(self.dir.path, self.bounds, [s.chunk.ichunk for s in stopped])
        for stop in stopped:
            advanced = now[stop.chunk.ichunk].advanced_since(stop.chunk.progress)
            if stop.status.time_limit and not advanced:
                self._time_limit_too_short(stop, now[stop.chunk.ichunk])
        in_queue = _distinct(
            s.chunk.job
            for s in stopped
            if s.chunk.status is not None and s.chunk.status.state != JobState.ENDED
        )
        if in_queue:
            self.scheduler.cancel(in_queue)
            self.jobs.note_gone(in_queue)
        for stop in stopped:
            chunk = stop.chunk
            chunk.num_interruptions += 1
            advanced = now[chunk.ichunk].advanced_since(chunk.progress)
            if not advanced:
                chunk.num_idle_interruptions += 1
            chunk.last_error = _join(stop.status.scheduler_state, stop.status.reason)
            self.reducer.fold_failed_attempt(chunk.job, chunk.ichunk, chunk.num_submissions)
            cause = "time_limit" if stop.status.time_limit else "cluster"
            self._log_stop(chunk, stop.status, stop.folded, cause, now[chunk.ichunk], advanced)
            start, end = self.bounds[chunk.ichunk]
            logger.info(
                "job %s of chunk %d was stopped (%s); submitting its %d unfinished task(s) again",
                chunk.job.jobid,
                chunk.ichunk,
                _join(stop.status.scheduler_state, stop.status.reason),
                end - start - len(now[chunk.ichunk].finished_tasks),
            )
        chunks = [s.chunk for s in stopped]
        looping = [c for c in chunks if c.num_idle_interruptions > MAX_INTERRUPTIONS_PER_CHUNK]
        if looping:
            raise ResubmissionsExhausted(self._interrupted_too_often_message(looping))
        timed_out = [s for s in stopped if s.status.time_limit]
        done = self._continue_in_pieces(timed_out, now) if self.claiming and timed_out else set()
        again = [c.ichunk for c in chunks if c.ichunk not in done]
        if again:
            self._submit_again(again)

    def _continue_in_pieces(self, stopped: list[_Stop], now: dict[int, stops.Progress]) -> set[int]:
        """Cut the unfinished tasks of chunks a time limit stopped into pieces that fit it.

        The pieces become chunks without a job, submitted by :meth:`_top_up`
        or claimed (:mod:`pypoolparty.splitting`). Returns the chunks cut
        down to their finished tasks: their outcomes are written, the next
        fold makes them done. The others run again, with fewer tasks.
        """
        wanted = []
        for stop in stopped:
            got_done = now[stop.chunk.ichunk].finished_tasks
            before = stop.chunk.progress.finished_tasks if stop.chunk.progress else frozenset()
            if stop.chunk.progress is None and not got_done:
                # A job that claimed the chunk late, or an adopted one: what
                # fits in the limit is not known. It runs again whole.
                continue
            host = str(stop.folded.outcome.get("host", "?")) if stop.folded else "?"
            wanted.append((stop.chunk.ichunk, len(got_done - before), host))
        self.metadata, splits = splitting.split(self.dir, self.metadata, self.bounds, wanted)
        for cut in splits:
            self.chunks.extend(Chunk(ichunk) for ichunk, _, _ in cut.pieces)
            self.log.write(event_log.CHUNK_SPLIT, **cut.logged())
            logger.info("%s", cut)
        return {cut.ichunk for cut in splits if cut.done}

    def _log_stop(
        self,
        chunk: Chunk,
        status: JobStatus,
        folded: FoldedChunk | None,
        cause: str,
        now: stops.Progress | None = None,
        advanced: bool | None = None,
    ) -> None:
        """One ``job_interrupted`` event: the scheduler's words, the signal, what is left."""
        interrupted = folded.interrupted if folded is not None else {}
        fields = {}
        if now is not None:
            start, end = self.bounds[chunk.ichunk]
            fields["unfinished_tasks"] = end - start - len(now.finished_tasks)
        elif "unfinished_tasks" in interrupted:
            fields["unfinished_tasks"] = interrupted["unfinished_tasks"]
        if advanced is not None:
            fields["got_something_done"] = advanced
        self.log.write(
            event_log.JOB_INTERRUPTED,
            jobid=chunk.job.jobid,
            ichunk=chunk.ichunk,
            cause=cause,
            signal=str(interrupted.get("signal", "")),
            scheduler_state=status.scheduler_state,
            reason=status.reason,
            interruptions=chunk.num_interruptions,
            **fields,
        )

    def _time_limit_too_short(self, stop: _Stop, now: stops.Progress) -> None:
        """End the map: a time limit stopped a job before it finished any task.

        Raises
        ------
        TimeLimitTooShort
            Always, naming the task, the limit and how long the task ran;
            the abort that follows cancels the map's other jobs.
        """
        chunk = stop.chunk
        itask = stops.first_unfinished_task(now, self.bounds[chunk.ichunk])
        seen = None if chunk.running_since is None else time.monotonic() - chunk.running_since
        ran = stops.ran_for(stop.folded.outcome if stop.folded is not None else None, seen)
        done = sum(end - start for c, (start, end) in zip(self.chunks, self.bounds) if c.done)
        explained = self._explain(chunk.job)
        stderr_tail = last_lines(
            self.reducer.fold_failed_attempt(chunk.job, chunk.ichunk, chunk.num_submissions)
        )
        message = stops.time_limit_message(
            itask,
            chunk.ichunk,
            chunk.job.jobid,
            stop.status.time_limit,
            _join(stop.status.scheduler_state, stop.status.reason),
            ran,
            done + len(now.finished_tasks),
            explained,
        )
        self.log.write(
            event_log.JOB_FAILED,
            jobid=chunk.job.jobid,
            ichunk=chunk.ichunk,
            attempt=chunk.num_submissions,
            reason=_join(stop.status.scheduler_state, stop.status.reason, explained),
            fix=message.splitlines()[1],
        )
        if stderr_tail:
            message += "\n  stderr (last lines):\n" + "\n".join(
                f"    {line}" for line in stderr_tail.splitlines()
            )
        raise TimeLimitTooShort(message)

    def _interrupted_too_often_message(self, looping: list[Chunk]) -> str:
        start, stop = self.bounds[looping[0].ichunk]
        return (
            f"{len(looping)} chunk(s) had their jobs stopped by the cluster more than "
            f"{MAX_INTERRUPTIONS_PER_CHUNK} times in this call before they got anything done, "
            f"e.g. chunk {looping[0].ichunk} (tasks {start}..{stop - 1}); the tasks finished "
            "so far are kept. Something stops these jobs as soon as they run (preemption, a "
            "failing or drained node, a signal sent to them): look at the jobs' stderr in "
            "stderr.zip, the event log's job_interrupted entries and the scheduler's accounting. "
            f"The last stop: {looping[0].last_error}."
        )

    def _withdraw(self) -> None:
        """Cancel the jobs of chunks whose every task the caller took back.

        Tell the caller which tasks can no longer be taken back: those of
        chunks that are done or whose jobs have left the queue's waiting
        states. A withdrawn chunk counts as done, without an outcome; a result
        that arrives for it later is discarded.
        """
        if self.withdrawals is None:
            return
        started = [
            self.bounds[c.ichunk]
            for c in self.chunks
            if c.done
            or c.claimed_by not in (None, _WITHDRAWN)
            or (c.status is not None and c.status.state not in _WAITING)
        ]
        requested = self.withdrawals.exchange(started)
        withdrawn = [
            c
            for c in self.chunks
            if not c.done
            and c.claimed_by in (None, _WITHDRAWN)
            and all(i in requested for i in range(*self.bounds[c.ichunk]))
        ]
        if self.claiming:
            # The map claims them itself, so that no job does; one that a job
            # claimed first has started.
            withdrawn = [
                c for c in withdrawn if claims.withdraw(self.dir.path, c.ichunk, self.call)
            ]
        if not withdrawn:
            return
        jobs = self.jobs.waiting(_distinct(c.job for c in withdrawn if c.job is not None))
        if jobs:
            self.scheduler.cancel(jobs)
            self.jobs.note_gone(jobs)
        for chunk in withdrawn:
            self._mark_done(chunk)
        self.log.write(
            event_log.CHUNKS_WITHDRAWN,
            chunks=event_log.consecutive_runs([c.ichunk for c in withdrawn]),
            cancelled_jobs=[job.jobid for job in jobs],
        )

    def _withdraw_at_once(self, itask: int, withdrawn: set[int]) -> bool:
        """The caller's thread: claim the chunk of ``itask`` for no job once all
        its tasks are ``withdrawn``; False if a job claimed it first."""
        ichunk = splitting.chunk_of(self.bounds, itask)
        if not all(i in withdrawn for i in range(*self.bounds[ichunk])):
            return True
        try:
            return claims.withdraw(self.dir.path, ichunk, self.call)
        except OSError as error:
            logger.warning("could not withdraw chunk %d: %s", ichunk, error)
            return False

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
        chunk_jobs = _distinct(c.job for c in live)
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
        stopped: list[_Stop] = []
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
            return _join(f"{status.scheduler_state}", status.reason, explained)
        if status is None or status.state == JobState.ENDED:
            if chunk.missing_since is None:
                chunk.missing_since = now
            if now - chunk.missing_since < self.settings.missing_result_grace_period:
                return ""
            if status is None:
                return "the job left the queue without writing a result"
            return _join(
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
        reason = _join(status.scheduler_state, status.reason, self._explain(chunk.job))
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

    # -- claims -----------------------------------------------------------

    def _refresh_claims(self) -> None:
        """Hand each newly claimed chunk to the job that claimed it; take back stale claims.

        A claim is stale when no job of this call made it (an earlier call
        cancelled that job as it stopped, or the chunk was withdrawn then),
        or when it says done but the chunk has no outcome (a chunk with
        failed tasks, run again by this call): its chunk then gets a job of
        its own. Once every chunk is claimed, the jobs still waiting in the
        queue are cancelled (:meth:`_cancel_idle_jobs`).
        """
        if not self.claiming:
            return
        # A claim seen once stays its job's until this call takes it back
        # (and forgets it): one readlink per new claim, not per claim and poll.
        known = [c.ichunk for c in self.chunks if c.done or c.claimed_by is not None]
        found = claims.read(self.dir.path, skip=known)
        stale = []
        for ichunk, claim in sorted(found.items()):
            if ichunk >= len(self.chunks) or self.chunks[ichunk].done:
                continue
            chunk = self.chunks[ichunk]
            if claim.state == claims.DONE and not self.reducer.has_outcome(ichunk):
                stale.append(ichunk)
                continue
            if claim.state == claims.WITHDRAWN and claim.run == self.call:
                chunk.claimed_by = _WITHDRAWN  # _withdraw counts it done
                continue
            job = self.jobs.get(claim.job_key)
            if job is None:
                stale.append(ichunk)
                continue
            chunk.claimed_by = claim.job_key
            if job is not chunk.job:
                self._hand_over(chunk, job)
        if stale:
            claims.release(self.dir.path, stale)
            for ichunk in stale:
                self.chunks[ichunk].claimed_by = None
            logger.info("took back %d claim(s) of jobs that are gone", len(stale))
        self._cancel_idle_jobs()

    def _hand_over(self, chunk: Chunk, job: Job) -> None:
        """``job`` claimed ``chunk``: the chunk's state is that job's from now on."""
        chunk.job = job
        chunk.status = None  # the next poll logs the job's state for this chunk
        chunk.missing_since = None
        chunk.stopped = None
        chunk.running_since = None
        # Not comparable: the job got other chunks done before this one, so a
        # time limit that stops it here is no sign of a limit too short.
        chunk.progress = None
        chunk.adopted = False
        chunk.submitted_at = 0.0
        self.log.write(
            event_log.CHUNK_CLAIMED, ichunk=chunk.ichunk, jobid=job.jobid, home=job.ichunk
        )

    def _cancel_idle_jobs(self) -> None:
        """Once every chunk is claimed, cancel the jobs still waiting: none has work left."""
        if any(not c.done and c.claimed_by is None for c in self.chunks):
            return
        busy = {c.job.jobid for c in self.chunks if not c.done and c.job is not None}
        idle = [job for job in self.jobs.waiting(self.jobs.live()) if job.jobid not in busy]
        if not idle:
            return
        self.scheduler.cancel(idle)
        self.jobs.note_gone(idle)
        self.log.write(event_log.JOBS_CANCELLED, jobids=[job.jobid for job in idle])
        logger.info("cancelled %d waiting job(s): every chunk is claimed", len(idle))

    def _note_job_statuses(self, jobs: list[Job], statuses: dict[str, JobStatus]) -> None:
        """Remember each job's state; archive the output of those that left the queue."""
        for job in jobs:
            self.jobs.note(job, statuses.get(job.jobid))
        # The job of a chunk that is not done: its output goes with the
        # chunk's failed attempt (Reducer.fold_failed_attempt), with the reason.
        busy = {c.job.jobid for c in self.chunks if not c.done and c.job is not None}
        ended = [job for job in jobs if self.jobs.has_left(job) and job.jobid not in busy]
        if self.claiming and ended:
            self._fold_job_outputs(ended)

    def _fold_job_outputs(self, jobs: list[Job]) -> None:
        """Archive the output files of jobs that have ended, if still there."""
        try:
            self.reducer.fold_job_outputs(jobs)
        except OSError as error:
            raise WorkDirError.from_os_error(self.dir.path, error) from error

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
        in_queue = _distinct(c.job for c in failed if c.status is not None)
        if in_queue:
            self.scheduler.cancel(in_queue)
            self.jobs.note_gone(in_queue)
        for chunk in failed:
            chunk.stderr_tail = last_lines(
                self.reducer.fold_failed_attempt(chunk.job, chunk.ichunk, chunk.num_submissions)
            )
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
        exhausted = [
            c
            for c in failed
            if c.num_submissions - c.num_interruptions > self.settings.max_num_resubmissions
        ]
        if exhausted:
            raise ResubmissionsExhausted(self._exhausted_message(exhausted))
        self._submit_again([c.ichunk for c in failed])

    # -- ending -----------------------------------------------------------

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
        # poll (a resumed map, a duplicate run).
        candidates = {
            c.job.jobid: c
            for c in self.chunks
            if c.job is not None and (c.status is not None or c.missing_since is None)
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
                if jobid in candidates and _may_linger(candidates[jobid], status)
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
        try:
            while ending and time.monotonic() < deadline:
                # An exiting job takes a moment; the scheduler is not asked
                # more often than usual, nor less than once a second.
                time.sleep(min(self.settings.polling_interval, 1.0))
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
        live = _distinct(
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
        _quietly(
            self.log.write,
            event_log.SESSION_ABORTED,
            error=f"{type(error).__name__}: {error}"[:2000],
            cancelled_jobs=cancelled,
            **(interrupted if cancelled else {}),
        )
        kept = (
            f"{cancel_note}the session directory {self.dir.path} keeps {self.num_done} of "
            f"{len(self.chunks)} finished chunks"
        )
        # A refused request would be refused again: no advice to call again.
        if isinstance(
            error, (SubmissionRejected, PermanentError, JobCannotRun, InterpreterMismatch)
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
                f"{error} (it was there when the map started).\n{_capitalized(where)}"
            ) from error
        if isinstance(error, PermanentError):
            raise SchedulerError(f"{error}\n{_capitalized(where)}") from error
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
            raise type(error)(f"{error}\n{_capitalized(where)}") from None
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
            if chunk.stderr_tail:
                lines += ["    stderr (last lines):"] + [
                    f"      {line}" for line in chunk.stderr_tail.splitlines()
                ]
        if len(exhausted) > 10:
            lines.append(f"  ... and {len(exhausted) - 10} more chunk(s)")
        return "\n".join(lines)

    # -- resuming -----------------------------------------------------------

    def _restore(self) -> None:
        """Rebuild the chunks' state from the archives and the event log."""
        for ichunk in self.reducer.archived_chunks():
            if ichunk < len(self.chunks):
                self._mark_done(self.chunks[ichunk])
                if self.on_chunk_done is not None:
                    self._hand_out(ichunk, self.reducer.load_outcome(ichunk))
        # A finished map's last call cancelled whatever of it was left in the
        # queue: there is nothing to adopt, and nothing to ask a scheduler.
        adopting = self.metadata.scheduler == self.scheduler.name and not self.reusing_results
        unrecorded: dict[str, list[int]] = {}
        for event in event_log.read(self.dir.log_path):
            if event["event"] == event_log.SUBMITTING:
                self.num_submissions += 1
                unrecorded[event["submission"]] = event_log.chunks_of_submitting(event)
            if event["event"] == event_log.SUBMISSION_REJECTED:
                unrecorded.pop(event.get("submission"), None)
            if event["event"] == event_log.SESSION_ABORTED:
                self._forget_cancelled(event, unrecorded)
            if event["event"] == event_log.CHUNK_DONE:
                self._forget_finished_job(event)
            if event["event"] != event_log.SUBMITTED or not adopting:
                continue
            unrecorded.pop(event["submission"], None)
            for jobid, ichunk, stdout, stderr in event_log.jobs_of(event):
                chunk = self.chunks[ichunk]
                chunk.job = Job(
                    jobid, ichunk, self.dir.join(stdout), self.dir.join(stderr), event["submission"]
                )
                self.jobs.add(chunk.job)
                # An adopted job counts as this call's first submission.
                chunk.num_submissions = 1
                chunk.adopted = True
        if adopting:
            for name, ichunks in unrecorded.items():
                self._recover(name, ichunks)
        adopted = sum(1 for c in self.chunks if not c.done and c.job is not None)
        self.log.write(
            event_log.SESSION_RESUMED,
            done=self.num_done,
            adopted_jobs=adopted,
            reused_results=self.reusing_results,
        )
        progress.announce(self._reuse_line(adopted), self.settings.verbose)

    def _reuse_line(self, adopted: int) -> str:
        """The one line that says how much finished work this call reuses, and from where."""
        done = sum(stop - start for c, (start, stop) in zip(self.chunks, self.bounds) if c.done)
        total = self.metadata.num_tasks
        if self.reusing_results:
            return (
                f"reusing the stored results of {done} of {total} tasks of this map, which "
                f"finished on {self.metadata.scheduler} in {self.dir.path} (reuse_results=True)"
            )
        return (
            f"continuing this map from {self.dir.path}: reusing {done} of {total} tasks done "
            f"before, {adopted} job(s) of the earlier call adopted"
        )

    def _note_finished_runs(self) -> None:
        if self.finished_runs:
            logger.info(
                "%s holds a finished run of this map, kept for inspection; this call runs it "
                "afresh in %s (reuse_results=True would return its stored results)",
                self.finished_runs[-1],
                self.dir.path,
            )

    def _forget_cancelled(self, event: dict, unrecorded: dict[str, list[int]]) -> None:
        """Drop the jobs an earlier call cancelled when it stopped (Ctrl-C, an error).

        That call cancelled the job of every unfinished chunk, and those of
        a submission it was inside; so their chunks have no job and are
        submitted again at once, as first submissions: no grace period for
        their results, no resubmission counted. A cancel that failed
        (``cancelled_jobs`` 0) leaves the jobs to be adopted and queried.
        """
        cancelled = event.get("cancelled_jobs")
        if not isinstance(cancelled, int) or isinstance(cancelled, bool) or cancelled <= 0:
            return
        for chunk in self.chunks:
            if not chunk.done:
                chunk.job = None
                chunk.adopted = False
                chunk.num_submissions = 0
        # It cancelled every job it had: their claims are taken back (_refresh_claims).
        self.jobs.clear()
        unrecorded.pop(event.get("cancelled_submission"), None)

    def _forget_finished_job(self, event: dict) -> None:
        """Drop the job of a chunk that ended with failed tasks: its outcome
        was read, so it is not adopted (waiting for a result it has already
        given), and the chunk is submitted again at once, as a first submission."""
        ichunk = event.get("ichunk")
        if isinstance(ichunk, int) and 0 <= ichunk < len(self.chunks):
            chunk = self.chunks[ichunk]
            if not chunk.done:
                chunk.job = None
                chunk.adopted = False
                chunk.num_submissions = 0

    def _recover(self, name: str, ichunks: list[int]) -> None:
        """Adopt the jobs of a submission whose ids the predecessor, killed
        while submitting, never recorded; left alone, they would run unseen
        beside the jobs submitted for the same chunks now."""
        submission = self._submission(name, ichunks)
        jobs = [job for job in self.scheduler.recover(submission) if job.ichunk < len(self.chunks)]
        self._take_jobs(name, jobs, adopted=True)
        logger.info("adopted %d job(s) of %s, submitted before an interruption", len(jobs), name)

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

    def _pending_reasons(self) -> tuple[tuple[str, int], ...]:
        """Pending tasks by the reason their job waits, the most common first."""
        by_reason: dict[str, int] = {}
        for chunk, (start, stop) in zip(self.chunks, self.bounds):
            reason = "" if chunk.done else pending.shown_reason(chunk.status)
            if reason:
                label = pending.label(reason)
                by_reason[label] = by_reason.get(label, 0) + stop - start
        return tuple(sorted(by_reason.items(), key=lambda item: (-item[1], item[0])))


_WITHDRAWN = ("", -1)
""":attr:`Chunk.claimed_by` of a chunk this call withdrew."""

_WAITING = (JobState.PENDING, JobState.HELD)
"""Job states in which a withdrawn chunk's job is cancelled before it starts, and
in which a job whose worker stopped was requeued by its scheduler."""


@dataclasses.dataclass(frozen=True)
class _Stop:
    """A job stopped before its chunk's end, and what stopped it."""

    chunk: Chunk
    status: JobStatus
    """Its status with :attr:`~JobStatus.time_limit` or :attr:`~JobStatus.by_the_cluster`."""
    folded: FoldedChunk | None
    """The worker's interrupted outcome, if it wrote one."""


def _distinct(jobs) -> list[Job]:
    """``jobs`` without repeats, in order: several chunks may share a job."""
    return list({job.jobid: job for job in jobs}.values())


def _may_linger(chunk: Chunk, status: JobStatus) -> bool:
    if status.state == JobState.ENDED:
        return False
    if status.state == JobState.RUNNING:
        return chunk.num_submissions > 1 or chunk.adopted
    return True


def _quietly(action, *args, **kwargs) -> None:
    """For bookkeeping while a map is already failing: never hide that failure."""
    try:
        action(*args, **kwargs)
    except OSError as error:
        logger.warning("could not write the event log: %s", error)


def _join(*parts: str) -> str:
    return "; ".join(p.strip() for p in parts if p and p.strip())


def _capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]


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
