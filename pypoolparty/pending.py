"""Why a map's jobs wait, and what happens when they wait for good.

Every poll, the session hands :class:`PendingWatch` the states its adapter
reported. The watch

- fills in why pending jobs wait where the poll does not tell (Grid Engine,
  HTCondor): it asks the adapter's
  :meth:`~pypoolparty.scheduler.Scheduler.pending_reasons` -- one scheduler
  call for all of them, only for jobs that have waited
  :data:`REASONS_INTERVAL` seconds (or ``pending_warning_after``, if
  shorter), and at most once per :data:`REASONS_INTERVAL`;
- notes since when each job has been *blocked*: pending for a reason that
  does not clear by itself (:attr:`pypoolparty.scheduler.JobStatus.blocked`:
  nodes down or drained, a request beyond a partition's limits, no queue or
  machine that matches);
- once a job has been blocked for ``pending_warning_after`` seconds, says so
  on standard error, once per map call, verbose or not, with the reasons and
  the job ids;
- once a job has been blocked for ``pending_timeout`` seconds (if set),
  raises :class:`pypoolparty.errors.PendingTimeout`: the session then
  cancels the map's jobs and keeps its finished work.

A job that waits for free resources, for its start time or for another job
is never blocked, however long it waits: on a busy cluster that is normal.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from typing import Callable

from .errors import PendingTimeout
from .event_log import consecutive_runs
from .progress import format_duration
from .scheduler import Job, JobState, JobStatus, Scheduler

logger = logging.getLogger("pypoolparty")

REASONS_INTERVAL = 60.0
"""Least seconds between two calls of ``Scheduler.pending_reasons``: the
reasons are a hint, and asking costs the scheduler a look at every queue."""

MAX_LISTED_REASONS = 5
"""Reasons a message names one by one; it counts the others."""

MAX_JOB_IDS_LENGTH = 200
"""Characters of job ids a message lists for one reason."""

LABEL_LENGTH = 40
"""Characters of a reason the progress line shows."""

DOCS_HINT = "see 'My jobs stay pending' in pypoolparty's README"


NO_JOB_YET = "no job yet"
"""The progress line's label for pending tasks whose chunk has no job: jobs
already running claim it, or it is submitted when a slot frees."""


def shown_reason(status: JobStatus | None) -> str:
    """The reason a pending job waits, as the scheduler put it; '' if none.

    SLURM says ``None`` for a job it has not looked at yet.
    """
    if status is None or status.state is not JobState.PENDING:
        return ""
    reason = status.reason.strip()
    return "" if reason == "None" else reason


def label(reason: str) -> str:
    """``reason`` short enough for the progress line.

    >>> label("Priority")
    'Priority'
    """
    return reason if len(reason) <= LABEL_LENGTH else reason[: LABEL_LENGTH - 3] + "..."


def compact_job_ids(jobids: Iterable[str], limit: int = MAX_JOB_IDS_LENGTH) -> str:
    """Job ids as few words as possible: the tasks of an array as ``1234_[0-99]``.

    SLURM's array tasks ``<array>_<index>`` become ``<array>_[<ranges>]``,
    SLURM's own notation (``squeue -j``, ``scancel`` take it); Grid Engine's
    ``<job>.<task>`` and HTCondor's ``<cluster>.<proc>`` become
    ``<job>.[<ranges>]`` (``qstat -j <job>``, ``condor_q <cluster>`` show them
    all). Plain ids are listed, consecutive ones as a range. Cut at about
    ``limit`` characters, saying how many jobs there are in all.

    >>> compact_job_ids(["7_0", "7_1", "7_2", "7_5", "9"])
    '7_[0-2,5], 9'
    >>> compact_job_ids(["12.0", "12.1", "13.0"])
    '12.[0-1], 13.0'
    """
    tasks: dict[tuple[str, str], list[int]] = {}
    plain: list[int] = []
    other: list[str] = []
    count = 0
    for jobid in jobids:
        count += 1
        match = re.fullmatch(r"(\d+)([_.])(\d+)", jobid)
        if match:
            tasks.setdefault((match.group(1), match.group(2)), []).append(int(match.group(3)))
        elif jobid.isdigit():
            plain.append(int(jobid))
        else:
            other.append(jobid)
    words = []
    for (parent, separator), indices in sorted(tasks.items(), key=lambda i: int(i[0][0])):
        runs = _ranges(indices)
        single = len(set(indices)) == 1
        words.append(f"{parent}{separator}{runs}" if single else f"{parent}{separator}[{runs}]")
    if plain:
        words += _ranges(plain).split(",")
    words += sorted(other)
    text = ", ".join(words)
    if len(text) > limit:
        text = text[:limit].rsplit(", ", 1)[0] + f", ... ({count} jobs in all)"
    return text


def _ranges(numbers: list[int]) -> str:
    return ",".join(
        str(first) if first == last else f"{first}-{last}"
        for first, last in consecutive_runs(sorted(set(numbers)))
    )


def by_reason(jobs: dict[str, str]) -> list[tuple[str, list[str]]]:
    """``{jobid: reason}`` grouped by reason, the most common first."""
    groups: dict[str, list[str]] = {}
    for jobid, reason in jobs.items():
        groups.setdefault(reason, []).append(jobid)
    return sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))


def describe_reasons(jobs: dict[str, str]) -> list[str]:
    """One line per reason: how many jobs wait for it, and which."""
    groups = by_reason(jobs)
    lines = [
        f"  {reason or 'no reason given'}: {len(ids)} job(s), {compact_job_ids(ids)}"
        for reason, ids in groups[:MAX_LISTED_REASONS]
    ]
    hidden = groups[MAX_LISTED_REASONS:]
    if hidden:
        lines.append(
            f"  ... and {sum(len(ids) for _, ids in hidden)} job(s) for "
            f"{len(hidden)} other reason(s)"
        )
    return lines


class PendingWatch:
    """Reasons of pending jobs, and the time each job has been blocked, for one map call.

    Parameters
    ----------
    scheduler : Scheduler
        The map's adapter, asked for reasons its poll does not give.
    warn_after : float
        Seconds a job may be blocked before the map says so (``pending_warning_after``).
    timeout : float or None
        Seconds a job may be blocked before the map ends (``pending_timeout``);
        ``None``: wait for good.
    clock : callable
        Seconds, monotonic; replaceable for tests.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        warn_after: float,
        timeout: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scheduler = scheduler
        self.warn_after = warn_after
        self.timeout = timeout
        self.clock = clock
        self.warned = False
        self._pending_since: dict[str, float] = {}
        self._told: dict[str, JobStatus] = {}
        """What ``pending_reasons`` said of jobs still pending."""
        self._blocked: dict[str, tuple[float, str]] = {}
        """Blocked jobs: since when, and why."""
        self._last_asked: float | None = None

    def refine(self, jobs: Sequence[Job], statuses: dict[str, JobStatus]) -> dict[str, JobStatus]:
        """``statuses`` (one poll's answer for ``jobs``), with the reasons of pending
        jobs filled in where the poll gave none and the adapter can tell."""
        now = self.clock()
        pending = [
            job
            for job in jobs
            if job.jobid in statuses and statuses[job.jobid].state is JobState.PENDING
        ]
        self._forget_all_but({job.jobid for job in pending})
        for job in pending:
            self._pending_since.setdefault(job.jobid, now)
        unexplained = [job for job in pending if not shown_reason(statuses[job.jobid])]
        self._ask(unexplained, now)
        refined = dict(statuses)
        for job in unexplained:
            told = self._told.get(job.jobid)
            if told is not None:
                refined[job.jobid] = told
        for job in pending:
            status = refined[job.jobid]
            if not status.blocked:
                self._blocked.pop(job.jobid, None)
            elif job.jobid not in self._blocked:
                # Told late (a reason from pending_reasons): it waited all along.
                told = job.jobid in self._told
                since = self._pending_since[job.jobid] if told else now
                self._blocked[job.jobid] = (since, shown_reason(status))
        return refined

    def check(self) -> None:
        """Warn once, or end the map, if a job has been blocked long enough.

        Raises
        ------
        PendingTimeout
            A job has been blocked for ``pending_timeout`` seconds.
        """
        if not self._blocked:
            return
        waited = self.clock() - min(since for since, _ in self._blocked.values())
        if self.timeout is not None and waited >= self.timeout:
            raise PendingTimeout(self._timeout_message(waited))
        if not self.warned and waited >= self.warn_after:
            self.warned = True
            logger.warning("%s", self._warning(waited))

    def _ask(self, unexplained: list[Job], now: float) -> None:
        delay = min(REASONS_INTERVAL, self.warn_after)
        due = [job for job in unexplained if now - self._pending_since[job.jobid] >= delay]
        if not due:
            return
        if self._last_asked is not None and now - self._last_asked < REASONS_INTERVAL:
            return
        self._last_asked = now
        try:
            told = self.scheduler.pending_reasons(due)
        except Exception as error:  # a hint; its absence must not end the map
            logger.info("could not ask why jobs are pending: %s", error)
            return
        self._told.update(
            (jobid, status) for jobid, status in told.items() if status.state is JobState.PENDING
        )

    def _forget_all_but(self, pending: set[str]) -> None:
        for table in (self._pending_since, self._told, self._blocked):
            for jobid in [jobid for jobid in table if jobid not in pending]:
                del table[jobid]

    def _reasons(self) -> dict[str, str]:
        return {jobid: reason for jobid, (_, reason) in self._blocked.items()}

    def _warning(self, waited: float) -> str:
        if self.timeout is None:
            then = "The map keeps waiting (pending_timeout=None)."
        else:
            then = (
                f"The map ends if they still wait after {format_duration(self.timeout)} "
                "(pending_timeout)."
            )
        return "\n".join(
            [
                f"{len(self._blocked)} job(s) have waited {format_duration(waited)} for a "
                "reason that does not clear by itself:",
                *describe_reasons(self._reasons()),
                "They start only once the cluster's administrators act (nodes down or "
                "drained, a partition down) or the request changes (partition, time, "
                f"memory, nodes); {DOCS_HINT}. {then}",
            ]
        )

    def _timeout_message(self, waited: float) -> str:
        return "\n".join(
            [
                f"{len(self._blocked)} job(s) waited {format_duration(waited)} "
                f"(pending_timeout={self.timeout:g} s) for a reason that does not clear "
                "by itself:",
                *describe_reasons(self._reasons()),
                "Ask the cluster's administrators about the nodes or the partition, or "
                f"change the request (partition, time, memory, nodes); {DOCS_HINT}.",
            ]
        )
