"""Every job of one call of a map, whether or not it runs a chunk right now.

Where jobs claim work (:mod:`pypoolparty.claims`), job and chunk part ways:
a job runs the chunk it was submitted for and then others, and a job whose
chunk another job claimed first has none until it claims one. The session
keeps its chunks' state per chunk (:class:`pypoolparty.session.Chunk`);
this registry keeps the jobs, so that none is forgotten: each is polled
until it leaves the queue, cancelled with the map, and, while it waits in
the queue with no work left for it, cancelled at once.

A job is known by its submission's name and the chunk it was submitted for
(:attr:`MapJobs.key`), as its claims name it.
"""

from __future__ import annotations

from collections.abc import Iterable

from .scheduler import Job, JobState, JobStatus

_GONE = object()
"""The status of a job that left the queue (or that this map cancelled)."""


class MapJobs:
    """The jobs of one call of a map, with the last status seen of each."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, int], Job] = {}
        self._status: dict[str, object] = {}

    @staticmethod
    def key(job: Job) -> tuple[str, int]:
        return (job.submission, job.ichunk)

    def add(self, job: Job) -> None:
        self._by_key[self.key(job)] = job
        self._status.pop(job.jobid, None)

    def get(self, key: tuple[str, int] | None) -> Job | None:
        """The job that made a claim (:attr:`pypoolparty.claims.Claim.job_key`)."""
        return None if key is None else self._by_key.get(key)

    def all(self) -> list[Job]:
        return list(self._by_key.values())

    def clear(self) -> None:
        """Forget every job: an earlier call cancelled them all."""
        self._by_key.clear()
        self._status.clear()

    def note(self, job: Job, status: JobStatus | None) -> None:
        """Record a poll's answer for ``job``; None: it is no longer in the queue."""
        self._status[job.jobid] = _GONE if status is None else status

    def note_gone(self, jobs: Iterable[Job]) -> None:
        """These jobs left the queue, or this map cancelled them."""
        for job in jobs:
            self._status[job.jobid] = _GONE

    def status(self, job: Job) -> JobStatus | None:
        """The last status seen, None if gone or not polled yet."""
        status = self._status.get(job.jobid)
        return status if isinstance(status, JobStatus) else None

    def live(self) -> list[Job]:
        """Jobs that may still be in the queue: not seen to leave it, nor ended."""
        return [
            job
            for job in self._by_key.values()
            if self._status.get(job.jobid) is not _GONE
            and not (
                isinstance(status := self._status.get(job.jobid), JobStatus)
                and status.state is JobState.ENDED
            )
        ]

    def waiting(self, jobs: Iterable[Job]) -> list[Job]:
        """Of ``jobs``, those not seen running or gone: pending, held, in error, or not polled."""
        return [
            job
            for job in jobs
            if self._status.get(job.jobid) is not _GONE
            and not (
                isinstance(status := self._status.get(job.jobid), JobStatus)
                and status.state in (JobState.RUNNING, JobState.ENDED)
            )
        ]
