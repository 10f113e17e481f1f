"""A task that crashes the Python process of its job, for the TaskCrashed tests."""

from __future__ import annotations

import ctypes

from killing_tasks import mark


def crash_at_one(marks: str, x: int) -> int:
    """Task ``x``; task 1 reads address 0 (SIGSEGV). Marks each start and finish."""
    mark(marks, x, "started")
    if x == 1:
        ctypes.string_at(0)
    mark(marks, x, "finished")
    return x
