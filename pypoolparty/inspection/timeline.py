"""Where and when each chunk ran, laid out as a Chrome trace for ui.perfetto.dev."""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from .. import archive, work_dir
from ..event_log import first_event_time
from ..outcome import failed_tasks, load_outcome
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


def chunk_runs(session: SessionInfo) -> Iterator[ChunkRun]:
    """Every chunk run whose outcome is in the work_dir, one outcome at a time.

    A chunk run twice (it had failed tasks and the map was called again)
    yields both runs.
    """
    seen: set[tuple[int, float]] = set()
    archived = archive.contents(session.dir.archive_path("results"), _is_outcome_name)
    for member, data in archived:
        outcome = load_outcome(data or b"")
        run = _chunk_run(_chunk_in_name(member.name), outcome) if outcome else None
        if run is not None:
            seen.add((run.ichunk, run.start))
            yield run
    for ichunk, outcome in unfolded_outcomes(session):
        run = _chunk_run(ichunk, outcome)
        # A duplicate outcome arrives after its chunk was folded; an outcome
        # may be folded while we read: skip what the archive already gave.
        if run is not None and (run.ichunk, run.start) not in seen:
            yield run


def _is_outcome_name(name: str) -> bool:
    return bool(work_dir.OUTCOME_MEMBER.match(name) or work_dir.FAILED_OUTCOME_MEMBER.match(name))


def _chunk_in_name(name: str) -> int:
    match = work_dir.OUTCOME_MEMBER.match(name) or work_dir.FAILED_OUTCOME_MEMBER.match(name)
    return int(match.group(1))


def _chunk_run(ichunk: int, outcome: dict) -> ChunkRun | None:
    """The run an outcome records; None if it lacks its times."""
    start, end = outcome.get("start"), outcome.get("end")
    if not isinstance(start, (int, float)) or not isinstance(end, (int, float)):
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


@dataclasses.dataclass(frozen=True)
class ChromeTrace:
    """Chunk runs laid out as a Chrome trace, the JSON that ui.perfetto.dev opens.

    Each host is a process, named by a ``process_name`` metadata event; each
    chunk run a complete event (``"ph": "X"``) on a lane (a thread) of its
    host: the lowest lane free at its start, so runs that overlap never share
    one. Times are microseconds since ``origin``, the map's first logged
    event or earliest run. :meth:`events` makes the events one at a time, to
    be written out as they come.
    """

    session: SessionInfo
    runs_by_host: dict[str, list[ChunkRun]]
    origin: float

    @property
    def num_runs(self) -> int:
        return sum(len(runs) for runs in self.runs_by_host.values())

    @property
    def other_data(self) -> dict:
        """What the trace is of, for its ``otherData``."""
        return {
            "session": self.session.name,
            "function": self.session.function,
            "num_tasks": self.session.num_tasks,
            "num_chunks": self.session.num_chunks,
            "origin_unix_time": self.origin,
        }

    def events(self) -> Iterator[dict]:
        """The ``traceEvents``: per host its name, its runs, its lanes' names."""
        for pid, host in enumerate(sorted(self.runs_by_host), start=1):
            yield _metadata_event("process_name", pid, 0, {"name": host})
            num_lanes = 0
            for run, lane in _assign_lanes(self.runs_by_host[host]):
                num_lanes = max(num_lanes, lane + 1)
                yield _complete_event(self.session, run, self.origin, pid, lane)
            for lane in range(num_lanes):
                yield _metadata_event("thread_name", pid, lane, {"name": f"lane {lane}"})

    def to_dict(self) -> dict:
        """The whole trace in memory."""
        return {
            "traceEvents": list(self.events()),
            "displayTimeUnit": "ms",
            "otherData": self.other_data,
        }


def chrome_trace(session: SessionInfo, runs: Iterable[ChunkRun]) -> ChromeTrace:
    """Lay out ``runs`` (see :func:`chunk_runs`) of ``session`` as a Chrome trace.

    Parameters
    ----------
    session : SessionInfo
        The map the runs belong to.
    runs : iterable of ChunkRun
        Read once.

    Returns
    -------
    ChromeTrace
    """
    runs_by_host: dict[str, list[ChunkRun]] = {}
    for run in runs:
        runs_by_host.setdefault(run.host, []).append(run)
    return ChromeTrace(session, runs_by_host, _trace_origin(session, runs_by_host))


def _trace_origin(session: SessionInfo, by_host: dict[str, list[ChunkRun]]) -> float:
    starts = [run.start for runs in by_host.values() for run in runs]
    first_event = first_event_time(session.dir.log_path)
    candidates = starts + ([first_event] if first_event is not None else [])
    return min(candidates) if candidates else 0.0


def _assign_lanes(runs: list[ChunkRun]) -> Iterator[tuple[ChunkRun, int]]:
    """Interval partitioning: each run gets the lowest lane free at its start."""
    free: list[int] = []
    busy: list[tuple[float, int]] = []
    num_lanes = 0
    for run in sorted(runs, key=lambda r: (r.start, r.end, r.ichunk)):
        while busy and busy[0][0] <= run.start:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane, num_lanes = num_lanes, num_lanes + 1
        heapq.heappush(busy, (run.end, lane))
        yield run, lane


def _complete_event(session: SessionInfo, run: ChunkRun, origin: float, pid: int, lane: int):
    tasks = session.tasks_of(run.ichunk) if run.ichunk < session.num_chunks else range(0)
    return {
        "name": f"chunk {run.ichunk}",
        "cat": "chunk" if run.num_failed_tasks == 0 else "chunk,failed",
        "ph": "X",
        "ts": round((run.start - origin) * 1e6, 3),
        "dur": round((run.end - run.start) * 1e6, 3),
        "pid": pid,
        "tid": lane,
        "args": {
            "ichunk": run.ichunk,
            "tasks": f"{tasks.start}..{tasks.stop - 1}" if tasks else "",
            "num_tasks": run.num_tasks,
            "failed_tasks": run.num_failed_tasks,
            "host": run.host,
            "worker_pid": run.worker_pid,
        },
    }


def _metadata_event(name: str, pid: int, tid: int, args: dict) -> dict:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": args}
