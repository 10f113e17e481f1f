"""A progress display for one map: a live line on a terminal, plain lines in logs.

On a terminal the display is one line, redrawn in place with a carriage
return at most ten times a second. When standard error is not a terminal --
a batch job's log, a file, a pipe -- carriage returns would pile up into one
endless line, so the display writes a plain full line at the first update,
then at most every ``line_interval`` seconds, and a final one.

This is deliberately not tqdm: a map has several counts that matter at once
(done, running, pending, in error, held, resubmitted, failed), which a bar
with one counter does not show well, and the whole display is a few small
functions. pypoolparty keeps its dependencies to what the compute nodes need
as well, and a progress bar is not one of them.

The text uses only ASCII and no escape sequences: the rest of an old, longer
line is overwritten with spaces, which works on Windows consoles and
``TERM=dumb`` as well as on any xterm.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Iterator
from typing import Callable, TextIO

logger = logging.getLogger("pypoolparty")

PREFIX = "pypoolparty"
"""Starts every line, as in the verbose log lines, so a batch log shows whose it is."""

REDRAW_INTERVAL = 0.1
"""Least seconds between two redraws on a terminal: faster is flicker, not news."""

RATE_WINDOW = 60.0
"""Seconds of recent history the rate is measured over."""

RATE_MIN_CHANGES = 3
"""Changes of the done count the rate's window reaches back to, however old."""


@dataclasses.dataclass(frozen=True)
class Counts:
    """The numbers one progress line shows, all in tasks except ``resubmissions``.

    Parameters
    ----------
    done : int
        Tasks whose chunk has finished, including tasks that raised.
    running : int
        Tasks whose job runs.
    pending : int
        Tasks waiting: queued, or not yet submitted.
    in_error : int
        Tasks whose job is in an error state of the scheduler.
    held : int
        Tasks whose job is held.
    resubmissions : int
        Resubmissions so far, as the session counts them.
    failed_tasks : int
        Tasks that raised an exception.
    pending_reasons : tuple of (str, int)
        Pending tasks by the scheduler's reason their job waits (``Priority``,
        ``BeginTime``, ...), the most common first; tasks whose reason is not
        known are not in it.
    """

    done: int
    running: int
    pending: int
    in_error: int
    held: int
    resubmissions: int
    failed_tasks: int
    pending_reasons: tuple[tuple[str, int], ...] = ()


