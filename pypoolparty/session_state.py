"""What the session keeps per chunk, and the small helpers its parts share.

:class:`pypoolparty.session.Session` is put together from parts, each a
module of its own: the loop, submitting and polling
(:mod:`pypoolparty.session`), jobs stopped before their chunk's end
(:mod:`pypoolparty.session_stops`), claims (:mod:`pypoolparty.session_claims`),
the end of a map (:mod:`pypoolparty.session_end`) and continuing an
interrupted one (:mod:`pypoolparty.session_resume`). They share the state of
each chunk, :class:`Chunk`.
"""

from __future__ import annotations

import dataclasses
import logging

from . import stops
from .reducer import FoldedChunk
from .scheduler import Job, JobState, JobStatus

logger = logging.getLogger("pypoolparty")


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
    :data:`pypoolparty.session_stops.MAX_INTERRUPTIONS_PER_CHUNK`)."""
    stopped: FoldedChunk | None = None
    """The current job's worker stopped on a signal and said so; the job's
    status at the next poll tells what to do
    (:meth:`pypoolparty.session_stops.StoppedJobs._stop_of`)."""
    progress: stops.Progress | None = None
    """What the chunk's jobs had got done when this call submitted the
    current job; None for an adopted job."""
    running_since: float | None = None
    """When a poll first saw the current job running (``time.monotonic()``)."""
    submitted_at: float = 0.0
    """When this call submitted the current job (seconds since the epoch);
    0 for an adopted job, a claiming job, or none."""
    written_by: int | None = None
    """The home chunk of the job whose outcome made the chunk done in this
    call (the outcome's ``home_chunk``); None if unknown."""
    last_crash: tuple[int, str] | None = None
    """``(itask, signal)`` when the chunk's last failed job died of a fatal
    signal of its own (:mod:`pypoolparty.crashes`): the same again ends the map."""
    claimed_by: tuple[str, int] | None = None
    """The job that claimed the chunk (:attr:`pypoolparty.map_jobs.MapJobs.key`),
    once its claim was seen; :attr:`job` is that job."""


WITHDRAWN = ("", -1)
""":attr:`Chunk.claimed_by` of a chunk this call withdrew."""

WAITING = (JobState.PENDING, JobState.HELD)
"""Job states in which a withdrawn chunk's job is cancelled before it starts, and
in which a job whose worker stopped was requeued by its scheduler."""


@dataclasses.dataclass(frozen=True)
class Stop:
    """A job stopped before its chunk's end, and what stopped it."""

    chunk: Chunk
    status: JobStatus
    """Its status with :attr:`~JobStatus.time_limit` or :attr:`~JobStatus.by_the_cluster`."""
    folded: FoldedChunk | None
    """The worker's interrupted outcome, if it wrote one."""


def distinct_jobs(jobs) -> list[Job]:
    """``jobs`` without repeats, in order: several chunks may share a job."""
    return list({job.jobid: job for job in jobs}.values())


def may_linger(chunk: Chunk, status: JobStatus) -> bool:
    if status.state == JobState.ENDED:
        return False
    if status.state == JobState.RUNNING:
        return chunk.num_submissions > 1 or chunk.adopted
    return True


def quietly(action, *args, **kwargs) -> None:
    """For bookkeeping while a map is already failing: never hide that failure."""
    try:
        action(*args, **kwargs)
    except OSError as error:
        logger.warning("could not write the event log: %s", error)


def joined(*parts: str) -> str:
    return "; ".join(p.strip() for p in parts if p and p.strip())


def capitalized(text: str) -> str:
    return text[:1].upper() + text[1:]
