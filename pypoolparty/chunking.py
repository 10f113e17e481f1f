"""How tasks are cut into chunks, the pieces of work that jobs run and claim.

Every job costs the scheduler a start (about half a second on a busy SLURM,
often much more), so tiny tasks must share a job; long tasks want to spread
over every free slot.

Where jobs claim work (:mod:`pypoolparty.claims`), one job start is shared
by every chunk the job runs, so chunks can be small without costing starts.
They shrink towards the map's end (:func:`guided_bounds`, after OpenMP's
``guided`` schedule): the first ones are large, so that tiny tasks cost
little bookkeeping each, and the last ones are small, so that the slots
finish together even when task durations differ.

Where jobs cannot claim (no shared file system), each chunk is one job:
:func:`default_chunksize` keeps about four chunks per slot, few enough that
per-job overhead is paid rarely, enough that a slow chunk does not leave the
other slots idle at the end.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

CHUNKS_PER_SLOT = 4
GUIDED_DIVISOR = 8
"""A guided chunk holds ``1/(8 * slots)`` of the tasks left: with 2 slots, the
first chunk of 100 tasks holds 7, so that when the longest tasks come first
one chunk of them still ends before the other slot has done its share."""
GUIDED_MIN_FRACTION = 64
"""Guided chunks hold at least ``num_tasks / (64 * slots)`` tasks: enough to
bound the number of chunks (and of outcome files) to a few hundred per slot."""
FALLBACK_PARALLELISM = 256
"""Slots assumed when neither the user nor the scheduler says how many."""


def default_chunksize(num_tasks: int, parallelism: int | None) -> int:
    """Tasks per chunk when the user gives no ``chunksize``.

    ``num_chunks = min(num_tasks, 4 * parallelism)``, as even as possible,
    where ``parallelism`` is ``num_simultaneously_running_tasks`` if given,
    else the number of slots the scheduler reports, else 256.

    >>> default_chunksize(1000, 2)
    125
    >>> default_chunksize(3, 2)
    1
    """
    if parallelism is None or parallelism < 1:
        parallelism = FALLBACK_PARALLELISM
    num_chunks = max(1, min(num_tasks, CHUNKS_PER_SLOT * parallelism))
    return max(1, math.ceil(num_tasks / num_chunks))


def chunk_bounds(num_tasks: int, chunksize: int) -> list[tuple[int, int]]:
    """Start (inclusive) and stop (exclusive) task index of each chunk."""
    return [(start, min(start + chunksize, num_tasks)) for start in range(0, num_tasks, chunksize)]


def guided_bounds(num_tasks: int, parallelism: int | None) -> list[tuple[int, int]]:
    """Start (inclusive) and stop (exclusive) task index of chunks that shrink.

    Each chunk holds ``ceil(remaining / (8 * parallelism))`` tasks, but at
    least ``ceil(num_tasks / (64 * parallelism))`` and at least 1, where
    ``parallelism`` is as for :func:`default_chunksize`. About
    ``8 * parallelism * (1 + ln(8))`` chunks at most.

    >>> guided_bounds(100, 2)[:3]
    [(0, 7), (7, 13), (13, 19)]
    >>> guided_bounds(100, 2)[-2:]
    [(98, 99), (99, 100)]
    """
    if parallelism is None or parallelism < 1:
        parallelism = FALLBACK_PARALLELISM
    smallest = max(1, math.ceil(num_tasks / (GUIDED_MIN_FRACTION * parallelism)))
    bounds = []
    start = 0
    while start < num_tasks:
        size = max(smallest, math.ceil((num_tasks - start) / (GUIDED_DIVISOR * parallelism)))
        bounds.append((start, min(start + size, num_tasks)))
        start += size
    return bounds


class ChunkFinder:
    """Which chunk runs a task, for chunks whose indices need not follow task order.

    The pieces of a chunk a time limit stopped take the indices after the
    map's first chunks (:mod:`pypoolparty.splitting`). One sort of the
    chunks, then one bisection per look-up.

    Parameters
    ----------
    bounds : sequence of (int, int)
        ``(start, stop)`` of each chunk's tasks, by chunk index; a chunk with
        no tasks is never found.
    """

    def __init__(self, bounds: Sequence[tuple[int, int]]) -> None:
        self._ordered = sorted(
            (start, stop, i) for i, (start, stop) in enumerate(bounds) if stop > start
        )
        self._starts = [start for start, _, _ in self._ordered]

    def chunk_of(self, itask: int) -> int | None:
        """The chunk whose tasks include ``itask``; None if none does."""
        position = bisect.bisect_right(self._starts, itask) - 1
        if position >= 0 and itask < self._ordered[position][1]:
            return self._ordered[position][2]
        return None
