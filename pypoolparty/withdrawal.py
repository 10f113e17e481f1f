"""Taking tasks back from a running map before their jobs start.

A :class:`concurrent.futures.Future` can be cancelled only while its call has
not started. For a map on a cluster that means: while its job waits in the
queue. The caller (an Executor's Future) and the session (which polls the
scheduler in another thread) meet in a :class:`Withdrawals`:

- the session publishes, once per poll, the tasks whose jobs have started
  (or ended), and takes the tasks the caller asked to withdraw;
- the caller asks to withdraw a task; it is refused once the session has
  published the task as started.

The session cancels the job of a chunk once every task of that chunk was
withdrawn, and counts the chunk as done; a result that still arrives for it
is discarded. A task whose chunk runs anyway (some of its tasks were not
withdrawn) runs, and its result is dropped by the caller.

Where jobs claim work (:mod:`pypoolparty.claims`), a job that finishes its
chunk claims the next one at once, without waiting for the session's next
poll. So the session also gives a ``claim`` function (:meth:`Withdrawals.claim_with`),
which the caller's withdrawal calls at once: the last task of a chunk to be
withdrawn claims the chunk for no job, or is refused if a job claimed it
first.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Callable


class Withdrawals:
    """Tasks the caller takes back, and tasks the session reports started.

    Parameters
    ----------
    on_started : callable, optional
        Called as ``on_started(start, stop)`` for each range of tasks the
        session reports started for the first time, with this object's lock
        held, so that it never runs between a refused and an accepted
        withdrawal of the same task.
    """

    def __init__(self, on_started: Callable[[int, int], None] | None = None) -> None:
        # Reentrant: on_started and the caller's cancel may run callbacks
        # that withdraw other tasks.
        self.lock = threading.RLock()
        self._on_started = on_started
        self._started: set[tuple[int, int]] = set()
        self._started_tasks: set[int] = set()
        self._requested: set[int] = set()
        self._claim: Callable[[int, set[int]], bool] | None = None

    def claim_with(self, claim: Callable[[int, set[int]], bool]) -> None:
        """Session side: ``claim(itask, withdrawn)`` claims the chunk of ``itask``
        for no job once ``withdrawn`` holds all its tasks, and returns False
        only if a job claimed that chunk first."""
        with self.lock:
            self._claim = claim

    def withdraw(self, itask: int, accept: Callable[[], bool] = lambda: True) -> bool:
        """Ask to take task ``itask`` back; ``True`` if it had not started.

        ``accept`` runs with the lock held once the task is known not to have
        started; its ``False`` refuses the withdrawal (a Future that already
        finished, say).
        """
        with self.lock:
            if itask in self._started_tasks:
                return False
            if self._claim is not None and not self._claim(itask, self._requested | {itask}):
                return False
            if not accept():
                return False
            self._requested.add(itask)
            return True

    def exchange(self, started: Iterable[tuple[int, int]]) -> set[int]:
        """Session side: note the task ranges whose jobs started; return the
        tasks withdrawn so far."""
        with self.lock:
            for start, stop in started:
                if (start, stop) in self._started:
                    continue
                self._started.add((start, stop))
                self._started_tasks.update(range(start, stop))
                if self._on_started is not None:
                    self._on_started(start, stop)
            return set(self._requested)
