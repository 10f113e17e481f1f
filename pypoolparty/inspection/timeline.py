"""Where and when each task ran, laid out as a Chrome trace for ui.perfetto.dev.

The trace has one group (a Chrome "process") per compute host and, in it,
one track (a "thread") per process slot: each worker process gets the lowest
slot of its host free when it starts, and keeps it until its last slice ends;
the slot is then free for another worker process. On a track, each chunk a
worker ran is a slice, and each of its tasks a slice nested under it, named
by its task index (and, for the map of a task-list run, its line number);
failed tasks are marked. Chunks a process runs one after the other (a job
that claims several) are consecutive slices on its track.

A task-list run (``pypoolparty run``) records each task's host, worker
process and times when its map ends (:mod:`pypoolparty.tasklist.state`) and
then removes the map's directory: those tasks are laid out from that record,
under a slice per worker process, and the tasks of a map still in progress
from its directory.

Memory stays proportional to the number of chunks and worker processes: the
outcomes (and the task-list record) are read twice, one at a time, first for
the layout and then for the task slices, which are written out as they come.
"""

from __future__ import annotations

import dataclasses
import heapq
import os
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from .. import archive, shell_commands, work_dir
from ..event_log import first_event_time
from ..outcome import failed_tasks, load_outcome
from ..tasklist.state import RunDir
from ..work_dir import SessionInfo
from .outcomes import unfolded_outcomes


class ChunkRun(NamedTuple):
    """One chunk run by a worker: where, when, and how it went.

    A tuple, as a map may have 100,000 of them in memory at once.
    """

    ichunk: int
    host: str
    worker_pid: int | None
    start: float
    end: float
    num_tasks: int
    num_failed_tasks: int


class TaskSlice(NamedTuple):
    """One task a worker ran: when, and whether it failed (with a word on why)."""

    itask: int
    start: float
    end: float
    failure: str | None


class WorkerRun(NamedTuple):
    """The recorded tasks of a task-list run that one worker process ran."""

    host: str
    worker_pid: int | None
    start: float
    end: float
    num_tasks: int
    num_failed_tasks: int


def chunk_runs(session: SessionInfo) -> Iterator[ChunkRun]:
    """Every chunk run whose outcome is in the work_dir, one outcome at a time.

    A chunk run twice (it had failed tasks and the map was called again)
    yields both runs.
    """
    for ichunk, outcome in _outcomes(session):
        run = _chunk_run(ichunk, outcome)
        if run is not None:
            yield run


def task_slices(session: SessionInfo) -> Iterator[tuple[tuple[int, float], list[TaskSlice]]]:
    """Per chunk run, ``((ichunk, start), its tasks)``, one outcome at a time."""
    # Only a map of shell commands has results worth opening (their exit status).
    of_commands = session.function.startswith(shell_commands.CALL_NAME + "(")
    for ichunk, outcome in _outcomes(session):
        run = _chunk_run(ichunk, outcome)
        if run is not None:
            yield (run.ichunk, run.start), _tasks_of(outcome, of_commands)


def _outcomes(session: SessionInfo) -> Iterator[tuple[int, dict]]:
    """(ichunk, outcome) from ``results.zip``, then those not folded yet."""
    seen: set[tuple[int, object]] = set()
    archived = archive.contents(session.dir.archive_path("results"), _is_outcome_name)
    for member, data in archived:
        outcome = load_outcome(data or b"")
        if outcome is not None:
            ichunk = _chunk_in_name(member.name)
            seen.add((ichunk, outcome.get("start")))
            yield ichunk, outcome
    for ichunk, outcome in unfolded_outcomes(session):
        # A duplicate outcome arrives after its chunk was folded; an outcome
        # may be folded while we read: skip what the archive already gave.
        if (ichunk, outcome.get("start")) not in seen:
            yield ichunk, outcome


def _is_outcome_name(name: str) -> bool:
    return bool(work_dir.OUTCOME_MEMBER.match(name) or work_dir.FAILED_OUTCOME_MEMBER.match(name))


def _chunk_in_name(name: str) -> int:
    match = work_dir.OUTCOME_MEMBER.match(name) or work_dir.FAILED_OUTCOME_MEMBER.match(name)
    return int(match.group(1))


