"""The session's part for claims: jobs that take further chunks (:mod:`pypoolparty.claims`).

The session hands each claimed chunk to the job that claimed it, takes back
the claims of jobs that are gone, cancels waiting jobs once every chunk is
claimed, and withdraws chunks whose tasks the caller took back (an
Executor's ``cancel``).
"""

from __future__ import annotations

import logging

from . import chunking, claims, event_log
from .errors import WorkDirError
from .scheduler import Job, JobStatus
from .session_state import WAITING, WITHDRAWN, Chunk, distinct_jobs

logger = logging.getLogger("pypoolparty")


class ClaimedChunks:
    """Methods of :class:`pypoolparty.session.Session`; see the module."""

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
            or c.claimed_by not in (None, WITHDRAWN)
            or (c.status is not None and c.status.state not in WAITING)
        ]
        requested = self.withdrawals.exchange(started)
        withdrawn = [
            c
            for c in self.chunks
            if not c.done
            and c.claimed_by in (None, WITHDRAWN)
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
        jobs = self.jobs.waiting(distinct_jobs(c.job for c in withdrawn if c.job is not None))
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
        ichunk = chunking.ChunkFinder(self.bounds).chunk_of(itask)
        if not all(i in withdrawn for i in range(*self.bounds[ichunk])):
            return True
        try:
            return claims.withdraw(self.dir.path, ichunk, self.call)
        except OSError as error:
            logger.warning("could not withdraw chunk %d: %s", ichunk, error)
            return False

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
                chunk.claimed_by = WITHDRAWN  # _withdraw counts it done
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
        # The claiming job's run is an attempt of the chunk, as its own job's
        # would have been (which then finds it claimed and runs it no more):
        # so a failure here counts against max_num_resubmissions.
        chunk.num_submissions = max(chunk.num_submissions, 1)
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
