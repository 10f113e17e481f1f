"""Each chunk's state as the event log tells it, replayed event by event.

The session logs what it does to a chunk (``submitting``, ``submitted``,
``chunk_claimed``, ``job_failed``, ``chunk_done``) and every change it sees in its job's state
(``job_state``); a chunk is in the state of the last of these events about
it. Replaying them takes a few bytes per chunk, however long the log.
"""

from __future__ import annotations

import dataclasses

from .. import event_log
from ..event_log import chunks_of_submitting, jobs_of
from .process import ProcessState

# Chunk states. The ones a job can be in are JobState values as the session
# logs them; the others say where a chunk is between submissions.
DONE = "done"
RUNNING = "running"
PENDING = "pending"
HELD = "held"
ERROR = "error"
UNKNOWN = "unknown"
ENDED = "ended"
GONE = "gone"
QUEUED = "queued"
JOB_FAILED = "job_failed"
CANCELLED = "cancelled"
SUBMITTING = "submitting"
NOT_SUBMITTED = "not_submitted"
CHUNK_STATES = (
    DONE,
    RUNNING,
    PENDING,
    HELD,
    ERROR,
    JOB_FAILED,
    CANCELLED,
    QUEUED,
    ENDED,
    GONE,
    UNKNOWN,
    SUBMITTING,
    NOT_SUBMITTED,
)
STUCK_STATES = (HELD, ERROR, UNKNOWN)
"""States worth naming chunk by chunk: someone may have to act on them."""
LIVE_STATES = (RUNNING, PENDING, HELD, ERROR, QUEUED, ENDED, GONE, UNKNOWN)
"""States of a job the map still watches: a map that stops cancels such jobs."""


@dataclasses.dataclass(frozen=True)
class StuckChunk:
    """A chunk whose job was last seen held, in error, or in an unknown state."""

    ichunk: int
    jobid: str
    state: str
    scheduler_state: str
    reason: str


