"""``imap`` and ``imap_unordered``: results while the map still runs.

The input is read lazily, in a thread of its own, a chunk at a time as
:mod:`multiprocessing` reads it (``chunksize`` tasks, or one without it).
The tasks read are sent as *windows*, each run as a map of its own (so each
is resumed on its own after an interruption): a window is sent once it holds
``read_ahead`` tasks, once the input has ended, or once its first task has
waited ``batch_window`` seconds, whichever comes first, so a slow or blocking
input still has its first tasks run. No more is read while two windows of
tasks wait to be consumed, which bounds both the input read ahead and the
results held in memory.

The reading thread is the only one that calls the user's iterable, and it is
a daemon thread that :meth:`pypoolparty.pool.Pool.terminate` does not wait
for: an input blocked for ever cannot hold up ``terminate``, a ``with``
block's end or the interpreter's exit. Windows are sent by another thread,
which the pool does wait for, and which sends nothing once the pool is
terminated.

Each chunk's results are handed over as soon as the session archives them:
``imap`` yields them in input order, ``imap_unordered`` as chunks finish. As
in :mod:`multiprocessing`, a task that raised raises at its place in the
iteration (which can go on), and an exception of the input iterable drops the
chunk it interrupted and is raised after the results of the whole chunks read
before it -- in ``imap_unordered`` too, after all of them -- once every
window's map has ended.
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
"""Seconds between two looks at the pool's stop event while a thread waits."""


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
        chunksize: int | None = None,
        batch_window: float = 1.0,
    ) -> None:
        self._run_window = run_window
        self._ordered = ordered
        self._background = background
        self._batch_window = batch_window
        # The input is read as multiprocessing reads it: a chunk at a time.
        self._read_size = chunksize or 1
        self._window_size = -(-read_ahead // self._read_size) * self._read_size
        self._condition = threading.Condition()
        self._by_position: dict[int, tuple[bool, Any]] = {}
        self._arrived: collections.deque[tuple[bool, Any]] = collections.deque()
        self._consumed = 0
        self._length: int | None = None
        self._fatal: tuple[int, BaseException] | None = None
        self._finished = False
        # Between the reader and the sender (under ``_condition``):
        self._num_read = 0
        self._unsent: list = []
        self._unsent_since = 0.0
        self._input_ended = False
        self._input_error: BaseException | None = None
        self._num_windows_running = 0
        iterator = iter(iterable)
        reader = threading.Thread(target=self._read, args=(iterator,), daemon=True)
        reader.name = f"pypoolparty-imap-reader-{reader.name}"
        reader.start()
        background.start(self._send)

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

    # -- the reader: the only thread that calls the user's iterable ----------

    def _read(self, iterator: Iterator) -> None:
        """Read the input a chunk at a time into ``_unsent``, until it ends.

        Runs in a daemon thread nobody waits for: the iterable may block for
        ever. What it reads once the pool is terminated is dropped.
        """
        try:
            while self._wait_for_room():
                chunk = list(itertools.islice(iterator, self._read_size))
                with self._condition:
                    if self._background.stop.is_set():
                        return
                    first = not self._unsent
                    if first:
                        self._unsent_since = time.monotonic()
                    self._unsent.extend(chunk)
                    self._num_read += len(chunk)
                    self._input_ended = len(chunk) < self._read_size
                    # Wake the sender only when it has something to decide.
                    if first or self._input_ended or len(self._unsent) >= self._window_size:
                        self._condition.notify_all()
                    if self._input_ended:
                        return
        except BaseException as error:  # the input's own, raised where it broke
            with self._condition:
                self._input_error = error
                self._input_ended = True
                self._condition.notify_all()

    def _wait_for_room(self) -> bool:
        """Wait until fewer than two windows of tasks wait to be consumed.

        Returns ``False`` if the pool was terminated meanwhile.
        """
        with self._condition:
            while self._num_read - self._consumed >= WINDOWS_AHEAD * self._window_size:
                if self._background.stop.is_set():
                    return False
                self._condition.wait(STOP_CHECK_INTERVAL)
        return not self._background.stop.is_set()

    # -- the sender: a thread of the pool's, never in the user's code ---------

    def _send(self) -> None:
        """Start a map for each window of tasks read, until the input ends."""
        position = 0
        try:
            while True:
                window = self._next_window()
                if window is None:
                    break
                self._start_window(position, window)
                position += len(window)
            if self._background.stop.is_set():
                self._fail(position, self._stopped_error())
                return
            self._end(position)
        except BaseException as error:  # the consumer must not wait for ever
            self._fail(position, error)

    def _next_window(self) -> list | None:
        """The next window of tasks to send; ``None`` once there is none or on stop."""
        with self._condition:
            while not self._background.stop.is_set():
                waited = time.monotonic() - self._unsent_since
                if len(self._unsent) >= self._window_size or (
                    self._unsent and (self._input_ended or waited >= self._batch_window)
                ):
                    window = self._unsent[: self._window_size]
                    del self._unsent[: self._window_size]
                    # Tasks left over of a full window start the next one now.
                    self._unsent_since = time.monotonic()
                    return window
                if self._input_ended:
                    return None
                timeout = STOP_CHECK_INTERVAL
                if self._unsent:
                    timeout = min(timeout, self._batch_window - waited)
                self._condition.wait(timeout)
        return None

    def _end(self, length: int) -> None:
        """Once every window's map has ended: end the iteration, or raise the input's error.

        Waiting for the maps means that when the user sees the end or the
        input's exception, nothing of this ``imap`` runs or waits any more.
        """
        with self._condition:
            while self._num_windows_running and not self._background.stop.is_set():
                self._condition.wait(STOP_CHECK_INTERVAL)
            error = self._input_error
        if self._background.stop.is_set():
            self._fail(length, self._stopped_error())
            return
        if error is not None:
            self._put(length, (False, error))
            length += 1
        with self._condition:
            self._length = length
            self._condition.notify_all()

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
            finally:
                with self._condition:
                    self._num_windows_running -= 1
                    self._condition.notify_all()

        with self._condition:
            self._num_windows_running += 1
        self._background.start(run)

    def _put(self, position: int, value: tuple[bool, Any]) -> None:
        with self._condition:
            if self._ordered:
                self._by_position[position] = value
            else:
                self._arrived.append(value)
            self._condition.notify_all()

    def _fail(self, position: int, error: BaseException) -> None:
        with self._condition:
            if self._fatal is None or position < self._fatal[0]:
                self._fatal = (position, error)
            self._condition.notify_all()

    def _stopped_error(self) -> BaseException:
        return Cancelled("the pool was terminated while imap was reading its input")