def format_duration(seconds: float | None) -> str:
    """A duration as a person reads it: ``45s``, ``12m03s``, ``2h13m``, ``3d04h``.

    Two units at most: on a progress line a duration is an estimate, and more
    digits would only flicker. ``None``, infinity and NaN are ``?``.

    Parameters
    ----------
    seconds : float or None
        The duration. Negative durations are ``0s``.

    Returns
    -------
    str
        The formatted duration.

    Examples
    --------
    >>> format_duration(45.2)
    '45s'
    >>> format_duration(723)
    '12m03s'
    >>> format_duration(2 * 3600 + 13 * 60 + 59)
    '2h13m'
    >>> format_duration(3 * 86400 + 4 * 3600)
    '3d04h'
    """
    if seconds is None or not math.isfinite(seconds):
        return "?"
    # Round once, at the start, so that 59.6 s reads as 1m00s and not as 60s.
    total = max(0, round(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h{minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d{hours:02d}h"


RATE_UNITS = {"s": 1, "min": 60, "h": 3600}
"""The units of a rate, finest first, and their seconds."""

RATE_UNIT_KEPT_DOWN_TO = 0.5
"""A rate's unit is kept while its number stays at least this (``0.6 tasks/s``)..."""

RATE_UNIT_KEPT_UP_TO = 120
"""... and, but for seconds, below this (``119 tasks/min``; 2 tasks/s switch to seconds)."""


def natural_rate_unit(tasks_per_second: float) -> str:
    """The coarsest unit -- second, minute, hour -- that makes the rate's number at least 1.

    Maps of long tasks finish a few tasks an hour; ``0.0 tasks/s`` would say
    nothing about them.

    Examples
    --------
    >>> natural_rate_unit(1.4), natural_rate_unit(0.9), natural_rate_unit(0.001)
    ('s', 'min', 'h')
    """
    for unit, seconds in RATE_UNITS.items():
        if tasks_per_second * seconds >= 1:
            return unit
    return "h"


def choose_rate_unit(tasks_per_second: float | None, previous: str | None) -> str | None:
    """The unit to show a rate in, given the unit it was shown in until now.

    A rate near a unit's border (1 task/s, 1 task/min) would flip between
    ``1.0 tasks/s`` and ``59.0 tasks/min`` from one redraw to the next; so the
    previous unit is kept while the number stays between
    :data:`RATE_UNIT_KEPT_DOWN_TO` and :data:`RATE_UNIT_KEPT_UP_TO`, and only
    a rate that leaves that band gets its natural unit
    (:func:`natural_rate_unit`).

    Parameters
    ----------
    tasks_per_second : float or None
        The rate; ``None``, zero or not finite: the previous unit stays.
    previous : str or None
        ``s``, ``min`` or ``h``; ``None`` before the first rate.

    Returns
    -------
    str or None
        The unit, ``None`` while there was never a rate to choose it by.

    Examples
    --------
    >>> choose_rate_unit(0.9, "s"), choose_rate_unit(0.9, None), choose_rate_unit(0.4, "s")
    ('s', 'min', 'min')
    """
    if tasks_per_second is None or not math.isfinite(tasks_per_second) or tasks_per_second <= 0:
        return previous
    if previous is not None:
        value = tasks_per_second * RATE_UNITS[previous]
        not_too_small = value >= RATE_UNIT_KEPT_DOWN_TO or previous == "h"
        not_too_large = value < RATE_UNIT_KEPT_UP_TO or previous == "s"
        if not_too_small and not_too_large:
            return previous
    return natural_rate_unit(tasks_per_second)


def format_rate(tasks_per_second: float | None, unit: str | None = None) -> str:
    """A rate in ``unit``; by default the one that makes its number at least 1.

    Parameters
    ----------
    tasks_per_second : float or None
        The rate; ``None`` while it is not known yet.
    unit : str, optional
        ``s``, ``min`` or ``h``; default :func:`natural_rate_unit` (a display
        that redraws keeps its unit with :func:`choose_rate_unit`).

    Returns
    -------
    str
        The formatted rate.

    Examples
    --------
    >>> format_rate(12.34)
    '12.3 tasks/s'
    >>> format_rate(0.05)
    '3.0 tasks/min'
    >>> format_rate(0.9, unit="s")
    '0.9 tasks/s'
    >>> format_rate(None)
    '? tasks/s'
    """
    if tasks_per_second is None or not math.isfinite(tasks_per_second):
        return f"? tasks/{unit or 's'}"
    if tasks_per_second <= 0:
        return f"0 tasks/{unit or 's'}"
    unit = unit or natural_rate_unit(tasks_per_second)
    return f"{_number(tasks_per_second * RATE_UNITS[unit])} tasks/{unit}"


def _number(value: float) -> str:
    # About three significant digits; more would only flicker.
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def estimate_remaining(total_tasks: int, done: int, tasks_per_second: float | None) -> float | None:
    """Seconds until every task is done at the current rate, or ``None`` if unknown.

    Parameters
    ----------
    total_tasks : int
        Tasks of the map.
    done : int
        Tasks done.
    tasks_per_second : float or None
        The current rate.

    Returns
    -------
    float or None
        ``0.0`` when nothing remains; ``None`` while the rate is unknown or zero.
    """
    remaining = max(0, total_tasks - done)
    if remaining == 0:
        return 0.0
    if tasks_per_second is None or not tasks_per_second > 0:
        return None
    return remaining / tasks_per_second


def format_line(
    counts: Counts,
    total_tasks: int,
    tasks_per_second: float | None,
    elapsed: float,
    with_elapsed: bool,
    rate_unit: str | None = None,
) -> str:
    """The text of one progress line.

    The estimate comes right after the done count, before the counts of the
    states: a terminal too narrow for the whole line cuts it at its end, and
    the estimate is what a person looks for. Running and pending are always
    shown; in error, held, resubmitted and failed only when not zero, to keep
    the line short in the usual case. Once every task is done, the estimate
    gives way to the time the map took. Pending tasks are followed by the
    scheduler's reasons, the :data:`MAX_SHOWN_REASONS` most common ones.

    Parameters
    ----------
    counts : Counts
        The numbers to show.
    total_tasks : int
        Tasks of the map.
    tasks_per_second : float or None
        The current rate; ``None`` while unknown.
    elapsed : float
        Seconds since the display started.
    with_elapsed : bool
        Append the elapsed time (for plain lines in a log, which have no other
        clock; a live line does not need it).
    rate_unit : str, optional
        The rate's unit (see :func:`format_rate`).

    Returns
    -------
    str
        One line, without a line break.

    Examples
    --------
    >>> format_line(Counts(12, 4, 80, 0, 0, 0, 0), 100, 0.5, 30.0, False)
    'pypoolparty 12/100 tasks done | ETA 2m56s | 30.0 tasks/min | 4 running | 80 pending'
    >>> counts = Counts(0, 0, 10, 0, 0, 0, 0, (("Priority", 6), ("BeginTime", 4)))
    >>> format_line(counts, 10, None, 5.0, False).split(" | ")[-1]
    '10 pending (6 Priority, 4 BeginTime)'
    """
    finished = counts.done >= total_tasks
    if finished:
        timing = f"took {format_duration(elapsed)}"
    else:
        remaining = estimate_remaining(total_tasks, counts.done, tasks_per_second)
        timing = f"ETA {format_duration(remaining)}"
    parts = [
        f"{PREFIX} {counts.done}/{total_tasks} tasks done",
        timing,
        format_rate(tasks_per_second, rate_unit),
        f"{counts.running} running",
        f"{counts.pending} pending{_reasons(counts.pending_reasons)}",
    ]
    for value, label in (
        (counts.in_error, "in error"),
        (counts.held, "held"),
        (counts.resubmissions, "resubmitted"),
        (counts.failed_tasks, "failed"),
    ):
        if value:
            parts.append(f"{value} {label}")
    if with_elapsed and not finished:
        parts.append(f"elapsed {format_duration(elapsed)}")
    return " | ".join(parts)


MAX_SHOWN_REASONS = 3
"""Pending reasons a progress line names; it counts the tasks of the others."""


def _reasons(pending_reasons: tuple[tuple[str, int], ...]) -> str:
    if not pending_reasons:
        return ""
    shown = [f"{count} {reason}" for reason, count in pending_reasons[:MAX_SHOWN_REASONS]]
    others = sum(count for _, count in pending_reasons[MAX_SHOWN_REASONS:])
    if others:
        shown.append(f"{others} other")
    return f" ({', '.join(shown)})"


def truncate(text: str, width: int) -> str:
    """``text`` cut to at most ``width`` characters (at least one is kept).

    Examples
    --------
    >>> truncate("pypoolparty 3/10 tasks done", 16)
    'pypoolparty 3/10'
    """
    return text[: max(1, width)]


def terminal_width(stream: TextIO) -> int:
    """Columns of the terminal ``stream`` writes to.

    :func:`shutil.get_terminal_size` asks about standard output, which may be
    redirected while standard error -- where progress goes -- is still the
    terminal; so ask ``stream`` itself first. ``COLUMNS`` wins, as it does
    for shutil.
    """
    if not os.environ.get("COLUMNS"):
        try:
            columns = os.get_terminal_size(stream.fileno()).columns
        except (AttributeError, OSError, ValueError):
            columns = 0
        if columns > 0:
            return columns
    return shutil.get_terminal_size().columns


class RateMeter:
    """Tasks done per second over a sliding window of recent history.

    The rate is the increase of the done count over the last ``window``
    seconds, divided by their length; until ``window`` seconds have passed,
    over the time since the first sample. When tasks finish in big chunks,
    minutes apart, a window of one minute would mostly see no change and say
    0 tasks/s; so the window also reaches back far enough to hold the last
    ``min_changes`` changes of the count, starting right after a change.

    Parameters
    ----------
    window : float
        Seconds of history the rate is measured over at least.
    min_changes : int
        Changes of the done count the window holds at least, if there were so many.
    """

    def __init__(self, window: float = RATE_WINDOW, min_changes: int = RATE_MIN_CHANGES) -> None:
        self.window = window
        self.min_changes = min_changes
        # (time, done) at the first sample and at every change of done. The
        # count is a step function, so these are enough to know it at any time.
        self._samples: collections.deque[tuple[float, int]] = collections.deque()

    def add(self, now: float, done: int) -> None:
        """Record that ``done`` tasks were done at time ``now``."""
        if not self._samples or done != self._samples[-1][1]:
            self._samples.append((now, done))
        self._forget(now)

    def rate(self, now: float) -> float | None:
        """Tasks per second at time ``now``; ``None`` before any time has passed."""
        if not self._samples:
            return None
        self._forget(now)
        samples = self._samples
        anchor = samples[max(0, len(samples) - (self.min_changes + 1))][0]
        start = max(samples[0][0], min(now - self.window, anchor))
        span = now - start
        if span <= 0:
            return None
        done_at_start = samples[0][1]
        for time_, done in samples:
            if time_ > start:
                break
            done_at_start = done
        return max(0, samples[-1][1] - done_at_start) / span

    def _forget(self, now: float) -> None:
        # Keep the last sample at or before the window's start (it tells the
        # count there) and the last min_changes + 1 samples; drop older ones.
        cutoff = now - self.window
        samples = self._samples
        while len(samples) > self.min_changes + 1 and samples[1][0] <= cutoff:
            samples.popleft()


class Progress:
    """The progress display of one map.

    Parameters
    ----------
    total_tasks : int
        Tasks of the map.
    stream : file-like, optional
        Where to write; default :data:`sys.stderr`.
    is_terminal : bool, optional
        Draw a live line (``True``) or write plain lines (``False``); default:
        whether ``stream`` is a terminal.
    clock : callable
        Seconds as a float, monotonic; replaceable for tests.
    line_interval : float
        Least seconds between two plain lines when not on a terminal.

    Notes
    -----
    The display never raises because of its stream: if writing fails (a
    closed standard error, a broken pipe), it goes quiet and the map goes on.
    On a terminal, call :meth:`clear` before writing anything else to the
    same terminal, so that the text does not land in the middle of the line.
    """

    def __init__(
        self,
        total_tasks: int,
        stream: TextIO | None = None,
        is_terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        line_interval: float = 60.0,
    ) -> None:
        self.total_tasks = total_tasks
        self.stream = sys.stderr if stream is None else stream
        self.is_terminal = _isatty(self.stream) if is_terminal is None else bool(is_terminal)
        self.clock = clock
        self.line_interval = line_interval
        self.started = clock()
        self._rate = RateMeter()
        self._rate_unit: str | None = None  # kept across redraws, see choose_rate_unit
        self._counts: Counts | None = None
        self._last_output: float | None = None  # time of the last redraw or plain line
        self._drawn_text = ""  # what the live line shows now
        self._drawn_done: int | None = None
        self._written_counts: Counts | None = None  # the counts of the last plain line
        self._closed = False
        self._broken = False

    def update(
        self,
        done: int,
        running: int,
        pending: int,
        in_error: int,
        held: int,
        resubmissions: int,
        failed_tasks: int,
        pending_reasons: tuple[tuple[str, int], ...] = (),
    ) -> None:
        """Show the current counts: tasks, except ``resubmissions`` (see :class:`Counts`).

        On a terminal the line is redrawn at most every 0.1 s, and always when
        the last task is done. Otherwise a plain line is written at the first
        update and then at most every ``line_interval`` seconds. Does nothing
        after :meth:`close`.
        """
        if self._closed:
            return
        now = self.clock()
        self._counts = Counts(
            done,
            running,
            pending,
            in_error,
            held,
            resubmissions,
            failed_tasks,
            tuple(pending_reasons),
        )
        self._rate.add(now, done)
        if self.is_terminal:
            just_finished = done >= self.total_tasks and self._drawn_done != done
            if just_finished or self._due(now, REDRAW_INTERVAL):
                self._draw(now)
        elif self._due(now, self.line_interval):
            self._write_line(now)

    def clear(self) -> None:
        """Blank the live line, so that other output starts at the line's beginning.

        The next :meth:`update` draws the line again at once. Does nothing when
        not on a terminal, where every line already ends with a line break.
        """
        if self.is_terminal and self._drawn_text and not self._closed:
            self._write("\r" + " " * len(self._drawn_text) + "\r")
            self._drawn_text = ""
            self._drawn_done = None
            self._last_output = None

    def close(self) -> None:
        """Finish the display: end the live line, or write the final plain line.

        Writes nothing if there was no update. Calling it again does nothing.
        """
        if self._closed:
            return
        self._closed = True
        if self._counts is None:
            return
        now = self.clock()
        if self.is_terminal:
            self._draw(now)
            self._write("\n")
        elif self._counts != self._written_counts:
            self._write_line(now)

    def _due(self, now: float, interval: float) -> bool:
        return self._last_output is None or now - self._last_output >= interval

    def _text(self, now: float, with_elapsed: bool) -> str:
        assert self._counts is not None
        rate = self._rate.rate(now)
        self._rate_unit = choose_rate_unit(rate, self._rate_unit)
        return format_line(
            self._counts,
            self.total_tasks,
            rate,
            now - self.started,
            with_elapsed=with_elapsed,
            rate_unit=self._rate_unit,
        )

    def _draw(self, now: float) -> None:
        assert self._counts is not None
        self._last_output = now
        # One column less than the terminal: writing into the last column
        # makes some terminals wrap, and the line would no longer be one line.
        text = truncate(self._text(now, with_elapsed=False), terminal_width(self.stream) - 1)
        if text == self._drawn_text:
            return
        # Spaces, not an escape sequence, blank the rest of a longer old line.
        padding = " " * max(0, len(self._drawn_text) - len(text))
        self._write("\r" + text + padding)
        self._drawn_text = text
        self._drawn_done = self._counts.done

    def _write_line(self, now: float) -> None:
        self._last_output = now
        self._written_counts = self._counts
        self._write(self._text(now, with_elapsed=True) + "\n")

    def _write(self, text: str) -> None:
        if self._broken:
            return
        try:
            self.stream.write(text)
            # A line without a line break stays in the buffer otherwise.
            self.stream.flush()
        except (OSError, ValueError):
            self._broken = True


def _isatty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


@contextlib.contextmanager
def shown(total_tasks: int, verbose: bool) -> Iterator[Progress | None]:
    """The display of one map while the ``with`` block runs, if ``verbose``.

    With ``verbose``, yields a :class:`Progress` on standard error and, until
    the block ends, also logs pypoolparty's records there, each on a line of
    its own (the live line is cleared first). The display is closed at the
    end of the block. Without, yields ``None`` and changes nothing.

    Parameters
    ----------
    total_tasks : int
        Tasks of the map.
    verbose : bool
        Show anything at all.
    """
    if not verbose:
        yield None
        return
    display = Progress(total_tasks)
    handler = _LineClearingHandler(display)
    handler.setFormatter(logging.Formatter(f"{PREFIX} %(asctime)s %(message)s", "%H:%M:%S"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        try:
            yield display
        finally:
            display.close()
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)


def announce(message: str, verbose: bool) -> None:
    """Say ``message`` on standard error as one line, verbose or not.

    For what a user must hear of even without ``verbose`` (a map reusing
    finished work, where the tasks' output files went). While a map's
    display is shown (:func:`shown`), it is a log record like the others, so
    it gets their form and does not land in the middle of the progress line;
    otherwise (before or after the display, where pypoolparty's records go
    nowhere) it is written as it is without ``verbose``.
    """
    if verbose and any(isinstance(h, _LineClearingHandler) for h in logger.handlers):
        logger.info("%s", message)
        return
    try:
        sys.stderr.write(f"{PREFIX}: {message}\n")
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # no or a closed standard error
        pass


class _LineClearingHandler(logging.StreamHandler):
    """Writes log records on a line of their own, not after the progress line."""

    def __init__(self, display: Progress) -> None:
        super().__init__()
        self.display = display

    def emit(self, record: logging.LogRecord) -> None:
        self.display.clear()
        super().emit(record)
