"""A chunk stopped by its time limit, cut into pieces: what the session writes and the jobs read.

The session directory is built by hand (``hand_built_sessions``), with a
real ``tasks.zip`` and the records a stopped job leaves; the full chain on
the dummy schedulers is in ``tests/slurm/test_slurm_dummy_time_limits.py``
and ``tests/test_cluster_stops_sge_htcondor.py``.
"""

from __future__ import annotations

import json
import os
import pickle

import cloudpickle
from hand_built_sessions import new_session, task_record

from pypoolparty import chunking, serialization, splitting, task_records, work_dir, worker
from pypoolparty.work_dir import SessionInfo, SessionMetadata

NUM_TASKS = 8
TASKS = [f"task {x}" for x in range(NUM_TASKS)]


def session_with_one_chunk(tmp_path) -> work_dir.SessionDir:
    """A map of :data:`TASKS` in one chunk, whose jobs claim work."""
    session_dir = new_session(str(tmp_path), num_tasks=NUM_TASKS, chunksize=NUM_TASKS)
    serialization.write_tasks(
        session_dir.tasks_path, TASKS, [(0, NUM_TASKS)], b"function", identity="test"
    )
    work_dir.write_json(session_dir.worker_config_path, {"claiming_chunks": 1})
    return session_dir


def record(session_dir, ichunk, itasks) -> None:
    """The records a job of ``ichunk`` leaves that finished ``itasks``."""
    os.makedirs(task_records.directory(session_dir.path), mode=0o700, exist_ok=True)
    path = os.path.join(task_records.directory(session_dir.path), f"{ichunk}.node.1.ab.records")
    with open(path, "ab") as file:
        for itask in itasks:
            entry = task_record(itask, 10.0 + itask, 11.0 + itask, value=itask * itask)
            file.write(task_records.encode(itask, pickle.dumps(entry, protocol=4)))


def tasks_read_by_the_worker(session_dir, ichunk):
    return worker.read_tasks(session_dir.path, ichunk, worker.Loader({}))


def test_a_chunk_keeps_its_finished_tasks_and_the_rest_goes_on_in_pieces(tmp_path):
    session_dir = session_with_one_chunk(tmp_path)
    record(session_dir, 0, range(4))
    bounds = [(0, NUM_TASKS)]
    metadata, (cut,) = splitting.split(
        session_dir, SessionMetadata.read(session_dir), bounds, [(0, 4, "node")]
    )
    # Half the 4 tasks the job finished per piece.
    assert bounds == [(0, 4), (4, 6), (6, 8)]
    assert (cut.ichunk, cut.bounds, cut.done) == (0, (0, 4), True)
    assert cut.pieces == ((1, 4, 6), (2, 6, 8))
    # The chunk's outcome holds its recorded tasks, as a worker's would.
    with open(session_dir.outcome_path(0), "rb") as file:
        outcome = pickle.load(file)
    assert [cloudpickle.loads(t["result"]) for t in outcome["tasks"]] == [0, 1, 4, 9]
    assert (outcome["ichunk"], outcome["host"], outcome["interrupted"]) == (0, "node", None)
    # session.json says how the chunks were cut, for the CLI and a later call.
    info = SessionInfo.at(session_dir.path)
    assert info.pieces == metadata.pieces == ((0, 0, 0, 4), (1, 0, 4, 6), (2, 0, 6, 8))
    assert info.num_chunks == 3 and info.chunk_bounds() == bounds
    assert [info.chunk_of(itask) for itask in range(NUM_TASKS)] == [0, 0, 0, 0, 1, 1, 2, 2]
    assert info.tasks_of(0) == range(0, 4) and info.tasks_of(2) == range(6, 8)
    assert splitting.current_bounds([(0, NUM_TASKS)], info) == bounds
    # Jobs that start from now on claim the pieces too.
    assert work_dir.read_json(session_dir.worker_config_path)["claiming_chunks"] == 3
    # A piece's job runs its slice of the chunk's tasks.
    assert tasks_read_by_the_worker(session_dir, 2) == (6, TASKS[6:8])
    assert tasks_read_by_the_worker(session_dir, 0) == (0, TASKS[0:4])


def test_a_piece_stopped_in_turn_is_cut_again_from_the_chunk_it_came_from(tmp_path):
    session_dir = session_with_one_chunk(tmp_path)
    record(session_dir, 0, range(4))
    bounds = [(0, NUM_TASKS)]
    metadata, _ = splitting.split(
        session_dir, SessionMetadata.read(session_dir), bounds, [(0, 4, "node")]
    )
    record(session_dir, 1, [4])
    metadata, (cut,) = splitting.split(session_dir, metadata, bounds, [(1, 1, "node")])
    assert (cut.bounds, cut.pieces) == ((4, 5), ((3, 5, 6),))
    assert bounds == [(0, 4), (4, 5), (6, 8), (5, 6)]
    assert tasks_read_by_the_worker(session_dir, 3) == (5, TASKS[5:6])
    info = SessionInfo.at(session_dir.path)
    assert [info.chunk_of(itask) for itask in range(NUM_TASKS)] == [0, 0, 0, 0, 1, 3, 2, 2]
    chunks = chunking.ChunkFinder(bounds)
    assert chunks.chunk_of(5) == 3 and chunks.chunk_of(7) == 2


def test_a_chunk_that_finished_no_task_keeps_the_first_piece_and_runs_again(tmp_path):
    """Its job got something done all the same: a task saved a checkpoint."""
    session_dir = session_with_one_chunk(tmp_path)
    bounds = [(0, NUM_TASKS)]
    _, (cut,) = splitting.split(
        session_dir, SessionMetadata.read(session_dir), bounds, [(0, 0, "node")]
    )
    assert (cut.bounds, cut.done) == ((0, 1), False)
    assert bounds == [(0, 1)] + [(x, x + 1) for x in range(1, NUM_TASKS)]
    assert not os.path.exists(session_dir.outcome_path(0))
    assert tasks_read_by_the_worker(session_dir, 0) == (0, TASKS[0:1])


def test_a_rest_that_fits_in_one_piece_of_the_chunks_size_is_left_whole(tmp_path):
    session_dir = session_with_one_chunk(tmp_path)
    before = SessionMetadata.read(session_dir)
    bounds = [(0, NUM_TASKS)]
    metadata, splits = splitting.split(session_dir, before, bounds, [(0, 16, "node")])
    assert (metadata, splits, bounds) == (before, [], [(0, NUM_TASKS)])
    assert json.loads(open(session_dir.metadata_path).read())["pieces"] == []
    assert tasks_read_by_the_worker(session_dir, 0) == (0, TASKS)


def test_a_map_of_an_earlier_version_without_pieces_still_reads(tmp_path):
    session_dir = new_session(str(tmp_path), num_tasks=5, chunksize=2)
    fields = json.loads(open(session_dir.metadata_path).read())
    del fields["pieces"]
    work_dir.write_json(session_dir.metadata_path, fields)
    info = SessionInfo.at(session_dir.path)
    assert info.pieces == () and info.chunk_bounds() == [(0, 2), (2, 4), (4, 5)]
    assert [info.chunk_of(itask) for itask in range(5)] == [0, 0, 1, 1, 2]
