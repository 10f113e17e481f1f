"""The records of finished tasks a worker keeps while its chunk runs.

So that a killed job loses at most the task it was running, the worker
appends each task's outcome to a file of its own as soon as the task ends::

    partial/<ichunk>.<run>.records

``<run>`` names one run of the chunk (host, process id and a random token),
so two runs of the same chunk at once (a scheduler that starts a job twice,
a resubmission beside a job thought lost) never write into the same file. A
later run of the chunk reads every file of its chunk and skips the tasks
recorded there; its outcome (:mod:`pypoolparty.outcome`) holds the recorded
tasks and its own. Once the chunk's outcome is written, its records are
removed -- by the worker, and by the reducer when it folds the outcome -- so
the work_dir holds about one such file per running job.

A file is a sequence of records, each::

    magic     4 bytes  b"PPTR"
    itask     8 bytes  unsigned, big-endian: the task's index in the map
    length    4 bytes  unsigned, big-endian: of the payload
    checksum  4 bytes  CRC-32 of itask, length and payload
    payload   the task's entry of the outcome (``itask``, ``start``, ``end``,
              and ``result`` or ``error``), pickled (protocol 4)

Only ever appended to, by one process: a record cut short by a kill, or
garbled by a crash of the node, fails its checksum, and reading stops there
(the task runs again). Every earlier record stands.

This module owns that format. :mod:`pypoolparty.worker`, which must not
import pypoolparty, keeps its own copy of the writer and the reader; the two
must agree.
"""

from __future__ import annotations

import os
import pickle
import re
import struct
import zlib
from collections.abc import Iterator

from .work_dir import write_private

DIRECTORY = "partial"
"""In the session directory."""
MAGIC = b"PPTR"
_HEADER = struct.Struct(">4sQII")
RECORDS_FILE = re.compile(r"^(\d+)\.(.+)\.records$")
"""A run's records of one chunk in ``partial/``."""


def directory(session_dir: str) -> str:
    """Where the records of a session's chunks are."""
    return os.path.join(session_dir, DIRECTORY)


def encode(itask: int, payload: bytes) -> bytes:
    """One record: the framing above around ``payload``, the pickled task entry."""
    body = struct.pack(">QI", itask, len(payload)) + payload
    return MAGIC + body[:12] + struct.pack(">I", zlib.crc32(body)) + body[12:]


def decode(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The whole records at the start of ``data``: ``(itask, payload)``, stopping at a bad one."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        magic, itask, length, checksum = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        payload = data[start : start + length]
        if magic != MAGIC or len(payload) != length:
            return
        if zlib.crc32(struct.pack(">QI", itask, length) + payload) != checksum:
            return
        yield itask, payload
        offset = start + length


def files_by_chunk(session_dir: str) -> dict[int, list[str]]:
    """The paths of every records file in the session, by chunk (one listing of ``partial/``)."""
    found: dict[int, list[str]] = {}
    try:
        names = os.listdir(directory(session_dir))
    except FileNotFoundError:
        return found
    for name in names:
        match = RECORDS_FILE.match(name)
        if match:
            path = os.path.join(directory(session_dir), name)
            found.setdefault(int(match.group(1)), []).append(path)
    return found


def recorded_tasks(paths: list[str]) -> dict[int, bytes]:
    """itask -> pickled entry, of every task recorded in ``paths`` (the first record wins)."""
    found: dict[int, bytes] = {}
    for path in paths:
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            continue  # removed since the listing: its chunk's outcome is written
        for itask, payload in decode(data):
            found.setdefault(itask, payload)
    return found


def finished_tasks(session_dir: str, ichunks: list[int]) -> dict[int, set[int]]:
    """The tasks recorded as finished, by chunk, of ``ichunks`` (one listing of ``partial/``).

    Chunks without records are left out. Reads the framing only, as
    :func:`num_finished_tasks` does.
    """
    files = files_by_chunk(session_dir)
    return {
        ichunk: set(recorded_tasks(files[ichunk])) for ichunk in set(ichunks) if ichunk in files
    }


def num_finished_tasks(session_dir: str) -> dict[int, int]:
    """Tasks recorded as finished, by chunk, for chunks whose outcome is not written yet.

    Reads the framing only: no payload is unpickled, so inspecting a work_dir
    runs no code.
    """
    return {
        ichunk: len(recorded_tasks(paths)) for ichunk, paths in files_by_chunk(session_dir).items()
    }


KEPT_RUN = "kept"
"""The ``<run>`` of the records the session writes itself: the finished tasks
of a chunk whose outcome had failed tasks, kept for the call that runs the
chunk again (see :func:`write_kept`)."""


def write_kept(session_dir: str, ichunk: int, entries: list[dict]) -> None:
    """Record ``entries``, finished tasks of ``ichunk``, as if a run of the chunk had.

    A chunk whose tasks partly failed runs again when the map is called
    again; its next run skips these tasks, as it skips those of a killed run,
    and its outcome holds them. Written atomically (a reader sees the whole
    file or none), 0600, under the one name :data:`KEPT_RUN`, so writing it
    again replaces it.

    Parameters
    ----------
    session_dir : str
        The session directory.
    ichunk : int
        The chunk.
    entries : list of dict
        The tasks' entries of the chunk's outcome (``itask``, ``start``, ``end``,
        ``result``), as the worker records them.
    """
    data = b"".join(encode(entry["itask"], pickle.dumps(entry, protocol=4)) for entry in entries)
    write_private(os.path.join(directory(session_dir), f"{ichunk}.{KEPT_RUN}.records"), data)


def remove(session_dir: str, ichunks: list[int]) -> None:
    """Remove the records of ``ichunks``: their outcomes hold these tasks now."""
    wanted = set(ichunks)
    for ichunk, paths in files_by_chunk(session_dir).items():
        if ichunk in wanted:
            for path in paths:
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
