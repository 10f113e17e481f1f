"""How far a map has come: its chunks and tasks by state, its jobs, its time."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

from .. import archive, event_log, task_records, work_dir
from ..outcome import failed_tasks
from ..work_dir import SessionInfo
from .chunk_states import (
    CHUNK_STATES,
    DONE,
    ERROR,
    HELD,
    PENDING,
    QUEUED,
    RUNNING,
    UNKNOWN,
    ChunkLedger,
    StuckChunk,
)
from .outcomes import archived_chunks, unfolded_outcomes
from .process import ProcessState, state_from_lock

MAX_LISTED_STUCK_CHUNKS = 10
"""Stuck chunks a report names one by one; it counts the others."""

JOB_STATES_LISTED = (RUNNING, PENDING, QUEUED, HELD, ERROR, UNKNOWN)
"""Chunk states whose jobs a report lists by id: those a user may look up in
the queue (as last logged)."""


@dataclasses.dataclass(frozen=True)
class PendingReason:
    """The jobs that wait for one reason, as last logged."""

    reason: str
    """The scheduler's words, e.g. ``Priority``; '' if it gave none yet."""

    blocked: bool
    """The reason does not clear by itself (see :mod:`pypoolparty.pending`)."""

    jobids: list[str]


@dataclasses.dataclass(frozen=True)
class SessionStatus:
    """Counts of one map's chunks and tasks by state, and its jobs' history."""

    session: SessionInfo
    chunks_by_state: dict[str, int]
    tasks_by_state: dict[str, int]
    num_failed_tasks: int
    num_chunks_with_failed_tasks: int
    num_jobs_submitted: int
    num_scheduler_failures: int
    num_resubmissions: int
    num_calls: int
    first_event_time: float | None
    last_event_time: float | None
    last_event: str
    process: ProcessState
    stuck: list[StuckChunk]
    pending_reasons: list[PendingReason] = dataclasses.field(default_factory=list)
    """Pending jobs by reason, the most common first."""
    jobids_by_state: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """The jobs of the chunks in :data:`JOB_STATES_LISTED`, by their chunk's state."""
    running_chunks: list[tuple[str, int]] = dataclasses.field(default_factory=list)
    """``(jobid, ichunk)``: which job runs which chunk, as last logged (a job
    that claimed a chunk runs it, see :mod:`pypoolparty.claims`)."""

    @property
    def num_chunks_left(self) -> int:
        return self.session.num_chunks - self.chunks_by_state[DONE]

    @property
    def num_tasks_left(self) -> int:
        return self.session.num_tasks - self.tasks_by_state[DONE]

    def elapsed(self, now: float | None = None) -> float | None:
        """Seconds from the first event to the last, or to ``now`` while it runs."""
        if self.first_event_time is None or self.last_event_time is None:
            return None
        if self.process.ending == "running":
            end = time.time() if now is None else now
        else:
            end = self.last_event_time
        return max(0.0, end - self.first_event_time)


def session_status(session: SessionInfo) -> SessionStatus:
    """Count one map's chunks and tasks by state, from its files.

    The event log gives each chunk's last logged state. Outcomes in the
    work_dir overrule it: the map writes ``chunk_done`` only after folding
    an outcome, so a map killed in between has done chunks the log does not
    name. The files are listed before the log is read: a chunk moves from
    ``outcomes/`` into ``results.zip`` and then into the log, so reading in
    that order sees it in one place at least. Of a chunk not done, the tasks
    its jobs recorded as finished (:mod:`pypoolparty.task_records`: a job
    killed mid-chunk keeps them) count as done, the others in the chunk's
    state.

    Parameters
    ----------
    session : SessionInfo
        The map, from :func:`find_sessions`.

    Returns
    -------
    SessionStatus
    """
    partly_done = task_records.num_finished_tasks(session.dir.path)
    unfolded = dict(_unfolded_failed_counts(session))
    succeeded, failed_chunks = archived_chunks(session)
    ledger = ChunkLedger(session.num_chunks)
    for event in event_log.read(session.dir.log_path):
        ledger.replay(event)
    for ichunk in succeeded:
        ledger.mark_done(ichunk, 0)
    unlogged_failed = [i for i in failed_chunks if not ledger.ever_done[i] and i not in succeeded]
    for ichunk, count in _count_archived_failures(session, unlogged_failed).items():
        ledger.mark_done(ichunk, count)
    for ichunk, count in unfolded.items():
        ledger.mark_done(ichunk, count)
    return _summarize(session, ledger, partly_done)


