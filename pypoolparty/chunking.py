"""How tasks are cut into chunks: one chunk is what one job runs.

Every job costs the scheduler a start (about half a second on a busy SLURM,
often much more), so tiny tasks must share a job. Long tasks want to spread
over every free slot. The default rule keeps about four chunks per slot: few
enough that per-job overhead is paid rarely, enough that a slow chunk does
not leave the other slots idle at the end.
"""

from __future__ import annotations

import math

CHUNKS_PER_SLOT = 4
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
