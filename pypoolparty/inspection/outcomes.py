"""Where the outcomes workers write are: not folded yet, or in ``results.zip``.

A worker writes its chunk's outcome to ``outcomes/<ichunk>.pickle``; the map
folds it into ``results.zip`` when it polls. Both places are read here, as
plain data (:func:`pypoolparty.outcome.load_outcome`): the results and
exceptions in an outcome stay pickled bytes and are never loaded, since
pickles are code and looking at a work_dir must not run any.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from .. import archive, task_records
from ..outcome import interruption, load_outcome
from ..work_dir import FAILED_OUTCOME_MEMBER, OUTCOME_MEMBER, SessionInfo, outcome_member


def unfolded_outcomes(session: SessionInfo) -> Iterator[tuple[int, dict]]:
    """(ichunk, outcome) the workers wrote that the map has not folded into the archives yet.

    An interrupted outcome (:func:`pypoolparty.outcome.interruption`) is left
    out: its chunk is not done, and its finished tasks are counted from their
    records (:func:`pypoolparty.task_records.num_finished_tasks`).
    """
    directory = session.dir.outcomes_dir
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        match = OUTCOME_MEMBER.match(name)
        if not match:
            continue
        try:
            with open(os.path.join(directory, name), "rb") as file:
                data = file.read()
        except FileNotFoundError:
            continue  # folded away since the listing
        outcome = load_outcome(data)
        if outcome is not None and interruption(outcome) is None:
            yield int(match.group(1)), outcome


def archived_chunks(session: SessionInfo) -> tuple[set[int], list[int]]:
    """Chunks in ``results.zip``: those whose tasks all succeeded, and those with failed tasks."""
    succeeded: set[int] = set()
    failed: list[int] = []
    for member in archive.members(session.dir.archive_path("results")):
        success = OUTCOME_MEMBER.match(member.name)
        failure = FAILED_OUTCOME_MEMBER.match(member.name)
        if success and int(success.group(1)) < session.num_chunks:
            succeeded.add(int(success.group(1)))
        elif failure and int(failure.group(1)) < session.num_chunks:
            failed.append(int(failure.group(1)))
    return succeeded, failed


def finished_task(session: SessionInfo, itask: int) -> dict | None:
    """The entry of task ``itask`` if it finished in this session, as plain data; else None.

    Looked for where it is while the map runs: in its chunk's outcome (not
    folded yet, or in ``results.zip``), or in the records of a chunk whose
    job still runs (:mod:`pypoolparty.task_records`). The entry holds
    ``itask``, ``start``, ``end`` and ``result`` (pickled, never loaded here)
    or ``error``.
    """
    ichunk = session.chunk_of(itask)
    for data in _outcome_data(session, ichunk):
        outcome = load_outcome(data)
        for task in (outcome or {}).get("tasks") or ():
            if task.get("itask") == itask:
                return task
    paths = task_records.files_by_chunk(session.path).get(ichunk, [])
    payload = task_records.recorded_tasks(paths).get(itask)
    entry = load_outcome(payload) if payload is not None else None
    return entry if entry is not None and entry.get("itask") == itask else None


def recorded_tasks_of_chunk(session: SessionInfo, ichunk: int) -> set[int]:
    """The tasks of a chunk whose job still runs that it has recorded as finished."""
    return task_records.finished_tasks(session.path, [ichunk]).get(ichunk, set())


def _outcome_data(session: SessionInfo, ichunk: int) -> Iterator[bytes]:
    try:
        with open(os.path.join(session.dir.outcomes_dir, outcome_member(ichunk)), "rb") as file:
            yield file.read()
    except FileNotFoundError:
        pass
    results = session.dir.archive_path("results")
    for failed in (False, True):
        data = archive.read_member(results, outcome_member(ichunk, failed=failed))
        if data is not None:
            yield data
