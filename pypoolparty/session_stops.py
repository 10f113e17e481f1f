"""The session's part for jobs stopped before their chunk's end.

A job is stopped by its time limit, or by the cluster: a preemption, an
eviction, a requeue, a node failure (:mod:`pypoolparty.stops` says what the
session reads to tell what such a job got done). Its chunk runs again
without counting as a resubmission; a chunk a time limit stopped goes on in
pieces that fit the limit (:mod:`pypoolparty.splitting`); a time limit that
stopped a job before it got anything done ends the map.
"""

from __future__ import annotations

import logging
import time

from . import event_log, splitting, stops
from .errors import ResubmissionsExhausted, TimeLimitTooShort
from .outcome import last_lines
from .reducer import FoldedChunk
from .scheduler import JobState, JobStatus, stopped_by_the_cluster
from .session_state import WAITING, Chunk, Stop, distinct_jobs, joined

logger = logging.getLogger("pypoolparty")


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


class StoppedJobs:
    """Methods of :class:`pypoolparty.session.Session`; see the module."""

    def _stop_of(self, chunk: Chunk, status: JobStatus | None) -> Stop | None:
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
            return Stop(chunk, status, None)
        if status is not None and status.state is JobState.HELD:
            # Stopped by a hold (the user's condor_hold of a running job): the
            # session said when it saw the hold that it waits for the release;
            # "requeued" would be false, the job is not queued to run.
            chunk.stopped = None
            self._log_stop(chunk, status, stopped, cause="held")
            return None
        if status is not None and status.state in WAITING:
            chunk.stopped = None
            self._log_stop(chunk, status, stopped, cause="requeued")
            logger.info(
                "job %s (chunk %d) was requeued by the scheduler (%s); it runs again "
                "from its first unfinished task",
                chunk.job.jobid,
                chunk.ichunk,
                joined(status.scheduler_state, status.reason),
            )
            return None
        if status is not None and status.state in (JobState.RUNNING, JobState.UNKNOWN):
            return None  # still ending (SLURM's COMPLETING), or running again
        if cut_short:
            return Stop(chunk, status, stopped)
        signal_name = str(stopped.interrupted.get("signal", ""))
        meaning = self._meaning_of(signal_name)
        if meaning is None:
            meaning = stopped_by_the_cluster(
                status.scheduler_state if status is not None else "gone",
                f"the worker stopped on {signal_name}",
            )
        return Stop(chunk, meaning, stopped)

    def _meaning_of(self, signal_name: str) -> JobStatus | None:
        try:
            return self.scheduler.stopped_on(signal_name)
        except Exception as error:  # only a hint: without it, the stop is the cluster's
            logger.info("could not tell what %s means: %s", signal_name, error)
            return None

    def _run_again(self, stopped: list[Stop]) -> None:
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
        in_queue = distinct_jobs(
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
            chunk.last_error = joined(stop.status.scheduler_state, stop.status.reason)
            self.reducer.fold_failed_attempt(chunk.job, chunk.ichunk, chunk.num_submissions)
            cause = "time_limit" if stop.status.time_limit else "cluster"
            self._log_stop(chunk, stop.status, stop.folded, cause, now[chunk.ichunk], advanced)
            start, end = self.bounds[chunk.ichunk]
            logger.info(
                "job %s of chunk %d was stopped (%s); submitting its %d unfinished task(s) again",
                chunk.job.jobid,
                chunk.ichunk,
                joined(stop.status.scheduler_state, stop.status.reason),
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

    def _continue_in_pieces(self, stopped: list[Stop], now: dict[int, stops.Progress]) -> set[int]:
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

    def _time_limit_too_short(self, stop: Stop, now: stops.Progress) -> None:
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
            joined(stop.status.scheduler_state, stop.status.reason),
            ran,
            done + len(now.finished_tasks),
            explained,
            # Without a shared file system the job's records stayed with it.
            transferred_chunk=(
                None if self.scheduler.shares_file_system else self.bounds[chunk.ichunk]
            ),
        )
        self.log.write(
            event_log.JOB_FAILED,
            jobid=chunk.job.jobid,
            ichunk=chunk.ichunk,
            attempt=chunk.num_submissions,
            reason=joined(stop.status.scheduler_state, stop.status.reason, explained),
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
