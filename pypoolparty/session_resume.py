"""The session's part for continuing an interrupted map from its session directory.

The archives say which chunks are done; the event log says which jobs were
submitted, cancelled or finished, so the jobs still in the queue are
adopted rather than submitted again.
"""

from __future__ import annotations

import logging

from . import event_log, progress, task_records
from .scheduler import Job

logger = logging.getLogger("pypoolparty")


class Restoring:
    """Methods of :class:`pypoolparty.session.Session`; see the module."""

    def _restore(self) -> None:
        """Rebuild the chunks' state from the archives and the event log."""
        for ichunk in self.reducer.archived_chunks():
            if ichunk < len(self.chunks):
                self._mark_done(self.chunks[ichunk])
                if self.on_chunk_done is not None:
                    self._hand_out(ichunk, self.reducer.load_outcome(ichunk))
        self._keep_finished_tasks_of_failed_chunks()
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
                self.jobs.add(chunk.job, of_an_earlier_call=True)
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

    def _keep_finished_tasks_of_failed_chunks(self) -> None:
        """Let a chunk whose tasks partly failed run only those tasks again.

        Its outcome is archived apart (``<ichunk>.failed.pickle``, see
        :mod:`pypoolparty.reducer`), and the chunk runs again in this call.
        Its tasks that finished become task records of the chunk
        (:func:`pypoolparty.task_records.write_kept`), which its next job
        skips as it skips those of a killed run: finished work is never run
        again, whatever the chunk size.
        """
        for ichunk, outcome in self.reducer.failed_outcomes().items():
            if ichunk >= len(self.chunks) or self.chunks[ichunk].done:
                continue
            start, stop = self.bounds[ichunk]
            finished = [
                entry
                for entry in outcome.get("tasks", [])
                if "error" not in entry and start <= entry.get("itask", -1) < stop
            ]
            if finished:
                task_records.write_kept(self.dir.path, ichunk, finished)

    def _reuse_line(self, adopted: int) -> str:
        """The one line that says how much finished work this call reuses, and from where."""
        done = self._num_finished_tasks()
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
