"""Jobs stopped before their chunk's end: by the cluster, or by their time limit.

A job is stopped without any fault of its own when the cluster preempts,
evicts or requeues it, or a node fails; and at its time limit, which is the
user's estimate. Either way the worker recorded every task it finished
(:mod:`pypoolparty.task_records`), and a long task may have saved a
checkpoint (:mod:`pypoolparty.checkpoint`), so the chunk runs again from its
first unfinished task. What the session must know for that, and what it
reads in the session directory, is here:

- :class:`Progress`: what a chunk's jobs have got done so far, compared
  before and after a job to tell whether that job got anywhere;
- :func:`time_limit_message`: the error of a task that alone needs more
  time than the limit allows (:class:`pypoolparty.errors.TimeLimitTooShort`).

The next job of a stopped chunk runs its unfinished tasks in order,
starting at the first, and then claims other chunks as any job does
(:mod:`pypoolparty.claims`), so the chunks that follow still spread over
every free slot. After a time limit, the unfinished tasks are cut into
pieces that fit it first (:mod:`pypoolparty.splitting`). A job that was
submitted for the chunk and finished no task of it ends the map instead of
looping; a job that claimed the chunk after finishing others is not judged
by it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from . import checkpoint, chunking, task_records


@dataclasses.dataclass(frozen=True)
class Progress:
    """What the jobs of one chunk have got done so far."""

    finished_tasks: frozenset[int]
    """The tasks recorded as finished."""

    checkpoints: frozenset[tuple[int, int, int]]
    """``(itask, inode, mtime_ns)`` of each checkpoint of the chunk's tasks:
    another version means a task saved since."""

    def advanced_since(self, before: Progress | None) -> bool:
        """Whether a task finished or saved a checkpoint since ``before``.

        ``None`` (not known, e.g. for a job adopted from an earlier call)
        counts as progress: a job is never judged on what it cannot be
        compared with.
        """
        if before is None:
            return True
        return bool(self.finished_tasks - before.finished_tasks) or bool(
            self.checkpoints - before.checkpoints
        )


NO_PROGRESS = Progress(frozenset(), frozenset())


def progress_of(
    session_dir: str, bounds: Sequence[tuple[int, int]], ichunks: Sequence[int]
) -> dict[int, Progress]:
    """The :class:`Progress` of each of ``ichunks``.

    One listing of ``partial/`` and one of ``checkpoints/``; only the records
    of ``ichunks`` are read. Cheap for a fresh map, whose directories are
    empty.
    """
    finished = task_records.finished_tasks(session_dir, list(ichunks))
    saved: dict[int, set[tuple[int, int, int]]] = {}
    chunks = chunking.ChunkFinder(bounds)
    for itask, (inode, mtime) in checkpoint.saved_versions(session_dir).items():
        ichunk = chunks.chunk_of(itask)
        if ichunk is not None:
            saved.setdefault(ichunk, set()).add((itask, inode, mtime))
    progress = {}
    for ichunk in ichunks:
        if ichunk not in finished and ichunk not in saved:
            progress[ichunk] = NO_PROGRESS
        else:
            progress[ichunk] = Progress(
                frozenset(finished.get(ichunk, ())), frozenset(saved.get(ichunk, ()))
            )
    return progress


def first_unfinished_task(progress: Progress, bounds: tuple[int, int]) -> int:
    """The task a stopped job of the chunk ``bounds`` was running: its first unrecorded one."""
    start, stop = bounds
    return next((i for i in range(start, stop) if i not in progress.finished_tasks), start)


def ran_for(outcome: dict | None, seen_running_for: float | None) -> str:
    """How long the task a job stopped in ran, in words.

    From the worker's interrupted outcome (``start`` and ``end``, times on
    the node; no task finished in that job, so the task ran from about its
    start), else from how long the session saw the job running, else
    unknown.
    """
    if outcome is not None:
        start, end = outcome.get("start"), outcome.get("end")
        if isinstance(start, (int, float)) and isinstance(end, (int, float)) and end >= start:
            return f"for {end - start:.0f} s (the worker's clock) before it was stopped"
    if seen_running_for is not None:
        return f"for about {seen_running_for:.0f} s (as this map's polls saw the job run)"
    return "until the job was stopped (for how long, the scheduler did not say)"


def time_limit_message(
    itask: int,
    ichunk: int,
    jobid: str,
    time_limit: str,
    stopped_by: str,
    ran: str,
    finished_elsewhere: int,
    explained: str = "",
    transferred_chunk: tuple[int, int] | None = None,
) -> str:
    """The message of :class:`pypoolparty.errors.TimeLimitTooShort`.

    Parameters
    ----------
    itask, ichunk, jobid
        The task the job stopped in, its chunk, and the job.
    time_limit : str
        The scheduler adapter's words for the limit and the option that sets
        it (:attr:`pypoolparty.scheduler.JobStatus.time_limit`).
    stopped_by : str
        What stopped the job: the scheduler's state and reason (``TIMEOUT;
        TimeLimit``, or the warning signal and what sent it).
    ran : str
        How long the task ran (:func:`ran_for`).
    finished_elsewhere : int
        Tasks of the map kept from earlier jobs.
    explained : str
        What the scheduler says of the job, if anything (``scontrol show job``).
    transferred_chunk : tuple of int, optional
        The chunk's tasks ``(start, stop)``, when the job's files travel with it
        (no shared file system): what it finished before its limit did not
        come back, so the whole chunk must fit in the limit.
    """
    if transferred_chunk is not None:
        lines = _transferred_lines(
            ichunk, jobid, time_limit, stopped_by, ran, transferred_chunk, finished_elsewhere
        )
    else:
        lines = [
            f"task {itask} (chunk {ichunk}, job {jobid}) needs more time than the job's time "
            f"limit allows: {time_limit}. It ran {ran} ({stopped_by}), and the job finished no "
            "task nor saved a checkpoint, so a job with the same limit would stop at the same "
            "task: none was submitted.",
            "Raise that limit so that one task fits, with a margin (the limit applies to a "
            "whole job, which runs a chunk: see docs/time_limits.rst), or let the task save "
            "checkpoints with pypoolparty.checkpoint.save so that it can go on in the next job. "
            f"Calling the same map with the same work_dir then continues it, keeping the "
            f"{finished_elsewhere} task(s) finished so far.",
        ]
    if explained:
        lines.append(f"  the scheduler says: {explained}")
    return "\n".join(lines)


def _transferred_lines(
    ichunk, jobid, time_limit, stopped_by, ran, bounds, finished_elsewhere
) -> list[str]:
    """What happened, and what to do, for a job whose files travel with it.

    HTCondor brings back nothing of a job it stops at a time limit (a hold),
    so the tasks it finished are not known on the submit host; the chunk
    cannot go on in pieces (:mod:`pypoolparty.splitting` needs the session
    directory shared), and run again whole it would stop at the same place.
    """
    start, stop = bounds
    return [
        f"chunk {ichunk} (tasks {start}..{stop - 1}, job {jobid}) was stopped by the job's "
        f"time limit: {time_limit}. It ran {ran} ({stopped_by}). Without a shared file "
        "system nothing of a job stopped at its time limit comes back, so the tasks it "
        "finished are not known here and the chunk would run again from its first task, "
        "into the same limit: none was submitted.",
        f"Raise that limit so that a whole chunk ({stop - start} task(s) here) fits, with a "
        "margin: calling the same map with the same work_dir then continues it, keeping the "
        f"{finished_elsewhere} task(s) finished so far. A smaller chunksize fits the chunks "
        "into the limit too, but makes a new map, which starts afresh (see "
        "docs/no_shared_file_system.rst).",
    ]
