"""A chunk stopped by its time limit goes on in pieces that fit the limit.

A time limit is the user's estimate of how long a job may run, and a job
runs a chunk (:mod:`pypoolparty.stops`). When the limit stops a job that got
something done, running the chunk's unfinished tasks again in one job would
only hit the limit again, task after task, one job after another. So the
session cuts them into pieces, each sized from what the stopped job managed
within its limit -- half the tasks it finished, as a margin, and at least
one (:func:`piece_size`) -- and each piece becomes a chunk of its own:

- the pieces take the chunk indices after the existing ones; the session
  submits each like any chunk without a job, up to one job per slot, and
  the map's jobs claim them as they claim any chunk (:mod:`pypoolparty.claims`),
  so the pieces run side by side on the free slots;
- the stopped chunk is cut down to the tasks its jobs finished, and its
  outcome is assembled from their records (:mod:`pypoolparty.task_records`),
  so no finished task runs again; a chunk that finished none (a task saved a
  checkpoint) keeps the first piece and runs again;
- a piece that is stopped by the limit in turn is cut the same way.

No task is unpickled on the submit host, nor copied: ``session.json`` says
which tasks each piece runs and of which chunk's member of ``tasks.zip``
(:attr:`pypoolparty.work_dir.SessionMetadata.pieces`), and the worker takes
that slice of the member. ``session.json`` is rewritten, atomically, before
any piece is submitted and before the stopped chunk's outcome is written, so
a map continued after its submitter was killed finds the chunks as they were
cut, and the results come out in task order whatever the chunk indices.

Only where jobs share the session directory: a job whose files are
transferred (no shared file system) runs a whole chunk, whose unfinished
tasks then run again in one job.
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Sequence

from . import outcome, prepare, task_records, work_dir

MARGIN = 2
"""A piece holds at most the tasks the stopped job finished divided by this."""


@dataclasses.dataclass(frozen=True)
class Split:
    """How one stopped chunk was cut."""

    ichunk: int
    bounds: tuple[int, int]
    """The tasks the chunk keeps."""
    done: bool
    """They all finished: the chunk's outcome is written. Otherwise the chunk
    runs them again (the first piece, as long as the others)."""
    pieces: tuple[tuple[int, int, int], ...]
    """``(ichunk, start, stop)`` of each new chunk, in task order."""

    def logged(self) -> dict:
        """The fields of the event log's ``chunk_split`` (:mod:`pypoolparty.event_log`)."""
        return {
            "ichunk": self.ichunk,
            "tasks": [self.bounds[0], self.bounds[1] - 1],
            "done": self.done,
            "pieces": [[ichunk, start, stop - 1] for ichunk, start, stop in self.pieces],
        }

    def __str__(self) -> str:
        largest = max(stop - start for _, start, stop in self.pieces)
        return (
            f"chunk {self.ichunk} keeps tasks {self.bounds[0]}..{self.bounds[1] - 1}; its "
            f"other tasks go on in {len(self.pieces)} piece(s) of at most {largest} task(s), "
            f"chunks {self.pieces[0][0]}..{self.pieces[-1][0]}"
        )


def piece_size(finished_in_job: int) -> int:
    """Tasks per piece, from the tasks the stopped job finished within its limit.

    >>> piece_size(5), piece_size(1), piece_size(0)
    (2, 1, 1)
    """
    return max(1, finished_in_job // MARGIN)


def cut(first_unfinished: int, stop: int, size: int) -> list[tuple[int, int]]:
    """Tasks ``first_unfinished..stop-1`` in pieces of at most ``size`` tasks.

    >>> cut(3, 10, 3)
    [(3, 6), (6, 9), (9, 10)]
    """
    return [(start, min(start + size, stop)) for start in range(first_unfinished, stop, size)]


def current_bounds(
    bounds: Sequence[tuple[int, int]], metadata: work_dir.SessionMetadata
) -> list[tuple[int, int]]:
    """``bounds``, as the map was first cut, with the pieces ``metadata`` records."""
    current = list(bounds) + [(0, 0)] * max(0, metadata.num_chunks - len(bounds))
    for ichunk, _, start, stop in metadata.pieces:
        current[ichunk] = (start, stop)
    return current


def split(
    session_dir: work_dir.SessionDir,
    metadata: work_dir.SessionMetadata,
    bounds: list[tuple[int, int]],
    stopped: Sequence[tuple[int, int, str]],
) -> tuple[work_dir.SessionMetadata, list[Split]]:
    """Cut the chunks a time limit stopped into pieces; write what the jobs read.

    Parameters
    ----------
    session_dir : SessionDir
        The map's session directory.
    metadata : SessionMetadata
        Its ``session.json`` as it is now.
    bounds : list of (int, int)
        Each chunk's tasks; changed in place: the stopped chunks cut down,
        the pieces appended.
    stopped : sequence of (int, int, str)
        ``(ichunk, finished_in_job, host)``: a chunk a time limit stopped, the
        tasks of it that the stopped job finished, and the host it ran on.

    Returns
    -------
    (SessionMetadata, list of Split)
        The metadata written, and how each chunk was cut; a chunk whose
        unfinished tasks make one piece of its own size is left as it is
        (it runs again whole, as before).

    Raises
    ------
    OSError
        If ``session.json``, ``worker_config.json`` or an outcome cannot be
        written.
    """
    files = task_records.files_by_chunk(session_dir.path)
    pieces = {ichunk: (source, start, stop) for ichunk, source, start, stop in metadata.pieces}
    splits, kept = [], {}
    for ichunk, finished_in_job, host in stopped:
        start, stop = bounds[ichunk]
        entries = _recorded_entries(files.get(ichunk, []), start, stop)
        first = next((i for i in range(start, stop) if i not in entries), stop)
        ranges = cut(first, stop, piece_size(finished_in_job))
        if first == stop or (first == start and len(ranges) == 1):
            continue
        source = pieces.get(ichunk, (ichunk,))[0]
        new = ranges if first > start else ranges[1:]
        own = (start, first) if first > start else ranges[0]
        numbered = tuple((len(bounds) + i, s, e) for i, (s, e) in enumerate(new))
        for piece, s, e in numbered:
            bounds.append((s, e))
            pieces[piece] = (source, s, e)
        bounds[ichunk] = own
        pieces[ichunk] = (source, *own)
        splits.append(Split(ichunk, own, first > start, numbered))
        if first > start:
            kept[ichunk] = outcome.assembled(ichunk, [entries[i] for i in range(*own)], host)
    if not splits:
        return metadata, []
    metadata = metadata.with_pieces(pieces)
    # Before any job of a piece starts, and before the cut chunk is done.
    metadata.write(session_dir)
    prepare.set_claiming_chunks(session_dir, len(bounds))
    for ichunk, assembled in kept.items():
        work_dir.write_private(
            session_dir.outcome_path(ichunk), pickle.dumps(assembled, protocol=4)
        )
    return metadata, splits


def _recorded_entries(paths: list[str], start: int, stop: int) -> dict[int, dict]:
    """itask -> the recorded entry of each task of ``start..stop-1`` that a job finished.

    Read as plain data (results stay pickled bytes): no task's code runs on
    the submit host. An entry that does not read is left out; its task runs
    again, as the worker would run it.
    """
    found = {}
    for itask, payload in task_records.recorded_tasks(paths).items():
        if start <= itask < stop:
            entry = outcome.load_outcome(payload)
            if entry is not None and entry.get("itask") == itask:
                found[itask] = entry
    return found