def _unfolded_failed_counts(session: SessionInfo) -> Iterator[tuple[int, int]]:
    for ichunk, outcome in unfolded_outcomes(session):
        if 0 <= ichunk < session.num_chunks:
            first_itask = session.tasks_of(ichunk).start
            yield ichunk, len(failed_tasks(outcome, first_itask))


def _count_archived_failures(session: SessionInfo, ichunks: list[int]) -> dict[int, int]:
    """Failed tasks per chunk in ``exceptions.zip``, for chunks the log never called done."""
    if not ichunks:
        return {}
    counts = dict.fromkeys(ichunks, 0)
    for member in archive.members(session.dir.archive_path("exceptions")):
        match = work_dir.TASK_FAILURE_MEMBER.match(member.name)
        if match:
            ichunk = session.chunk_of(int(match.group(1)))
            if ichunk in counts:
                counts[ichunk] += 1
    # A chunk archived as failed has one failed task at least.
    return {ichunk: max(1, count) for ichunk, count in counts.items()}


def _summarize(
    session: SessionInfo, ledger: ChunkLedger, partly_done: dict[int, int]
) -> SessionStatus:
    chunks_by_state = dict.fromkeys(CHUNK_STATES, 0)
    tasks_by_state = dict.fromkeys(CHUNK_STATES, 0)
    for ichunk, state in enumerate(ledger.state):
        chunks_by_state[state] += 1
        num_tasks = len(session.tasks_of(ichunk))
        finished = 0 if state == DONE else min(num_tasks, partly_done.get(ichunk, 0))
        tasks_by_state[DONE] += finished
        tasks_by_state[state] += num_tasks - finished
    done_failures = {i: n for i, n in ledger.failed_tasks.items() if ledger.state[i] == DONE}
    return SessionStatus(
        session=session,
        chunks_by_state=chunks_by_state,
        tasks_by_state=tasks_by_state,
        num_failed_tasks=sum(done_failures.values()),
        num_chunks_with_failed_tasks=len(done_failures),
        num_jobs_submitted=ledger.num_jobs_submitted,
        num_scheduler_failures=ledger.num_scheduler_failures,
        num_resubmissions=ledger.num_resubmissions,
        num_calls=ledger.num_calls,
        first_event_time=ledger.first_time,
        last_event_time=ledger.last_time,
        last_event=ledger.last_event,
        process=ledger.ending or state_from_lock(session, ledger.num_calls),
        stuck=sorted(ledger.stuck.values(), key=lambda s: s.ichunk),
        pending_reasons=_pending_reasons(ledger),
        jobids_by_state=_jobids_by_state(ledger),
        running_chunks=[
            (jobid, ichunk)
            for ichunk, (jobid, state) in enumerate(zip(ledger.jobid, ledger.state))
            if state == RUNNING and jobid is not None
        ],
    )


def _pending_reasons(ledger: ChunkLedger) -> list[PendingReason]:
    groups: dict[tuple[str, bool], list[str]] = {}
    for ichunk, (reason, blocked) in ledger.waiting.items():
        jobid = ledger.jobid[ichunk]
        if ledger.state[ichunk] == PENDING and jobid is not None:
            # SLURM says "None" for a job it has not looked at yet.
            reason = "" if reason.strip() == "None" else reason.strip()
            groups.setdefault((reason, blocked), []).append(jobid)
    found = [PendingReason(reason, blocked, ids) for (reason, blocked), ids in groups.items()]
    return sorted(found, key=lambda p: (not p.blocked, -len(p.jobids), p.reason))


def _jobids_by_state(ledger: ChunkLedger) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for jobid, state in zip(ledger.jobid, ledger.state):
        if jobid is not None and state in JOB_STATES_LISTED:
            found.setdefault(state, []).append(jobid)
    return found
