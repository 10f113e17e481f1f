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

import time
from collections.abc import Iterable

from .scheduler import Job, JobState, JobStatus

_GONE = object()
"""The status of a job that left the queue (or that this map cancelled)."""


class MapJobs:
    """The jobs of one call of a map, with the last status seen of each.

    Parameters
    ----------
    unseen_grace_seconds : float
        How long a job that no poll has listed yet may stay unlisted before
        it counts as gone: a scheduler may list a job a moment after
        accepting it (the map's ``missing_result_grace_period``).
    """

    def __init__(self, unseen_grace_seconds: float = 0.0) -> None:
        self._by_key: dict[tuple[str, int], Job] = {}
        self._status: dict[str, object] = {}
        self._unseen_grace = unseen_grace_seconds
        self._unlisted_since: dict[str, float] = {}
        self._of_earlier_calls: set[str] = set()

    @staticmethod
    def key(job: Job) -> tuple[str, int]:
        return (job.submission, job.ichunk)

    def add(self, job: Job, of_an_earlier_call: bool = False) -> None:
        """Follow ``job``; ``of_an_earlier_call``: adopted from the event log.

        The scheduler accepted such a job before this call began, so the
        grace for a job not listed yet does not apply: unlisted, it has left.
        (Waiting for it would hold up the chunks it keeps from a slot.)
        """
        self._by_key[self.key(job)] = job
        self._status.pop(job.jobid, None)
        if of_an_earlier_call:
            self._of_earlier_calls.add(job.jobid)

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
        """Record a poll's answer for ``job``; None: it is not in the queue (any more)."""
        if status is not None:
            self._status[job.jobid] = status
            return
        if isinstance(self._status.get(job.jobid), JobStatus):
            self._status[job.jobid] = _GONE  # listed before: it has left
            return
        since = self._unlisted_since.setdefault(job.jobid, time.monotonic())
        if job.jobid in self._of_earlier_calls or time.monotonic() - since >= self._unseen_grace:
            self._status[job.jobid] = _GONE

    def note_gone(self, jobs: Iterable[Job]) -> None:
        """These jobs left the queue, or this map cancelled them."""
        for job in jobs:
            self._status[job.jobid] = _GONE

    def has_left(self, job: Job) -> bool:
        """Whether ``job`` left the queue, ended, or was cancelled by this map."""
        status = self._status.get(job.jobid)
        return status is _GONE or (isinstance(status, JobStatus) and status.state is JobState.ENDED)

    def status(self, job: Job) -> JobStatus | None:
        """The last status seen, None if gone or not polled yet."""
        status = self._status.get(job.jobid)
        return status if isinstance(status, JobStatus) else None

    def live(self) -> list[Job]:
        """Jobs that may still be in the queue: not seen to leave it, nor ended."""
        return [job for job in self._by_key.values() if not self.has_left(job)]

    def waiting(self, jobs: Iterable[Job]) -> list[Job]:
        """Of ``jobs``, those not seen running or gone: pending, held, in error, or not polled."""
        return [
            job
            for job in jobs
            if not self.has_left(job)
            and (self.status(job) is None or self.status(job).state is not JobState.RUNNING)
        ]
