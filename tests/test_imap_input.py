"""The input side of imap and imap_unordered, and of the maps that read their
input at once.

- An input iterable that raises: the same results and exceptions as
  ``multiprocessing.Pool`` for every chunksize, and nothing of the map left
  running or queued when the exception reaches the user.
- A slow or blocking input: the tasks read are run without waiting for a
  whole window, and ``terminate()``, the end of a ``with`` block and the
  interpreter's exit do not wait for the input; nothing is submitted after
  ``terminate()``.

The input is read by :mod:`pypoolparty.imap` alone, the same for every pool,
so the sweep over chunksizes runs on the local pool; each dummy scheduler
runs the issue's case, to show that no job is left queued.
"""

from __future__ import annotations

import functools
import glob
import multiprocessing
import os
import queue
import subprocess
import sys
import textwrap
import threading

import pytest
from waiting import wait_for

import dummy_queues
import pypoolparty
from dummy_queues import POOL_KINDS
from pypoolparty import local

GUARD = 60.0
"""Seconds after which a test that would otherwise hang fails (never reached when it passes)."""

CHUNKSIZES = (None, 1, 2, 3, 4, 7, 8, 20)
END = object()
"""Put on a ``fed_by`` queue: the input ends."""


class InputBroke(ValueError):
    """The input iterable's own exception."""


def square(x):
    return x * x


def raising_at(total, when):
    """``range(total)``, raising at item ``when``: CPython's ``exception_throwing_generator``."""
    for i in range(total):
        if i == when:
            raise InputBroke(f"the input broke at item {i}")
        yield i


def fed_by(tasks: queue.Queue, asked: queue.Queue | None = None):
    """Yield what the test puts on ``tasks``, blocking in between, until ``END``.

    Each time the pool asks for the next item, ``asked`` (if given) is told so.
    """
    while True:
        if asked is not None:
            asked.put("next")
        item = tasks.get()
        if item is END:
            return
        yield item


def sequence(iterator, at_exception=lambda: None) -> list:
    """What a user sees iterating to the end: values, and exception types by name.

    The iteration goes on after an exception, as long as the iterator allows.
    ``at_exception`` is called when the input's exception arrives; what it
    returns is recorded beside it.
    """
    seen = []
    while len(seen) < 100:
        try:
            seen.append(("value", next(iterator)))
        except StopIteration:
            return seen
        except InputBroke:
            seen.append(("raised", "InputBroke", at_exception()))
    raise AssertionError(f"the iteration does not end: {seen}")


def unordered(seen: list) -> tuple:
    """An unordered sequence as the sorted values, and what was raised after the last value."""
    values = sorted(entry[1] for entry in seen if entry[0] == "value")
    last_value = max((i for i, entry in enumerate(seen) if entry[0] == "value"), default=-1)
    return values, seen[last_value + 1 :]


@functools.cache
def reference(method: str, chunksize: int | None, when: int) -> list:
    """multiprocessing's sequence (its default chunksize is 1).

    One worker runs the tasks in the order they were read, so even its
    ``imap_unordered`` has one order: the input's exception last, which is
    ours. With more workers that exception may come before some results.
    """
    with multiprocessing.get_context("fork").Pool(1) as pool:
        iterator = getattr(pool, method)(square, raising_at(20, when), chunksize or 1)
        return sequence(iterator)


@pytest.fixture
def work(tmp_path):
    return tmp_path / "work"


def session_dirs(work) -> list[str]:
    return glob.glob(os.path.join(work, "map-*"))


@pytest.mark.parametrize("when", [0, 7, 12])
@pytest.mark.parametrize("chunksize", CHUNKSIZES)
@pytest.mark.parametrize("method", ["imap", "imap_unordered"])
def test_an_input_that_raises_gives_what_multiprocessing_gives(method, chunksize, when, work):
    expected = [entry[:2] for entry in reference(method, chunksize, when)]
    with local.Pool(2, work_dir=work, polling_interval=0.05) as pool:
        seen = sequence(
            getattr(pool, method)(square, raising_at(20, when), chunksize, read_ahead=5),
            # Every map of the imap has ended and removed its session directory.
            at_exception=lambda: session_dirs(work),
        )
    assert ("raised", "InputBroke", []) in seen
    seen = [entry[:2] for entry in seen]
    if method == "imap":
        assert seen == expected
    else:
        assert unordered(seen) == unordered(expected)


