"""Tasks the benchmarks map: importable by workers as a module of this folder."""

import time


def trivial(x):
    return x * x


def sleep_half_second(x):
    time.sleep(0.5)
    return x


SKEWED_LONG_TASKS = 10
"""The skewed workload: the first 10 tasks sleep 3 s, the other 90 sleep 0.2 s."""


def skewed(x):
    time.sleep(3.0 if x < SKEWED_LONG_TASKS else 0.2)
    return x


def skewed_ideal_seconds(num_tasks, slots):
    """``max(total work / slots, longest task)`` for ``skewed`` over range(num_tasks)."""
    long_tasks = min(num_tasks, SKEWED_LONG_TASKS)
    work = 3.0 * long_tasks + 0.2 * (num_tasks - long_tasks)
    return max(work / slots, 3.0 if long_tasks else 0.2)
