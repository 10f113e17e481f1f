"""A :class:`concurrent.futures.Executor` whose calls run as jobs of a pool.

``pool.executor()`` (or ``Executor(pool)``) behaves as
:class:`concurrent.futures.ProcessPoolExecutor`: ``submit`` returns a
:class:`concurrent.futures.Future` that works with ``as_completed``,
``wait``, ``add_done_callback``, ``result(timeout)``, ``exception()`` and
``cancel()``; ``map`` follows :meth:`concurrent.futures.Executor.map`;
``shutdown`` and ``with`` end it.

The scheduler should not see one job per ``submit``: calls submitted close
together are collected and run as one map (one job array, chunked as any
map). A collection is sent once no call came for ``QUIET_PERIOD`` seconds, or
once its first call has waited ``batch_window`` seconds (the pool's polling
interval unless told otherwise), whichever comes first; a lone call waits at
most ``QUIET_PERIOD``.
"""

from __future__ import annotations

import concurrent.futures
import functools
import threading
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import Any, Callable

from . import call_group
from .call_group import CallFuture
from .checks import non_negative_number
from .errors import Terminated

QUIET_PERIOD = 0.05
"""Seconds without a new ``submit`` after which the collected calls are sent."""


class Executor(concurrent.futures.Executor):
    """Run calls as jobs of ``pool``, with the interface of ``concurrent.futures``.

    Parameters
    ----------
    pool : pypoolparty.pool.Pool
        Any pool: local, SLURM, Sun Grid Engine, HTCondor. Its options (work_dir,
        resources, resubmissions, ...) apply to every call.
    batch_window : float, optional
        Longest time in seconds the first of several calls submitted in a row
        waits for more before they are sent as one map. Default: the pool's
        ``polling_interval``.

    Raises
    ------
    pypoolparty.BadInput
        If ``batch_window`` is not a number >= 0 (a ValueError).
    """

    def __init__(self, pool, *, batch_window: float | None = None) -> None:
        if batch_window is None:
            batch_window = pool.settings.polling_interval
        self._pool = call_group.derived_pool(pool)
        self._batch_window = non_negative_number("batch_window", batch_window)
        self._condition = threading.Condition()
        self._buffer: list[tuple[CallFuture, Callable[[], Any]]] = []
        self._last_submit = 0.0
        self._collecting = False
        self._shutdown = False
        self._open: set[CallFuture] = set()
        self.num_maps = 0
        """How many maps (scheduler submissions of calls) this executor started."""
        # Jobs of an executor nobody holds any more must not stay queued.
        weakref.finalize(self, self._pool._background.terminate)

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        """Schedule ``fn(*args, **kwargs)``; return its Future at once.

        Raises
        ------
        RuntimeError
            After :meth:`shutdown`.
        """
        future = CallFuture()
        call = functools.partial(fn, *args, **kwargs)
        with self._condition:
            self._check_open()
            self._track(future)
            self._buffer.append((future, call))
            self._last_submit = time.monotonic()
            if not self._collecting:
                self._collecting = True
                self._pool._background.start(self._collect)
            self._condition.notify_all()
        return future

    def map(
        self,
        fn: Callable,
        *iterables: Iterable,
        timeout: float | None = None,
        chunksize: int = 1,
    ) -> Iterator:
        """Like :meth:`concurrent.futures.Executor.map`: results in order.

        The calls run as one map of their own. ``chunksize=1`` (the default)
        lets the pool choose how many calls each job runs; a larger value
        fixes it. ``timeout`` counts from this call: a result not there by
        then raises :class:`TimeoutError`. Leaving the iteration early
        cancels the calls whose jobs have not started.

        Raises
        ------
        ValueError
            If ``chunksize`` is smaller than 1.
        RuntimeError
            After :meth:`shutdown`.
        """
        if chunksize < 1:
            raise ValueError("chunksize must be >= 1.")
        end_time = None if timeout is None else timeout + time.monotonic()
        calls = [functools.partial(fn, *args) for args in zip(*iterables)]
        futures = [CallFuture() for _ in calls]
        with self._condition:
            self._check_open()
            for future in futures:
                self._track(future)
            if calls:
                self.num_maps += 1
                call_group.start(self._pool, calls, futures, chunksize if chunksize > 1 else None)
        return _results_in_order(futures, end_time)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Accept no more calls; see :meth:`concurrent.futures.Executor.shutdown`.

        With ``cancel_futures``, every call whose job has not started is
        cancelled (its job removed from the queue). With ``wait``, return
        once every other call has ended.
        """
        with self._condition:
            self._shutdown = True
            self._condition.notify_all()
            open_futures = list(self._open)
        if cancel_futures:
            for future in open_futures:
                future.cancel()
        if wait:
            self._pool._background.join()

    def __exit__(self, exc_type, exc_value, traceback) -> bool:
        """Leave the ``with`` block: wait for every call, as the standard
        executors do -- unless Ctrl-C (or SIGTERM) ends it: then every job is
        cancelled at once, as the user wants to stop, not to wait."""
        if isinstance(exc_value, (KeyboardInterrupt, Terminated)):
            self._terminate()
            return False
        return super().__exit__(exc_type, exc_value, traceback)

    def _terminate(self) -> None:
        """Accept no more calls and cancel the jobs of every call not ended;
        return once they are cancelled. Calls not ended raise
        :class:`pypoolparty.Cancelled`; the work_dir keeps what they did."""
        with self._condition:
            self._shutdown = True
            self._condition.notify_all()
        self._pool._background.terminate()

    # -- helpers -------------------------------------------------------------

    def _check_open(self) -> None:
        if self._shutdown:
            raise RuntimeError("cannot schedule new futures after shutdown")

    def _track(self, future: CallFuture) -> None:
        self._open.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: concurrent.futures.Future) -> None:
        with self._condition:
            self._open.discard(future)

    def _collect(self) -> None:
        """Wait while calls keep coming (up to the batch window), then send them."""
        with self._condition:
            while True:
                first = time.monotonic()
                while self._buffer:
                    now = time.monotonic()
                    quiet_until = self._last_submit + min(QUIET_PERIOD, self._batch_window)
                    until = min(first + self._batch_window, quiet_until)
                    if now >= until or self._shutdown:
                        break
                    self._condition.wait(until - now)
                batch, self._buffer = self._buffer, []
                if not batch:
                    self._collecting = False
                    return
                self.num_maps += 1
                call_group.start(self._pool, [c for _, c in batch], [f for f, _ in batch])


def _results_in_order(futures: list[concurrent.futures.Future], end_time: float | None):
    """The generator ``Executor.map`` returns (as the standard library's)."""
    try:
        futures.reverse()
        while futures:
            future = futures.pop()
            try:
                if end_time is None:
                    yield future.result()
                else:
                    yield future.result(end_time - time.monotonic())
            finally:
                future.cancel()
    finally:
        for future in futures:
            future.cancel()