def test_the_issues_case_yields_six_results_then_the_inputs_exception(work):
    # CPython's test_imap_handle_iterable_exception: the chunk of items 6 and 7
    # is dropped when reading item 7 raises.
    with local.Pool(2, work_dir=work, polling_interval=0.05) as pool:
        results = pool.imap(square, raising_at(20, 7), chunksize=2)
        assert [next(results) for _ in range(6)] == [0, 1, 4, 9, 16, 25]
        with pytest.raises(InputBroke, match="item 7"):
            next(results)
        with pytest.raises(StopIteration):
            next(results)


@pytest.mark.parametrize("pool_kind", sorted(set(POOL_KINDS) - {"local"}))
def test_no_job_is_left_queued_when_the_inputs_exception_arrives(pool_kind, dummy_queue, work):
    dummy = dummy_queue(pool_kind)
    with dummy_queues.make_pool(pool_kind, 2, work_dir=work, polling_interval=0.05) as pool:
        seen = sequence(
            pool.imap_unordered(square, raising_at(20, 7), chunksize=2, read_ahead=4),
            # Every map has ended: cancelled what lingered, removed its directory.
            at_exception=lambda: session_dirs(work),
        )
    assert unordered(seen) == ([x * x for x in range(6)], [("raised", "InputBroke", [])])
    # A job that wrote its result may still be exiting: it ends by itself.
    wait_for(lambda: not dummy.queued_jobs())


def test_an_input_raising_at_once_submits_nothing(dummy_queue, work):
    dummy = dummy_queue("slurm")
    with dummy_queues.make_pool("slurm_array", 2, work_dir=work, polling_interval=0.05) as pool:
        assert sequence(pool.imap(square, raising_at(20, 0), 2)) == [("raised", "InputBroke", None)]
    assert not dummy.jobs()


EAGER_CALLS = {
    "map": lambda pool, tasks, c: pool.map(square, tasks, c),
    "map_async": lambda pool, tasks, c: pool.map_async(square, tasks, c),
    "starmap": lambda pool, tasks, c: pool.starmap(square, ((t,) for t in tasks), c),
    "starmap_async": lambda pool, tasks, c: pool.starmap_async(square, ((t,) for t in tasks), c),
}


@pytest.mark.parametrize("chunksize", CHUNKSIZES)
@pytest.mark.parametrize("method", sorted(EAGER_CALLS))
def test_map_and_starmap_raise_the_inputs_exception_at_the_call(method, chunksize, work):
    """As multiprocessing, they read a generator whole before anything runs."""
    call = EAGER_CALLS[method]
    with multiprocessing.get_context("fork").Pool(1) as reference_pool:
        with pytest.raises(InputBroke):
            call(reference_pool, raising_at(20, 7), chunksize)
    with local.Pool(2, work_dir=work, polling_interval=0.05) as pool:
        with pytest.raises(InputBroke):
            call(pool, raising_at(20, 7), chunksize)
    assert not work.exists(), "nothing was submitted"


def test_an_executors_map_raises_the_inputs_exception_before_submitting(work):
    # concurrent.futures submits the calls read before the exception and
    # leaves them running; ours reads the input first and submits nothing.
    pool = local.Pool(2, work_dir=work, polling_interval=0.05)
    with pool.executor() as executor:
        with pytest.raises(InputBroke):
            executor.map(square, raising_at(20, 7))
        assert executor.num_maps == 0
    pool.terminate()
    assert not work.exists()


class SizedButBroken:
    """An input with a length whose iteration raises."""

    def __len__(self):
        return 10

    def __iter__(self):
        return raising_at(10, 3)


