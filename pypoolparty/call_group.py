"""Many calls run as one map, each with a :class:`concurrent.futures.Future` of its own.

The Executor and the joblib backend hand out one Future per call, but the
scheduler should see one submission (one job array) for many calls. A
*call group* is that bridge: its calls -- each a callable without arguments
(a :func:`functools.partial`, a joblib batch) -- become the tasks of one
``pool.map`` whose function is ``operator.methodcaller("__call__")``, a
callable of the standard library, so the worker needs nothing but what the
calls themselves import. Each chunk's results resolve their Futures as soon
as the session archives the chunk. A Future is *running* once its job has
left the queue, and until then :meth:`CallFuture.cancel` takes it back, and
its job out of the queue once every call of the job was taken back (see
:mod:`pypoolparty.withdrawal`).
"""

from __future__ import annotations

import concurrent.futures
import copy
import dataclasses
import logging
import operator
from typing import Any, Callable

from .background import Background
from .withdrawal import Withdrawals

logger = logging.getLogger("pypoolparty")

CALL = operator.methodcaller("__call__")
"""The map's function: calls its task."""


class CallFuture(concurrent.futures.Future):
    """A Future for one call of a call group.

    Until its call is part of a map it cancels as any Future does; after
    that, :meth:`cancel` succeeds only while its job waits in the queue.
    """

    def __init__(self) -> None:
        super().__init__()
        self._withdrawals: Withdrawals | None = None
        self._itask = -1

    def cancel(self) -> bool:
        """Cancel the call if its job has not started; return whether it is cancelled."""
        withdrawals = self._withdrawals
        if withdrawals is None:
            return super().cancel()
        return withdrawals.withdraw(self._itask, super().cancel)


def start(
    pool,
    calls: list[Callable[[], Any]],
    futures: list[CallFuture],
    chunksize: int | None = None,
) -> None:
    """Run ``calls`` as one map of ``pool`` in a background thread of ``pool``.

    ``futures[i]`` receives the outcome of ``calls[i]``. A call whose Future
    was cancelled before this is not run. An error of the whole map
    (a scheduler failure, an interruption) is set on every Future still open.
    """
    kept = [(f, c) for f, c in zip(futures, calls) if not f.cancelled()]
    if not kept:
        return
    group = _Group([f for f, _ in kept])
    group_calls = [c for _, c in kept]
    pool._background.start(lambda: group.run(pool, group_calls, chunksize))


class _Group:
    def __init__(self, futures: list[CallFuture]) -> None:
        self.futures = futures
        self.withdrawals = Withdrawals(on_started=self._started)
        for itask, future in enumerate(futures):
            future._itask = itask
            future._withdrawals = self.withdrawals

    def run(self, pool, calls: list, chunksize: int | None) -> None:
        try:
            pool._run(
                CALL,
                calls,
                chunksize,
                star=False,
                on_chunk_done=self._deliver,
                withdrawals=self.withdrawals,
            )
        except BaseException as error:  # a background thread must not raise
            self._fail_open_futures(error)

    def _started(self, start: int, stop: int) -> None:
        for future in self.futures[start:stop]:
            if not future.done() and not future.running():
                future.set_running_or_notify_cancel()

    def _deliver(self, first_itask: int, values: list[tuple[bool, Any]]) -> None:
        with self.withdrawals.lock:
            for offset, (ok, value) in enumerate(values):
                _resolve(self.futures[first_itask + offset], ok, value)

    def _fail_open_futures(self, error: BaseException) -> None:
        with self.withdrawals.lock:
            for future in self.futures:
                if not future.done():
                    _resolve(future, False, error)


def _resolve(future: CallFuture, ok: bool, value: Any) -> None:
    """Set the outcome unless the Future was cancelled (its result is dropped)."""
    if future.done():
        return
    if not future.running() and not future.set_running_or_notify_cancel():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def derived_pool(pool, num_simultaneously_running_tasks: int | None | type = ...) -> Any:
    """A shallow copy of ``pool`` whose maps can be stopped on their own.

    The copy has a :class:`~pypoolparty.background.Background` of its own, so
    stopping it (an Executor's end, an aborted joblib call) cancels its maps'
    jobs but leaves the pool and its other maps alone, and may run its maps
    with another limit on simultaneously running tasks.
    """
    derived = copy.copy(pool)
    derived._background = Background()
    # Only the user's own pool warns when dropped unclosed, not this copy.
    derived._warn_if_unclosed = False
    if num_simultaneously_running_tasks is not ...:
        derived.settings = dataclasses.replace(
            pool.settings, num_simultaneously_running_tasks=num_simultaneously_running_tasks
        )
    return derived