def _is_time(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _chunk_run(ichunk: int, outcome: dict) -> ChunkRun | None:
    """The run an outcome records; None if it lacks its times."""
    start, end = outcome.get("start"), outcome.get("end")
    if not _is_time(start) or not _is_time(end):
        return None
    tasks = outcome.get("tasks") or []
    pid = outcome.get("pid")
    return ChunkRun(
        ichunk=int(outcome.get("ichunk", ichunk)),
        host=str(outcome.get("host", "?")),
        worker_pid=pid if isinstance(pid, int) else None,
        start=float(start),
        end=max(float(start), float(end)),
        num_tasks=len(tasks),
        num_failed_tasks=len(failed_tasks(outcome, 0)),
    )


def _tasks_of(outcome: dict, of_commands: bool) -> list[TaskSlice]:
    """The tasks of a chunk's outcome that have their times.

    ``of_commands``: the results are pickled ShellResult objects, whose
    exit status says whether the task failed.
    """
    slices = []
    for task in outcome.get("tasks") or ():
        start, end, itask = task.get("start"), task.get("end"), task.get("itask")
        if not (_is_time(start) and _is_time(end) and isinstance(itask, int)):
            continue
        if "error" in task:
            error = task["error"]
            failure = str(error.get("type", "error")).rpartition(".")[2]
        elif not of_commands:
            failure = None
        else:
            status = shell_commands.result_status(task.get("result") or b"")
            failure = None if status is None or status == (0, False) else _describe(*status)
        slices.append(TaskSlice(itask, float(start), max(float(start), float(end)), failure))
    return slices


def _describe(returncode: int, timed_out: bool) -> str:
    return "timed out" if timed_out else shell_commands.describe_returncode(returncode)


# -- the trace ------------------------------------------------------------------


@dataclasses.dataclass
class ChromeTrace:
    """Task runs laid out as a Chrome trace, the JSON that ui.perfetto.dev opens.

    Each host is a process, named by a ``process_name`` metadata event; each
    of its process slots a thread (``thread_name`` ``slot N``). Each chunk
    run (and each worker process of a recorded task-list run) is a complete
    event (``"ph": "X"``) on its worker's slot, its tasks complete events
    nested in it. Times are microseconds since ``origin``, the map's first
    logged event or earliest run. :meth:`events` makes the events one at a
    time, to be written out as they come; it counts the task slices in
    ``num_task_slices``.
    """

    session: SessionInfo | None
    runs: list[ChunkRun]
    workers: list[WorkerRun]
    origin: float
    lines: list[int] | None = None
    """The task list's line of each task of ``session``, for the map of a task-list run."""

    run_dir: RunDir | None = None
    """A task-list run whose recorded tasks are laid out as ``workers``."""

    num_task_slices: int = 0

    @property
    def num_runs(self) -> int:
        return len(self.runs)

    @property
    def hosts(self) -> list[str]:
        return sorted({run.host for run in self.runs} | {w.host for w in self.workers})

    @property
    def other_data(self) -> dict:
        """What the trace is of, for its ``otherData``."""
        data: dict = {"origin_unix_time": self.origin}
        if self.session is not None:
            data.update(
                session=self.session.name,
                function=self.session.function,
                num_tasks=self.session.num_tasks,
                num_chunks=self.session.num_chunks,
            )
        if self.run_dir is not None:
            data["tasklist"] = self.run_dir.description().get("tasklist")
        return data

    def events(self) -> Iterator[dict]:
        """The ``traceEvents``: hosts and slots by name, chunk runs, then tasks."""
        host_ids = {host: number for number, host in enumerate(self.hosts, start=1)}
        slots = _assign_slots([*self.runs, *self.workers])
        for host, pid in host_ids.items():
            yield _metadata_event("process_name", pid, 0, {"name": host})
        for host, slot in sorted({(host, slot) for (host, _), slot in slots.items()}):
            yield _metadata_event("thread_name", host_ids[host], slot, {"name": f"slot {slot}"})
        self.num_task_slices = 0
        for run in self.runs:
            place = host_ids[run.host], slots[_process_of(run)]
            yield self._chunk_event(run, *place)
        for worker in self.workers:
            place = host_ids[worker.host], slots[_process_of(worker)]
            yield self._worker_event(worker, *place)
        if self.session is not None:
            placed = {(run.ichunk, run.start): run for run in self.runs}
            for key, tasks in task_slices(self.session):
                run = placed.get(key)
                if run is None:
                    continue  # arrived after the layout was made
                place = host_ids[run.host], slots[_process_of(run)]
                for task in tasks:
                    self.num_task_slices += 1
                    name = f"task {task.itask}"
                    if self.lines is not None and task.itask < len(self.lines):
                        name = f"line {self.lines[task.itask]} (task {task.itask})"
                    yield self._task_event(name, task, run.ichunk, *place)
        if self.run_dir is not None:
            for attempt in self.run_dir.each_outcome():
                worker = _recorded_worker(attempt)
                if worker is None:
                    continue
                place = host_ids[worker.host], slots[_process_of(worker)]
                task = TaskSlice(attempt.line, worker.start, worker.end, _failure_of(attempt))
                self.num_task_slices += 1
                yield self._task_event(f"line {attempt.line}", task, None, *place, attempt.attempt)

    def to_dict(self) -> dict:
        """The whole trace in memory."""
        return {
            "traceEvents": list(self.events()),
            "displayTimeUnit": "ms",
            "otherData": self.other_data,
        }

    def _time(self, stamp: float) -> float:
        return round((stamp - self.origin) * 1e6, 3)

    def _span(self, start: float, end: float) -> dict:
        return {"ph": "X", "ts": self._time(start), "dur": round((end - start) * 1e6, 3)}

    def _run_event(self, name: str, kind: str, run, pid: int, slot: int, **args) -> dict:
        """A chunk run or a worker process (``run``): a slice on its slot."""
        return {
            "name": name,
            "cat": kind if run.num_failed_tasks == 0 else f"{kind},failed",
            **self._span(run.start, run.end),
            "pid": pid,
            "tid": slot,
            "args": {
                **args,
                "num_tasks": run.num_tasks,
                "failed_tasks": run.num_failed_tasks,
                "host": run.host,
                "worker_pid": run.worker_pid,
            },
        }

    def _chunk_event(self, run: ChunkRun, pid: int, slot: int) -> dict:
        session = self.session
        tasks = session.tasks_of(run.ichunk) if run.ichunk < session.num_chunks else range(0)
        return self._run_event(
            f"chunk {run.ichunk}",
            "chunk",
            run,
            pid,
            slot,
            ichunk=run.ichunk,
            tasks=f"{tasks.start}..{tasks.stop - 1}" if tasks else "",
        )

    def _worker_event(self, worker: WorkerRun, pid: int, slot: int) -> dict:
        return self._run_event(f"worker pid {worker.worker_pid}", "worker", worker, pid, slot)

    def _task_event(
        self,
        name: str,
        task: TaskSlice,
        ichunk: int | None,
        pid: int,
        slot: int,
        attempt: int | None = None,
    ) -> dict:
        args: dict = {"itask": task.itask} if ichunk is not None else {"line": task.itask}
        if ichunk is not None:
            args["ichunk"] = ichunk
        if attempt is not None:
            args["attempt"] = attempt
        event = {
            "name": name if task.failure is None else f"{name} FAILED",
            "cat": "task" if task.failure is None else "task,failed",
            **self._span(task.start, task.end),
            "pid": pid,
            "tid": slot,
            "args": args,
        }
        if task.failure is not None:
            args["failure"] = task.failure
            event["cname"] = "terrible"  # red, where the viewer honours Chrome's colour names
        return event


def chrome_trace(session: SessionInfo, runs: Iterable[ChunkRun]) -> ChromeTrace:
    """Lay out ``runs`` (see :func:`chunk_runs`) of ``session`` and their tasks as a Chrome trace.

    Parameters
    ----------
    session : SessionInfo
        The map the runs belong to.
    runs : iterable of ChunkRun
        Read once; the tasks are read from ``session`` when the events are made.

    Returns
    -------
    ChromeTrace
    """
    runs = list(runs)
    starts = [run.start for run in runs]
    return ChromeTrace(session, runs, [], _trace_origin(session, starts))


def tasklist_trace(run_dir: RunDir, session: SessionInfo | None) -> ChromeTrace:
    """The tasks of a task-list run: those recorded, and those of its map in progress.

    Parameters
    ----------
    run_dir : RunDir
        The run (:func:`pypoolparty.tasklist.state.RunDir`), read twice.
    session : SessionInfo, optional
        The map in progress, if its directory is there
        (:func:`current_map_session`).

    Returns
    -------
    ChromeTrace
    """
    # Two numbers per worker process, not one per task.
    workers: dict[tuple, WorkerRun] = {}
    for attempt in run_dir.each_outcome():
        worker = _recorded_worker(attempt)
        if worker is None:
            continue
        seen = workers.get(_process_of(worker))
        if seen is not None:
            worker = WorkerRun(
                worker.host,
                worker.worker_pid,
                min(seen.start, worker.start),
                max(seen.end, worker.end),
                seen.num_tasks + 1,
                seen.num_failed_tasks + worker.num_failed_tasks,
            )
        workers[_process_of(worker)] = worker
    recorded = list(workers.values())
    runs = list(chunk_runs(session)) if session is not None else []
    starts = [run.start for run in runs] + [worker.start for worker in recorded]
    origin = _trace_origin(session, starts) if session is not None else min(starts, default=0.0)
    lines = None
    current = run_dir.current_map()
    if session is not None and current is not None:
        lines = current.lines
    return ChromeTrace(session, runs, recorded, origin, lines=lines, run_dir=run_dir)


def current_map_session(run_dir: RunDir, work_dir_path: str) -> SessionInfo | None:
    """The directory of the map a task-list run has in progress, if it is there."""
    from .sessions import NotAWorkDir, find_sessions

    current = run_dir.current_map()
    if current is None:
        return None
    try:
        sessions = find_sessions(work_dir_path)
    except NotAWorkDir:
        return None
    candidates = [
        s
        for s in sessions
        if s.function.startswith(shell_commands.CALL_NAME + "(")
        and s.num_tasks == len(current.lines)
    ]
    if not candidates:
        return None
    return max(candidates, key=lambda s: _modified(s.dir.log_path))


def _modified(path: str) -> float:
    try:
        return os.path.getmtime(path)
    except OSError:
        return 0.0


def _recorded_worker(attempt) -> WorkerRun | None:
    """A recorded attempt as a one-task WorkerRun; None if it has no times (older records)."""
    if not _is_time(attempt.start) or not _is_time(attempt.end):
        return None
    return WorkerRun(
        str(attempt.host or "?"),
        attempt.pid if isinstance(attempt.pid, int) else None,
        float(attempt.start),
        max(float(attempt.start), float(attempt.end)),
        1,
        0 if attempt.ok else 1,
    )


def _failure_of(attempt) -> str | None:
    return None if attempt.ok else _describe(attempt.returncode, attempt.timed_out)


def _trace_origin(session: SessionInfo, starts: list[float]) -> float:
    first_event = first_event_time(session.dir.log_path)
    candidates = starts + ([first_event] if first_event is not None else [])
    return min(candidates) if candidates else 0.0


def _process_of(run: ChunkRun | WorkerRun) -> tuple:
    """The worker process that ran ``run``: (host, pid); a run of unknown pid is its own."""
    if run.worker_pid is None:
        return (run.host, ("run", run.start, run.end, getattr(run, "ichunk", None)))
    return (run.host, run.worker_pid)


def _assign_slots(runs: Iterable[ChunkRun | WorkerRun]) -> dict[tuple, int]:
    """Each worker process's slot: the lowest of its host free when it first ran.

    A process holds its slot from its first run's start to its last run's
    end, so its runs are consecutive slices on one track; processes that
    overlap in time never share one (interval partitioning per host).
    """
    spans: dict[tuple, list[float]] = {}
    for run in runs:
        span = spans.setdefault(_process_of(run), [run.start, run.end])
        span[0], span[1] = min(span[0], run.start), max(span[1], run.end)
    slots: dict[tuple, int] = {}
    by_host: dict[str, list[tuple[float, float, tuple]]] = {}
    for process, (start, end) in spans.items():
        by_host.setdefault(process[0], []).append((start, end, process))
    for processes in by_host.values():
        free: list[int] = []
        busy: list[tuple[float, int]] = []
        num_slots = 0
        for start, end, process in sorted(processes, key=lambda p: (p[0], repr(p[2]))):
            while busy and busy[0][0] <= start:
                heapq.heappush(free, heapq.heappop(busy)[1])
            if free:
                slot = heapq.heappop(free)
            else:
                slot, num_slots = num_slots, num_slots + 1
            heapq.heappush(busy, (end, slot))
            slots[process] = slot
    return slots


def _metadata_event(name: str, pid: int, tid: int, args: dict) -> dict:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": args}