def test_a_sized_input_that_raises_raises_at_the_call(work):
    # A documented difference: multiprocessing iterates a sized input lazily
    # and its map then waits for ever for the chunks the input never gave.
    with local.Pool(2, work_dir=work, polling_interval=0.05) as pool:
        with pytest.raises(InputBroke):
            pool.map(square, SizedButBroken(), chunksize=2)
    assert not work.exists()


# -- a slow or blocking input ----------------------------------------------


@pytest.mark.parametrize("chunksize", [None, 1, 3])
@pytest.mark.parametrize("method", ["imap", "imap_unordered"])
def test_each_task_runs_before_the_input_gives_the_next(method, chunksize, work):
    """An input that gives its next item only once the last one's result came."""
    tasks = queue.Queue()
    with local.Pool(2, work_dir=work, polling_interval=0.05) as pool:
        results = getattr(pool, method)(square, fed_by(tasks), chunksize)
        seen = []
        for round_ in range(3):
            # A chunk is read whole, as multiprocessing reads it.
            for x in range(chunksize or 1):
                tasks.put(round_ * 10 + x)
            seen += sorted(results.next(GUARD) for _ in range(chunksize or 1))
        tasks.put(END)
        assert list(results) == []
    assert seen == [square(r * 10 + x) for r in range(3) for x in range(chunksize or 1)]


def release_all(tasks: queue.Queue) -> None:
    tasks.put(END)


def reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("pypoolparty-imap-reader")]


def run_until_blocked(pool, tasks: queue.Queue, asked: queue.Queue):
    """Start an imap whose input gave two items and now blocks; return it and its results."""
    results = pool.imap(square, fed_by(tasks, asked))
    for x in (3, 4):
        asked.get(timeout=GUARD)
        tasks.put(x)
    first = [results.next(GUARD), results.next(GUARD)]
    asked.get(timeout=GUARD)  # the input is blocked in tasks.get() now
    return results, first


def in_thread(action) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    thread.join(GUARD)
    return thread


@pytest.mark.parametrize("pool_kind", ["local", "slurm_array"])
def test_terminate_returns_while_the_input_blocks_and_nothing_is_submitted_after(
    pool_kind, dummy_queue, work
):
    dummy = dummy_queue(pool_kind)
    tasks, asked = queue.Queue(), queue.Queue()
    pool = dummy_queues.make_pool(pool_kind, 2, work_dir=work, polling_interval=0.05)
    before = reader_threads()
    try:
        results, first = run_until_blocked(pool, tasks, asked)
        assert first == [9, 16]
        assert not in_thread(pool.terminate).is_alive(), "terminate() waits for the input"
        submitted = (session_dirs(work), dummy.jobs() if dummy else None)
        # The input gives more once the pool is terminated: it is not submitted.
        tasks.put(5)
        tasks.put(END)
        for reader in set(reader_threads()) - set(before):
            reader.join(GUARD)
            assert not reader.is_alive()
        assert (session_dirs(work), dummy.jobs() if dummy else None) == submitted
        with pytest.raises(pypoolparty.Cancelled):
            results.next(GUARD)
    finally:
        release_all(tasks)


def test_leaving_a_with_block_does_not_wait_for_a_blocked_input(work):
    tasks, asked = queue.Queue(), queue.Queue()

    def use():
        with local.Pool(2, work_dir=work, polling_interval=0.05) as pool:
            _, first = run_until_blocked(pool, tasks, asked)
            assert first == [9, 16]

    try:
        assert not in_thread(use).is_alive(), "leaving the with block waits for the input"
    finally:
        release_all(tasks)


def test_the_interpreter_exits_while_an_imaps_input_blocks(tmp_path):
    script = textwrap.dedent(
        """
        import queue, sys
        from pypoolparty import local

        def blocking():
            yield 3
            queue.Queue().get()  # never returns

        pool = local.Pool(2, work_dir=sys.argv[1], polling_interval=0.05)
        results = pool.imap(abs, blocking())
        print(next(results), flush=True)
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=GUARD,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "3\n"
