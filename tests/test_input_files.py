"""pypoolparty.InputFile: a file a task reads, as a path where the task runs.

Without a shared file system the files travel with the jobs: see
``tests/htcondor/test_htcondor_real_transfer.py``.
"""

from __future__ import annotations

import os
import pickle

import cloudpickle
import pytest

import pypoolparty
from pypoolparty import input_files, job_files


def read(path):
    with open(path) as file:
        return [type(path).__name__, file.read()]


def test_a_task_gets_the_path_of_its_file_on_a_shared_file_system(tmp_path):
    for i in range(3):
        (tmp_path / f"in-{i}.txt").write_text(f"input {i}")
    tasks = [pypoolparty.InputFile(tmp_path / f"in-{i}.txt") for i in range(3)]
    pool = pypoolparty.local.Pool(work_dir=tmp_path / "work", polling_interval=0.05)
    assert pool.map(read, tasks, chunksize=2) == [["str", f"input {i}"] for i in range(3)]


def test_a_missing_input_file_is_an_error_before_anything_is_submitted(tmp_path):
    (tmp_path / "there.txt").write_text("here")
    tasks = [pypoolparty.InputFile(tmp_path / "there.txt"), pypoolparty.InputFile("nowhere.txt")]
    pool = pypoolparty.local.Pool(work_dir=tmp_path / "work", polling_interval=0.05)
    with pytest.raises(pypoolparty.BadInput) as raised:
        pool.map(read, tasks, chunksize=1)
    message = str(raised.value)
    assert os.path.abspath("nowhere.txt") in message
    assert "a task of chunk 1 (tasks 1..1)" in message
    assert "Nothing was submitted" in message
    assert not (tmp_path / "work").exists() or not any(
        name.startswith("map-") for name in os.listdir(tmp_path / "work")
    )


def test_without_a_shared_file_system_a_task_gets_the_path_in_its_scratch_directory(
    tmp_path, monkeypatch
):
    path = str(tmp_path / "data.h5")
    with input_files.collecting(shared_file_system=False) as collector:
        with input_files.pickling_chunk(7):
            data = cloudpickle.dumps({"file": pypoolparty.InputFile(path)})
    assert collector.files == {7: {path}}
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.chdir(scratch)
    task = pickle.loads(data)  # as the worker unpickles it: no pypoolparty needed
    assert task["file"] == os.path.join(str(scratch), input_files.local_path(path))
    assert task["file"].endswith("/data.h5")


def test_the_files_of_a_chunk_are_staged_private_beside_its_tasks(tmp_path):
    import zipfile

    session_dir = tmp_path / "map-1"
    session_dir.mkdir(mode=0o700)
    with zipfile.ZipFile(session_dir / "tasks.zip", "w") as archive:
        archive.writestr("0.pickle", b"chunk 0")
        archive.writestr("1.pickle", b"chunk 1")
    shared, own = tmp_path / "shared.txt", tmp_path / "own.txt"
    shared.write_text("every job")
    own.write_text("chunk 1 only")
    with input_files.collecting(shared_file_system=False) as collector:
        cloudpickle.dumps(pypoolparty.InputFile(shared))  # captured by the function
        with input_files.pickling_chunk(1):
            cloudpickle.dumps(pypoolparty.InputFile(own))
    collector.write_manifest(pypoolparty.work_dir.SessionDir(str(session_dir)))
    staged = {i: str(session_dir / "inputs" / str(i)) for i in (0, 1)}
    (session_dir / "inputs").mkdir(mode=0o700)
    job_files.stage_chunks(str(session_dir), staged)
    for ichunk, expected in ((0, [shared]), (1, [own, shared])):
        found = sorted(
            os.path.relpath(os.path.join(root, name), staged[ichunk])
            for root, _dirs, names in os.walk(os.path.join(staged[ichunk], "input_files"))
            for name in names
        )
        assert found == sorted(input_files.local_path(str(p)) for p in expected)
    copy = os.path.join(staged[1], input_files.local_path(str(own)))
    assert open(copy).read() == "chunk 1 only"
    assert os.stat(copy).st_mode & 0o777 == 0o600
