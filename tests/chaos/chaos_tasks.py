"""The function every chaos scenario maps: importable by the driver, the
worker (via the submitter's ``sys.path``) and the test that computes the
expected results locally."""

from __future__ import annotations

import time


class Refused(ValueError):
    """A task's own exception, raised on purpose by some scenarios."""


def compute(task: tuple[int, bool, float]) -> tuple[int, str]:
    """``task`` is ``(x, refuse, pause)``: wait ``pause`` seconds, then raise
    :class:`Refused` if ``refuse``, else return a value unique to ``x``."""
    x, refuse, pause = task
    if pause:
        time.sleep(pause)
    if refuse:
        raise Refused(f"task {x} refuses")
    return x * x + 7, f"r{x}"


def expected_outcome(tasks: list) -> dict:
    """What the local map gives: ``{"results": [...]}`` or the first error."""
    try:
        return {"results": [list(compute(task)) for task in tasks]}
    except Refused as error:
        return {"error": "Refused", "message": str(error)}


def record(x: int, side_effects: str) -> int:
    """Note each run of task ``x`` in directory ``side_effects``; return ``10 * x``."""
    with open(f"{side_effects}/{x}", "a") as file:
        file.write("ran\n")
    return 10 * x
