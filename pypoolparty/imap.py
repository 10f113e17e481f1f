"""``imap`` and ``imap_unordered``: results while the map still runs.

The input is read lazily, a *window* of ``read_ahead`` tasks at a time, in a
background thread; each window runs as a map of its own (so each is resumed
on its own after an interruption). A new window is read only while fewer than
two windows of tasks are waiting to be consumed, which bounds both the input
read ahead and the results held in memory.

Each chunk's results are handed over as soon as the session archives them:
``imap`` yields them in input order, ``imap_unordered`` as chunks finish. As
in :mod:`multiprocessing`, a task that raised raises at its place in the
iteration (which can go on), and an exception of the input iterable is
raised after the results of the tasks read before it.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, Callable

from .background import Background
from .errors import Cancelled

DEFAULT_READ_AHEAD = 10_000
"""Tasks per window when ``imap`` is not told otherwise."""

WINDOWS_AHEAD = 2
STOP_CHECK_INTERVAL = 0.2
"""Seconds between two looks at the pool's stop event while the reader waits."""


class IMapIterator(Iterator):
    """The iterator ``imap`` and ``imap_unordered`` return.

    ``next(timeout)`` waits at most ``timeout`` seconds for the next result
    and raises :class:`multiprocessing.TimeoutError` if it is not there, as
    :class:`multiprocessing.pool.IMapIterator` does.
    """

    def __init__(
        self,
        run_window: Callable[[list, Callable[[int, list], None]], None],
        iterable: Iterable,
        ordered: bool,
        read_ahead: int,
        background: Background,
    ) -> None:
        self._run_window = run_window
        self._ordered = ordered
        self._read_ahead = read_ahead
        self._background = background
        self._condition = threading.Condition()
        self._by_position: dict[int, tuple[bool, Any]] = {}
        self._arrived: collections.deque[tuple[bool, Any]] = collections.deque()
        self._consumed = 0
        self._length: int | None = None
        self._fatal: tuple[int, BaseException] | None = None
        self._finished = False
        iterator = iter(iterable)
        background.start(lambda: self._read(iterator))

    # -- the consumer's side ------------------------------------------------

    def __iter__(self) -> IMapIterator:
        return self

    def __next__(self) -> Any:
        return self.next()

    def next(self, timeout: float | None = None) -> Any:
        """The next result; raise the task's exception if it raised."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            while True:
                item = self._take()
                if item is not None:
                    break
                if self._finished or self._exhausted():
                    self._finished = True
                    raise StopIteration
                if self._fatal is not None and (
                    not self._ordered or self._fatal[0] <= self._consumed
                ):
                    self._finished = True
                    raise self._fatal[1]
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise multiprocessing.TimeoutError(f"no result within {timeout} s")
                self._condition.wait(remaining)
            self._consumed += 1
            self._condition.notify_all()
        ok, value = item
        if ok:
            return value
        raise value

    def _take(self) -> tuple[bool, Any] | None:
        if self._ordered:
            return self._by_position.pop(self._consumed, None)
        return self._arrived.popleft() if self._arrived else None

    def _exhausted(self) -> bool:
        return self._length is not None and self._consumed >= self._length

    # -- the producers' side ----------------------------------------------

    def _read(self, iterator: Iterator) -> None:
        """Read windows of tasks and start a map for each, until the input ends."""
        position = 0
        try:
            while self._wait_for_room(position):
                window, error = _read_window(iterator, self._read_ahead)
                if window:
                    self._start_window(position, window)
                    position += len(window)
                if error is not None:
                    self._put(position, (False, error))
                    self._end_input(position + 1)
                    return
                if len(window) < self._read_ahead:
                    self._end_input(position)
                    return
            self._fail(position, self._stopped_error())
        except BaseException as error:  # the consumer must not wait for ever
            self._fail(position, error)

    def _wait_for_room(self, position: int) -> bool:
        """Wait until fewer than two windows of tasks wait to be consumed.

        Returns ``False`` if the pool was terminated meanwhile.
        """
        with self._condition:
            while position - self._consumed >= WINDOWS_AHEAD * self._read_ahead:
                if self._background.stop.is_set():
                    return False
                self._condition.wait(STOP_CHECK_INTERVAL)
        return not self._background.stop.is_set()

    def _start_window(self, start: int, tasks: list) -> None:
        delivered: set[int] = set()

        def hand_over(first_itask: int, values: list[tuple[bool, Any]]) -> None:
            for offset, value in enumerate(values):
                delivered.add(first_itask + offset)
                self._put(start + first_itask + offset, value)

        def run() -> None:
            try:
                self._run_window(tasks, hand_over)
            except BaseException as error:
                # A task that raised was handed over with its chunk already;
                # anything else ends the iteration where results go missing.
                missing = [i for i in range(len(tasks)) if i not in delivered]
                if missing:
                    self._fail(start + missing[0], error)

        self._background.start(run)

    def _put(self, position: int, value: tuple[bool, Any]) -> None:
        with self._condition:
            if self._ordered:
                self._by_position[position] = value
            else:
                self._arrived.append(value)
            self._condition.notify_all()

    def _end_input(self, length: int) -> None:
        with self._condition:
            self._length = length
            self._condition.notify_all()

    def _fail(self, position: int, error: BaseException) -> None:
        with self._condition:
            if self._fatal is None or position < self._fatal[0]:
                self._fatal = (position, error)
            self._condition.notify_all()

    def _stopped_error(self) -> BaseException:
        return Cancelled("the pool was terminated while imap was reading its input")


def _read_window(iterator: Iterator, size: int) -> tuple[list, BaseException | None]:
    """Up to ``size`` tasks, and the exception that ended the input early, if any."""
    window: list = []
    try:
        window.extend(itertools.islice(iterator, size))
    except Exception as error:
        return window, error
    return window, None
