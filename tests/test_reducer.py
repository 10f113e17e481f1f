import os
import pickle
import zipfile

import cloudpickle

from pypoolparty import reducer, work_dir
from pypoolparty.scheduler import Job


def session(tmp_path, num_chunks=3):
    session_dir = work_dir.SessionDir(str(tmp_path / "map-x"))
    session_dir.create()
    bounds = [(2 * i, 2 * i + 2) for i in range(num_chunks)]
    return session_dir, reducer.Reducer(session_dir, bounds)


def write_outcome(session_dir, ichunk, tasks, setup_error=None):
    outcome = {"ichunk": ichunk, "host": "node7", "setup_error": setup_error, "tasks": tasks}
    with open(session_dir.outcome_path(ichunk), "wb") as file:
        pickle.dump(outcome, file)


def job_with_output(session_dir, ichunk):
    directory = session_dir.submission_dir("sub-1")
    job = Job(
        f"7_{ichunk}", ichunk, f"{directory}/{ichunk}.out", f"{directory}/{ichunk}.err", "ppp-1"
    )
    with open(job.stdout_path, "w") as file:
        file.write(f"stdout of {ichunk}\n")
    with open(job.stderr_path, "w") as file:
        file.write(f"stderr of {ichunk}\n")
    return job


def ok(itask, value):
    return {"itask": itask, "result": cloudpickle.dumps(value)}


def failed(itask):
    error = {"kind": "raised", "type": "builtins.ValueError", "message": "m", "traceback": "tb"}
    return {"itask": itask, "error": dict(error, exception=None)}


def test_fold_archives_outcomes_and_outputs_then_deletes_them(tmp_path):
    session_dir, folder = session(tmp_path)
    write_outcome(session_dir, 1, [ok(2, "a"), failed(3)])
    job = job_with_output(session_dir, 1)
    assert folder.arrived() == [1]
    (folded,) = folder.fold({1: job})
    assert folded.num_failed_tasks == 1 and folded.first_failure.itask == 3
    assert folder.arrived() == []
    assert not os.path.exists(job.stdout_path) and not os.path.exists(job.stderr_path)
    with zipfile.ZipFile(session_dir.archive_path("stdout")) as archive:
        assert archive.read("1.txt") == b"stdout of 1\n"
    with zipfile.ZipFile(session_dir.archive_path("exceptions")) as archive:
        assert "ValueError: m" in archive.read("3.txt").decode()
    # a chunk with failures is kept apart, so a later call runs it again
    assert folder.archived_chunks() == set()


def test_fully_successful_chunks_are_archived_and_loadable(tmp_path):
    session_dir, folder = session(tmp_path)
    write_outcome(session_dir, 0, [ok(0, 10), ok(1, 11)])
    folder.fold({0: None})
    assert folder.archived_chunks() == {0}
    loaded = folder.load_outcome(0)
    assert [cloudpickle.loads(t["result"]) for t in loaded["tasks"]] == [10, 11]


def test_a_corrupt_outcome_is_dropped_so_its_chunk_counts_as_not_done(tmp_path):
    session_dir, folder = session(tmp_path)
    with open(session_dir.outcome_path(2), "wb") as file:
        file.write(b"\x80\x04truncated")
    assert folder.fold({2: None}) == []
    assert folder.arrived() == []
    assert folder.archived_chunks() == set()


def test_a_setup_error_counts_as_the_failure_of_the_chunks_first_task(tmp_path):
    session_dir, folder = session(tmp_path)
    error = {"kind": "raised", "type": "ModuleNotFoundError", "message": "no module x"}
    write_outcome(session_dir, 2, [], setup_error=dict(error, traceback="", exception=None))
    (folded,) = folder.fold({2: None})
    assert folded.first_failure.itask == 4


def test_failed_attempts_keep_their_output_under_the_attempt_number(tmp_path):
    session_dir, folder = session(tmp_path)
    job = job_with_output(session_dir, 0)
    assert folder.fold_failed_attempt(job, job.ichunk, attempt=2) == "stderr of 0\n"
    with zipfile.ZipFile(session_dir.archive_path("stderr")) as archive:
        assert archive.namelist() == ["0.attempt2.txt"]
