"""The records of finished tasks: what a later run of a chunk reads, and what it refuses.

The worker writes them (its own copy of the format); ``pypoolparty.task_records``
owns the format and reads them for the map and for ``pypoolparty status``.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys

import cloudpickle
import pytest
from killing_tasks import blocking_task, counts, open_gate, where_blocked
from test_worker import WORKER, outcome, prepare, run_worker
from waiting import wait_for

from pypoolparty import task_records, worker


def entry(itask):
    return {"itask": itask, "start": 1.0, "end": 2.0, "result": cloudpickle.dumps(itask * 10)}


def records(*itasks):
    return b"".join(task_records.encode(i, pickle.dumps(entry(i))) for i in itasks)


def test_the_worker_and_the_owner_write_and_read_the_same_records():
    data = records(4, 5)
    assert worker.encode_task_record(4, pickle.dumps(entry(4))) == data[: len(data) // 2]
    assert [i for i, _ in worker.decode_task_records(data)] == [4, 5]
    assert [i for i, _ in task_records.decode(data)] == [4, 5]


def test_a_record_cut_short_or_garbled_ends_the_reading_there():
    data = records(0, 1, 2)
    cut = data[:-3]
    assert [i for i, _ in task_records.decode(cut)] == [0, 1]
    garbled = bytearray(data)
    garbled[len(records(0)) + 30] ^= 0xFF  # inside the payload of task 1
    assert [i for i, _ in task_records.decode(bytes(garbled))] == [0]
    assert list(task_records.decode(b"junk" + data)) == []


def test_status_counts_the_tasks_of_every_run_of_a_chunk_once(tmp_path):
    directory = tmp_path / task_records.DIRECTORY
    directory.mkdir()
    (directory / "3.hostA.11.aa.records").write_bytes(records(30, 31))
    (directory / "3.hostB.12.bb.records").write_bytes(records(30, 31, 32)[:-1])
    (directory / "4.hostA.13.cc.records").write_bytes(records(40))
    assert task_records.num_finished_tasks(str(tmp_path)) == {3: 2, 4: 1}
    task_records.remove(str(tmp_path), [3])
    assert sorted(os.listdir(directory)) == ["4.hostA.13.cc.records"]


def start_worker(session_dir):
    return subprocess.Popen(
        [sys.executable, WORKER, str(session_dir), "--ichunk", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_two_runs_of_a_chunk_at_once_keep_their_records_apart(tmp_path):
    session = tmp_path / "session"
    marks = tmp_path / "marks"
    session.mkdir()
    marks.mkdir()
    # Both runs start before either finished a task: neither has records to skip.
    tasks = [(str(marks), x, (0, 2)) for x in range(4)]
    prepare(str(session), blocking_task, tasks, chunksize=4, star=True)
    first = start_worker(session)
    where_blocked(marks, 0)
    os.remove(marks / "waiting-0")
    second = start_worker(session)
    where_blocked(marks, 0)
    open_gate(marks, 0)
    # Each run writes tasks 0 and 1 into a file of its own, then blocks at 2.
    partial = session / "partial"

    def both_recorded_two():
        found = [list(task_records.decode(p.read_bytes())) for p in partial.glob("*")]
        return len(found) == 2 and all(len(f) == 2 for f in found)

    try:
        wait_for(both_recorded_two)
    except AssertionError:
        for process in (first, second):
            process.kill()
        outputs = [process.communicate(timeout=60) for process in (first, second)]
        records = {p.name: list(task_records.decode(p.read_bytes())) for p in partial.glob("*")}
        # A worker that claims chunks writes each chunk's output apart.
        chunk_outputs = {p.name: p.read_bytes() for p in (session / "outcomes").glob("0.std*")}
        pytest.fail(
            f"records per file: {records}; the runs' stdout and stderr: {outputs}; "
            f"chunk 0's output: {chunk_outputs}; marks: {sorted(os.listdir(marks))}"
        )
    paths = sorted(partial.iterdir())
    for path in paths:
        assert [i for i, _ in task_records.decode(path.read_bytes())] == [0, 1]
        assert oct(path.stat().st_mode & 0o777) == "0o600"
    for process in (first, second):
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
    # A run cut short while writing a third record leaves garbage at the end.
    with open(paths[0], "ab") as file:
        file.write(task_records.encode(2, pickle.dumps(entry(2)))[:-5])
    open_gate(marks, 2)
    completed = run_worker(session, "--ichunk", "0")
    assert completed.returncode == 0, completed.stderr
    result = outcome(session, 0)
    assert [cloudpickle.loads(t["result"]) for t in result["tasks"]] == [0, 10, 20, 30]
    assert result["reused_tasks"] == 2
    assert counts(marks, range(4), "finished") == {0: 2, 1: 2, 2: 1, 3: 1}
    assert list((session / "partial").iterdir()) == []


def test_an_interrupted_run_does_not_hide_the_outcome_of_a_finished_one(tmp_path):
    session = tmp_path / "session"
    marks = tmp_path / "marks"
    session.mkdir()
    marks.mkdir()
    prepare(str(session), blocking_task, [(str(marks), x, 1) for x in range(3)], 3, star=True)
    interrupted = start_worker(session)
    where_blocked(marks, 1)
    open_gate(marks, 1)
    # Meanwhile another run of the chunk finished it (gate open: it passes).
    completed = run_worker(session, "--ichunk", "0")
    assert completed.returncode == 0, completed.stderr
    interrupted.send_signal(signal.SIGTERM)
    assert interrupted.wait(timeout=60) == 0
    result = outcome(session, 0)
    assert result["interrupted"] is None
    assert [cloudpickle.loads(t["result"]) for t in result["tasks"]] == [0, 10, 20]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2])
def test_a_warning_signal_stops_the_chunk_and_keeps_its_records(tmp_path, sig):
    session = tmp_path / "session"
    marks = tmp_path / "marks"
    session.mkdir()
    marks.mkdir()
    prepare(str(session), blocking_task, [(str(marks), x, 2) for x in range(5)], 5, star=True)
    process = start_worker(session)
    where_blocked(marks, 2)
    process.send_signal(sig)
    assert process.wait(timeout=60) == 0
    result = outcome(session, 0)
    assert result["interrupted"] == {"signal": sig.name, "unfinished_tasks": 3}
    assert [t["itask"] for t in result["tasks"]] == [0, 1]
    # The next run reads these and starts at task 2.
    (path,) = (session / "partial").iterdir()
    assert [i for i, _ in task_records.decode(path.read_bytes())] == [0, 1]
