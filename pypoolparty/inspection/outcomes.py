"""The outcomes workers write, one per chunk, read as plain data.

A worker writes its chunk's outcome to ``outcomes/<ichunk>.pickle``; the map
folds it into ``results.zip`` when it polls. Both places are read here. An
outcome is a dict of numbers, strings and bytes (see
:mod:`pypoolparty.worker`); the results and exceptions in it stay pickled
bytes and are never loaded: pickles are code, and looking at a work_dir
must not run any.
"""

from __future__ import annotations

import io
import os
import pickle
from collections.abc import Iterator

from . import member_names, zip_reading
from .sessions import SessionInfo


class _PlainDataUnpickler(pickle.Unpickler):
    """Refuses every class and function: an outcome file never needs one."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"an outcome file must not refer to {module}.{name}")


def load_outcome(data: bytes) -> dict | None:
    """The outcome pickled in ``data``; None if it is cut off or not an outcome."""
    try:
        outcome = _PlainDataUnpickler(io.BytesIO(data)).load()
    except Exception:  # a cut-off or foreign file: not an outcome
        return None
    return outcome if isinstance(outcome, dict) else None


def unfolded_outcomes(session: SessionInfo) -> Iterator[tuple[int, dict]]:
    """(ichunk, outcome) the workers wrote that the map has not folded into the archives yet."""
    directory = session.dir.outcomes_dir
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        match = member_names.SUCCEEDED_OUTCOME.match(name)
        if not match:
            continue
        try:
            with open(os.path.join(directory, name), "rb") as file:
                data = file.read()
        except FileNotFoundError:
            continue  # folded away since the listing
        outcome = load_outcome(data)
        if outcome is not None:
            yield int(match.group(1)), outcome


def failed_tasks_of(outcome: dict, first_itask: int) -> list[tuple[int, dict]]:
    """(itask, error) of every failed task of an outcome, as the reducer counts them.

    ``first_itask`` is the chunk's first task, which a setup error (the
    worker could not load the function) is reported as.
    """
    if outcome.get("setup_error") is not None:
        return [(first_itask, outcome["setup_error"])]
    return [
        (task.get("itask", first_itask), task["error"])
        for task in outcome.get("tasks", ())
        if "error" in task
    ]


def archived_chunks(session: SessionInfo) -> tuple[set[int], list[int]]:
    """Chunks in ``results.zip``: those whose tasks all succeeded, and those with failed tasks."""
    succeeded: set[int] = set()
    failed: list[int] = []
    for member in zip_reading.members(session.dir.archive_path("results")):
        success = member_names.SUCCEEDED_OUTCOME.match(member.name)
        failure = member_names.FAILED_OUTCOME.match(member.name)
        if success and int(success.group(1)) < session.num_chunks:
            succeeded.add(int(success.group(1)))
        elif failure and int(failure.group(1)) < session.num_chunks:
            failed.append(int(failure.group(1)))
    return succeeded, failed
