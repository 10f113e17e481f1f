"""Tasks the benchmarks map: importable by workers as a module of this folder."""

import time


def trivial(x):
    return x * x


def sleep_half_second(x):
    time.sleep(0.5)
    return x


SKEWED = {"skewed": (10, 3.0, 0.2), "skewed_quick": (2, 0.6, 0.04)}
"""Uneven workloads: (how many long tasks come first, their seconds, the others' seconds).

``skewed`` is issue 12's: the first 10 tasks sleep 3 s, the others 0.2 s;
``skewed_quick`` has its shape at a fifth of the durations, for trying a
benchmark out.
"""


def skewed(x):
    return _sleep_skewed("skewed", x)


def skewed_quick(x):
    return _sleep_skewed("skewed_quick", x)


def _sleep_skewed(task, x):
    long_tasks, long_seconds, short_seconds = SKEWED[task]
    time.sleep(long_seconds if x < long_tasks else short_seconds)
    return x


def skewed_ideal_seconds(num_tasks, slots, task="skewed"):
    """``max(total work / slots, longest task)`` for ``task`` over range(num_tasks)."""
    long_tasks, long_seconds, short_seconds = SKEWED[task]
    long_tasks = min(num_tasks, long_tasks)
    work = long_seconds * long_tasks + short_seconds * (num_tasks - long_tasks)
    return max(work / slots, long_seconds if long_tasks else short_seconds)


def expected_result(task, x):
    """What ``task(x)`` returns, without running it (the others sleep)."""
    return trivial(x) if task == "trivial" else x
