"""One ``pypoolparty run``: what is left of a task list, run as a map, recorded.

A run is a sequence of maps of :func:`pypoolparty.shell` over the lines that
have not finished, each with ``keep_work_dir`` and ``reuse_results``, and each
announced in ``current.json`` (:mod:`.state`) before it starts. So whatever
stops the runner -- Ctrl-C, SIGUSR1, SIGTERM, SIGKILL, a lost login -- the
same command later calls the very same map (same commands, options and
chunking, hence the same fingerprint), which continues it: its finished tasks
come from its session directory, its unfinished ones run, and only then is
the outcome recorded and the map forgotten. No finished line runs twice.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
from collections.abc import Callable

from .. import chunking, cleaning, inspection
from ..shell_commands import CALL_NAME, run_commands
from ..work_dir import prepare_base
from . import parsing, state
from .state import CurrentMap, Outcome, RunDir


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """What ``pypoolparty run`` was asked for, checked by :mod:`.command_line`."""

    tasklist: str
    work_dir: str
    cwd: str
    make_pool: Callable[[], object]
    """Builds the chosen pool with its options (``keep_work_dir`` and
    ``reuse_results`` already set): called before anything is written."""

    timeout: float | None = None
    chunksize: int | None = None
    retry_failed: bool = False
    new: bool = False


@dataclasses.dataclass(frozen=True)
class Summary:
    """How a task list stands after a run."""

    tasks: list[parsing.Task]
    latest: dict[int, Outcome]
    run_now: int
    """Tasks this call ran (or took from an interrupted map)."""

    interrupted: bool = False
    error: str | None = None

    @property
    def finished(self) -> list[parsing.Task]:
        return [t for t in self.tasks if t.line in self.latest and self.latest[t.line].ok]

    @property
    def failed(self) -> list[parsing.Task]:
        return [t for t in self.tasks if t.line in self.latest and not self.latest[t.line].ok]

    @property
    def not_run(self) -> list[parsing.Task]:
        return [t for t in self.tasks if t.line not in self.latest]


def run(options: RunOptions, say: Callable[[str], None]) -> Summary:
    """Run what is left of ``options.tasklist``; see the module's docstring.

    Parameters
    ----------
    options : RunOptions
    say : callable
        Takes a line for the user (progress of the run itself).

    Returns
    -------
    Summary

    Raises
    ------
    TaskListError
        If the task list cannot be read or is empty; nothing was started.
    RunMismatch
        If the work_dir holds the run of another list or directory.
    RunnerBusy
        If another live runner runs this work_dir's task list.
    pypoolparty.BadInput
        If a pool option is wrong; nothing was submitted.
    """
    tasks = parsing.read_tasklist(options.tasklist)
    pool = options.make_pool()
    prepare_base(options.work_dir)
    run_dir = RunDir(options.work_dir)
    # Leaving the pool's block terminates it: no job of this run outlives a
    # refusal below or an interruption.
    with pool:
        run_dir.acquire_lock()
        try:
            if options.new and run_dir.exists():
                run_dir.forget()
            run_dir.start_or_check(
                os.path.abspath(options.tasklist),
                parsing.fingerprint(tasks),
                len(tasks),
                options.cwd,
            )
            return _run_what_is_left(run_dir, tasks, options, pool, say)
        finally:
            run_dir.release_lock()


def _run_what_is_left(run_dir: RunDir, tasks, options: RunOptions, pool, say) -> Summary:
    by_line = {task.line: task for task in tasks}
    run_now = 0
    try:
        with _signals_interrupt():
            for current in _maps(run_dir, tasks, options, pool, say):
                run_now += len(current.lines)
                _run_map(run_dir, current, by_line, options, pool)
    except KeyboardInterrupt:
        return _summary(run_dir, tasks, run_now, interrupted=True)
    return _summary(run_dir, tasks, run_now)


def _maps(run_dir: RunDir, tasks, options: RunOptions, pool, say):
    """The interrupted map first, if any; then one of what is left."""
    latest_before = state.latest_outcomes(run_dir.outcomes())
    current = run_dir.current_map()
    if current is not None:
        if options.timeout != current.timeout:
            say(
                f"continuing the interrupted map of {len(current.lines)} task(s) with its "
                f"timeout ({_seconds(current.timeout)}), not {_seconds(options.timeout)}"
            )
        else:
            say(f"continuing the interrupted map of {len(current.lines)} task(s)")
        yield current
    in_current = set(current.lines) if current else set()
    left = [
        t.line
        for t in tasks
        if t.line not in in_current
        and (t.line not in latest_before or (options.retry_failed and not latest_before[t.line].ok))
    ]
    if not left:
        return
    skipped = len(tasks) - len(left) - len(in_current)
    if skipped:
        say(f"{skipped} task(s) recorded before in this work_dir are skipped; running {len(left)}")
    current = CurrentMap(left, options.timeout, _chunksize(options, pool, len(left)))
    run_dir.begin_map(current)
    yield current


def _chunksize(options: RunOptions, pool, num_tasks: int) -> int:
    """The chunking, fixed before the map so that a continuation has the same fingerprint."""
    if options.chunksize is not None:
        return options.chunksize
    parallelism = pool.num_simultaneously_running_tasks
    if parallelism is None:
        try:
            parallelism = pool._make_scheduler().capacity()
        except Exception:  # only a hint, as for a map
            parallelism = None
    return chunking.default_chunksize(num_tasks, parallelism)


def _run_map(run_dir: RunDir, current: CurrentMap, by_line, options: RunOptions, pool) -> None:
    commands = [by_line[line].command for line in current.lines]
    results = run_commands(
        pool, commands, timeout=current.timeout, cwd=options.cwd, chunksize=current.chunksize
    )
    run_dir.record(list(zip(current.lines, results)))
    run_dir.end_map()
    _remove_finished_maps(options.work_dir)


def _remove_finished_maps(work_dir: str) -> None:
    """The kept session directories of recorded maps: their outcomes are in the run's record."""
    try:
        sessions = inspection.find_sessions(work_dir)
    except inspection.NotAWorkDir:
        return
    ours = [s for s in sessions if s.function.startswith(CALL_NAME + "(")]
    for verdict in cleaning.survey(ours, unfinished=False):
        if verdict.kind == cleaning.FINISHED and verdict.removable:
            cleaning.remove(verdict)


def _summary(run_dir: RunDir, tasks, run_now: int, interrupted: bool = False) -> Summary:
    latest = state.latest_outcomes(run_dir.outcomes())
    run_dir.write_lists(tasks, latest)
    return Summary(tasks, latest, run_now, interrupted=interrupted)


class _signals_interrupt:
    """SIGUSR1 and SIGTERM to the runner act as Ctrl-C: the map cancels its
    jobs and keeps its work for the next run (PyTaskFarmer's SIGUSR1)."""

    SIGNALS = ("SIGUSR1", "SIGTERM")

    def __enter__(self):
        self.previous = {}
        for name in self.SIGNALS:
            signum = getattr(signal, name)
            self.previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)
        return False

    @staticmethod
    def _handle(signum, frame):
        print(f"pypoolparty run: {signal.Signals(signum).name} received", file=sys.stderr)
        raise KeyboardInterrupt


def _seconds(timeout: float | None) -> str:
    return "none" if timeout is None else f"{timeout:g} s"