class ChunkLedger:
    """Each chunk's state as the log tells it, and what the log counts of the map.

    Feed it the events with :meth:`replay`, in order.
    """

    def __init__(self, num_chunks: int) -> None:
        self.num_chunks = num_chunks
        self.state = [NOT_SUBMITTED] * num_chunks
        self.ever_done = bytearray(num_chunks)
        self.failed_tasks: dict[int, int] = {}
        """Failed tasks of each done chunk that has any."""
        self.stuck: dict[int, StuckChunk] = {}
        self.jobid: list[str | None] = [None] * num_chunks
        """The latest job of each chunk, as logged when it was submitted."""
        self.waiting: dict[int, tuple[str, bool]] = {}
        """Why the job of each pending chunk waits, and whether that is for
        a reason that does not clear by itself (``job_state``'s ``blocked``)."""
        self.num_jobs_submitted = 0
        self.num_scheduler_failures = 0
        self.num_resubmissions = 0
        self.num_calls = 0
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.last_event = ""
        self.ending: ProcessState | None = None
        """How the last call of the map ended; None if it logged no end."""
        self._failed_since_submitted = bytearray(num_chunks)
        self._submitting: dict[str, list[int]] = {}
        """The chunks of each submission the log announced (``submitting``)."""
        self._handlers = {
            event_log.SESSION_STARTED: self._on_session_started,
            event_log.SUBMITTING: self._on_submitting,
            event_log.SUBMITTED: self._on_submitted,
            event_log.SUBMISSION_REJECTED: self._on_submission_rejected,
            event_log.JOB_STATE: self._on_job_state,
            event_log.JOB_FAILED: self._on_job_failed,
            event_log.CHUNK_CLAIMED: self._on_chunk_claimed,
            event_log.CHUNK_DONE: self._on_chunk_done,
            event_log.SESSION_FINISHED: self._on_session_finished,
            event_log.SESSION_FAILED: self._on_session_failed,
            event_log.SESSION_ABORTED: self._on_session_aborted,
        }

    def replay(self, event: dict) -> None:
        """Take the next event of the log into account."""
        name = event["event"]
        stamp = event.get("time")
        if isinstance(stamp, (int, float)):
            self.first_time = stamp if self.first_time is None else self.first_time
            self.last_time = stamp
        self.last_event = name
        handler = self._handlers.get(name)
        if handler is not None:
            handler(event)

    def mark_done(self, ichunk: int, failed_tasks: int) -> None:
        """A chunk whose outcome is in the work_dir, whatever the log says so far."""
        self._set(ichunk, DONE)
        self._note_failed_tasks(ichunk, failed_tasks)

    def _chunk(self, value) -> int | None:
        try:
            ichunk = int(value)
        except (TypeError, ValueError):
            return None
        return ichunk if 0 <= ichunk < self.num_chunks else None

    def _set(self, ichunk: int, state: str) -> None:
        self.state[ichunk] = state
        self.stuck.pop(ichunk, None)
        self.waiting.pop(ichunk, None)

    def _note_failed_tasks(self, ichunk: int, count: int) -> None:
        if count:
            self.failed_tasks[ichunk] = count
        else:
            self.failed_tasks.pop(ichunk, None)

    def _on_session_started(self, event: dict) -> None:
        self.num_calls += 1
        self.ending = None

    def _on_submitting(self, event: dict) -> None:
        ichunks = [i for i in map(self._chunk, chunks_of_submitting(event)) if i is not None]
        self._submitting[str(event.get("submission"))] = ichunks
        for ichunk in ichunks:
            self._set(ichunk, SUBMITTING)

    def _on_submission_rejected(self, event: dict) -> None:
        for ichunk in self._submitting.pop(str(event.get("submission")), []):
            if self.state[ichunk] == SUBMITTING:
                self._set(ichunk, NOT_SUBMITTED)

    def _on_submitted(self, event: dict) -> None:
        for jobid, value, _, _ in jobs_of(event):
            ichunk = self._chunk(value)
            if ichunk is None:
                continue
            self.jobid[ichunk] = jobid
            self.num_jobs_submitted += 1
            if self._failed_since_submitted[ichunk]:
                self.num_resubmissions += 1
                self._failed_since_submitted[ichunk] = 0
            self._set(ichunk, QUEUED)

    def _on_job_state(self, event: dict) -> None:
        ichunk = self._chunk(event.get("ichunk"))
        if ichunk is None:
            return
        state = str(event.get("state", UNKNOWN))
        self._set(ichunk, state if state in CHUNK_STATES else UNKNOWN)
        if state == PENDING:
            self.waiting[ichunk] = (str(event.get("reason", "")), event.get("blocked") is True)
        if state in STUCK_STATES:
            self.stuck[ichunk] = StuckChunk(
                ichunk=ichunk,
                jobid=str(event.get("jobid", "?")),
                state=state,
                scheduler_state=str(event.get("scheduler_state", "")),
                reason=str(event.get("reason", "")),
            )

    def _on_job_failed(self, event: dict) -> None:
        ichunk = self._chunk(event.get("ichunk"))
        if ichunk is not None:
            self.num_scheduler_failures += 1
            self._failed_since_submitted[ichunk] = 1
            self._set(ichunk, JOB_FAILED)

    def _on_chunk_claimed(self, event: dict) -> None:
        """A job that finished its own chunk runs this one now."""
        ichunk = self._chunk(event.get("ichunk"))
        if ichunk is None:
            return
        self.jobid[ichunk] = str(event.get("jobid", "?"))
        self._set(ichunk, RUNNING)

    def _on_chunk_done(self, event: dict) -> None:
        ichunk = self._chunk(event.get("ichunk"))
        if ichunk is None:
            return
        self._set(ichunk, DONE)
        self.ever_done[ichunk] = 1
        self._note_failed_tasks(ichunk, int(event.get("failed_tasks") or 0))

    def _on_session_finished(self, event: dict) -> None:
        self.ending = ProcessState("finished")

    def _on_session_failed(self, event: dict) -> None:
        self.ending = ProcessState("task_failed", f"task {event.get('itask', '?')} raised")

    def _on_session_aborted(self, event: dict) -> None:
        error = str(event.get("error", ""))
        ending = "interrupted" if event_log.is_interruption(error) else "stopped"
        self.ending = ProcessState(ending, error)
        if event.get("cancelled_jobs"):
            # The map cancelled the jobs of its unfinished chunks as it
            # stopped, and logs no state for them: their last logged states
            # are stale. When cancelling failed, it cancelled none, and
            # they may well be in the queue still, as last logged.
            for ichunk, state in enumerate(self.state):
                if state in LIVE_STATES:
                    self._set(ichunk, CANCELLED)
