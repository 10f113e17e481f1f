"""The same calls on multiprocessing.Pool and on each of our pools give the
same results and raise the same exception types.

Our cluster pools run against the dummy queues. Each scenario is a function
of a pool that returns what a user would see: values, or the name of the
exception type a call raised.
"""

from __future__ import annotations

import functools
import multiprocessing
import threading
import time

import pytest

import dummy_queues
from dummy_queues import POOL_KINDS

LONG_SLEEP = 600.0
"""A task that will not end while a test looks: the pool is terminated first."""


def square(x):
    return x * x


def fails_on_seven(x):
    if x == 7:
        raise ValueError(f"task {x} refuses")
    return x


def add(a, b, c=0):
    return a + b + c


def broken_input(n, fail_at):
    for i in range(n):
        if i == fail_at:
            raise KeyError("the input broke")
        yield i


def kind(error: BaseException) -> str:
    """The standard exception type ``error`` is: our own errors subclass them
    (an unpicklable task raises :class:`pypoolparty.Unpicklable`, a TypeError)."""
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins" or cls is multiprocessing.TimeoutError:
            return cls.__name__
    raise AssertionError(f"{error!r} is no standard exception")


def caught(call):
    """What a user sees of ``call()``: its value, or the type of its exception."""
    try:
        return ("value", call())
    except Exception as error:
        return ("raised", kind(error))


def iterate(iterator, timeout=None):
    """Every item of an imap iterator; an exception is recorded and iteration goes on."""
    seen = []
    while True:
        try:
            seen.append(("value", iterator.next(timeout) if timeout else next(iterator)))
        except StopIteration:
            return seen
        except Exception as error:
            seen.append(("raised", kind(error)))
            if isinstance(error, (KeyError, multiprocessing.TimeoutError)):
                return seen  # the input ended, or nothing came in time


SCENARIOS = {
    "map": lambda pool: caught(lambda: pool.map(square, range(20))),
    "map_chunksize_1": lambda pool: caught(lambda: pool.map(square, range(7), chunksize=1)),
    "map_chunksize_3": lambda pool: caught(lambda: pool.map(square, range(7), chunksize=3)),
    "map_chunksize_large": lambda pool: caught(lambda: pool.map(square, range(7), chunksize=99)),
    "map_generator": lambda pool: caught(lambda: pool.map(square, (i for i in range(5)))),
    "map_empty": lambda pool: caught(lambda: pool.map(square, [])),
    "map_task_raises": lambda pool: caught(lambda: pool.map(fails_on_seven, range(10))),
    "map_input_raises": lambda pool: caught(lambda: pool.map(square, broken_input(6, 3))),
    "map_unpicklable_task": lambda pool: caught(lambda: pool.map(id, [threading.Lock()])),
    "starmap": lambda pool: caught(lambda: pool.starmap(add, [(1, 2), (3, 4, 5)])),
    "starmap_empty": lambda pool: caught(lambda: pool.starmap(add, [])),
    "starmap_not_tuples": lambda pool: caught(lambda: pool.starmap(add, [1, 2])),
    "apply": lambda pool: caught(lambda: pool.apply(add, (1, 2), {"c": 3})),
    "apply_raises": lambda pool: caught(lambda: pool.apply(fails_on_seven, (7,))),
    "map_async": lambda pool: caught(lambda: pool.map_async(square, range(6)).get()),
    "map_async_empty": lambda pool: caught(lambda: pool.map_async(square, []).get()),
    "map_async_raises": lambda pool: caught(lambda: pool.map_async(fails_on_seven, [6, 7]).get()),
    "starmap_async": lambda pool: caught(lambda: pool.starmap_async(add, [(1, 1)]).get()),
    "apply_async": lambda pool: caught(lambda: pool.apply_async(square, (9,)).get()),
    "imap": lambda pool: iterate(pool.imap(square, range(10), chunksize=3)),
    "imap_empty": lambda pool: iterate(pool.imap(square, [])),
    # multiprocessing hands out whole chunks: with chunksize > 1 a failed task
    # ends its imap. Ours always behaves as multiprocessing's with chunksize=1.
    "imap_task_raises": lambda pool: iterate(pool.imap(fails_on_seven, range(10), chunksize=1)),
    "imap_input_raises": lambda pool: iterate(pool.imap(square, broken_input(6, 4))),
    # The chunk whose reading the input's exception interrupted is dropped
    # (see also test_imap_input.py, for every chunksize).
    "imap_input_raises_chunksize_2": lambda pool: iterate(
        pool.imap(square, broken_input(20, 7), chunksize=2)
    ),
    "imap_input_raises_chunksize_4": lambda pool: iterate(
        pool.imap(square, broken_input(20, 6), chunksize=4)
    ),
    "imap_unordered": lambda pool: sorted(iterate(pool.imap_unordered(square, range(10)))),
    "imap_unordered_empty": lambda pool: iterate(pool.imap_unordered(square, [])),
    "imap_unordered_task_raises": lambda pool: sorted(
        iterate(pool.imap_unordered(fails_on_seven, range(10), chunksize=1))
    ),
    "get_timeout": lambda pool: caught(
        lambda: pool.apply_async(time.sleep, (LONG_SLEEP,)).get(timeout=0.1)
    ),
    "imap_next_timeout": lambda pool: iterate(pool.imap(time.sleep, [LONG_SLEEP]), timeout=0.1),
}


def _callbacks(pool):
    """Values and errors the callbacks saw, once ``get`` has returned."""
    seen = []
    ok = pool.map_async(square, [1, 2], callback=seen.append)
    failed = pool.apply_async(fails_on_seven, (7,), error_callback=lambda e: seen.append(type(e)))
    ok.wait()
    failed.wait()
    return [seen.count([1, 4]), seen.count(ValueError), ok.successful(), failed.successful()]


SCENARIOS["callbacks"] = _callbacks


def _cause(pool):
    """The class of a re-raised task exception's ``__cause__``."""
    try:
        pool.map(fails_on_seven, range(10))
    except ValueError as error:
        return f"{type(error.__cause__).__module__}.{type(error.__cause__).__qualname__}"


SCENARIOS["task_raises_cause"] = _cause


def _lifecycle(pool):
    """What close, join and a closed pool do."""
    result = pool.map_async(square, [3])
    join_while_running = caught(pool.join)
    pool.close()
    after_close = caught(lambda: pool.map(square, [1]))
    pool.join()
    return [join_while_running, after_close, result.ready(), result.get()]


SCENARIOS["lifecycle"] = _lifecycle


def _not_ready(pool):
    result = pool.apply_async(time.sleep, (LONG_SLEEP,))
    return [result.ready(), caught(result.successful)]


SCENARIOS["successful_before_ready"] = _not_ready


@functools.cache
def reference(scenario: str):
    with multiprocessing.get_context("fork").Pool(2) as pool:
        return SCENARIOS[scenario](pool)


@pytest.fixture(params=sorted(POOL_KINDS))
def make_pool(request, dummy_queue, tmp_path):
    dummy_queue(request.param)
    return lambda: dummy_queues.make_pool(
        request.param,
        2,
        work_dir=tmp_path / "work",
        polling_interval=0.05,
        missing_result_grace_period=1.0,
    )


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_outcome_as_multiprocessing(scenario, make_pool):
    expected = reference(scenario)
    with make_pool() as pool:
        assert SCENARIOS[scenario](pool) == expected
