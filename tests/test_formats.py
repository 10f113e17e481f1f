"""One round trip per on-disk format: the map's writer writes, the command line's reader reads."""

import os
import pickle
import socket
import zipfile

import hand_built_sessions

from pypoolparty import archive, event_log, inspection, outcome, work_dir, worker
from pypoolparty.inspection.chunk_states import ChunkLedger
from pypoolparty.inspection.outcomes import archived_chunks
from pypoolparty.inspection.process import state_from_lock
from pypoolparty.reducer import Reducer
from pypoolparty.scheduler import Job


def new_session(base, num_tasks=6, chunksize=2) -> work_dir.SessionDir:
    """A session directory with its ``session.json``, as the map prepares it."""
    return hand_built_sessions.new_session(base, num_tasks, chunksize, star=True)


def worker_outcome(ichunk, itasks, failing=()):
    """An outcome as the worker builds it, the failing tasks having raised."""
    tasks = [
        hand_built_sessions.task_record(itask, 1.0, 2.0, itask in failing, itask * itask)
        for itask in itasks
    ]
    return {
        "format": worker.OUTCOME_FORMAT,
        "ichunk": ichunk,
        "host": "node7",
        "pid": 42,
        "start": 1.0,
        "end": 2.0,
        "setup_error": None,
        "tasks": tasks,
    }


def job_with_output(session_dir, ichunk, text):
    directory = session_dir.submission_dir("sub-1")
    job = Job(
        f"7_{ichunk}", ichunk, f"{directory}/{ichunk}.out", f"{directory}/{ichunk}.err", "sub-1"
    )
    for path, stream in ((job.stdout_path, "stdout"), (job.stderr_path, "stderr")):
        with open(path, "w") as file:
            file.write(f"{stream} {text}\n")
    return job


# -- the archives -------------------------------------------------------------


def test_archive_members_are_read_back_with_and_without_a_central_directory(tmp_path):
    path = str(tmp_path / "results.zip")
    archive.append(path, {"0.pickle": b"a" * 1000, "1.pickle": b"b"})
    archive.append(path, {"2.pickle": b"c" * 100})
    listed = [member.name for member in archive.members(path)]
    assert listed == ["0.pickle", "1.pickle", "2.pickle"]
    assert archive.read_member(path, "2.pickle") == b"c" * 100
    with zipfile.ZipFile(path) as z:
        start_of_directory = z.start_dir
    with open(path, "r+b") as file:
        file.truncate(start_of_directory)  # as if killed while rewriting the directory
    before = open(path, "rb").read()
    assert [member.name for member in archive.members(path)] == listed
    wanted = {"0.pickle", "2.pickle"}.__contains__
    assert [data for _, data in archive.contents(path, wanted)] == [b"a" * 1000, b"c" * 100]
    assert open(path, "rb").read() == before, "reading must not repair"
    assert archive.repair(path) == 3  # the same walk, now rewriting
    assert sorted(archive.names(path)) == sorted(listed)


def test_an_archive_member_that_fails_its_crc_is_not_there(tmp_path):
    path = str(tmp_path / "stdout.zip")
    archive.append(path, {"0.txt": b"x" * 500, "1.txt": b"kept"})
    (first, _) = archive.members(path)
    with open(path, "r+b") as file:
        file.seek(first.offset + 30 + len("0.txt") + 2)
        file.write(b"\xff\xff")  # overwritten while it is read
    assert archive.read_member(path, "0.txt") is None
    assert archive.read_member(path, "1.txt") == b"kept"
    assert archive.read_member(path, "2.txt") is None


# -- the event log ------------------------------------------------------------


def test_every_event_the_map_writes_is_read_back_by_the_command_line(tmp_path, caplog):
    path = str(tmp_path / "log.jsonl")
    log = event_log.EventLog(path)
    log.write(event_log.SESSION_STARTED, resuming=False, pid=1)
    log.write(event_log.SUBMITTING, submission="s-1", chunks=event_log.consecutive_runs([0, 1, 3]))
    log.write(
        event_log.SUBMITTED,
        submission="s-1",
        jobs=[event_log.job_row(f"9_{i}", i, f"{i}.out", f"{i}.err") for i in (0, 1, 3)],
    )
    log.write(event_log.JOB_STATE, jobid="9_0", ichunk=0, state="running", scheduler_state="R")
    log.write(event_log.JOB_STATE, jobid="9_3", ichunk=3, state="held", reason="by user")
    log.write(event_log.JOB_FAILED, jobid="9_1", ichunk=1, attempt=1, reason="node died")
    log.write(event_log.CHUNK_DONE, ichunk=0, failed_tasks=2)
    log.write(event_log.SESSION_ABORTED, error="KeyboardInterrupt: ", cancelled_jobs=0)
    log.close()
    with open(path, "a") as file:
        file.write('{"time":1,"event":"job_st')  # the line being written

    events = list(event_log.read(path))
    assert not caplog.records, "a torn line is expected: no warning on the inspector's stderr"
    assert [e["event"] for e in events][:3] == ["session_started", "submitting", "submitted"]
    assert len(events) == 8
    assert event_log.chunks_of_submitting(events[1]) == [0, 1, 3]
    assert list(event_log.jobs_of(events[2]))[2] == ("9_3", 3, "3.out", "3.err")
    assert event_log.first_event_time(path) == events[0]["time"]

    ledger = ChunkLedger(num_chunks=5)
    for event in events:
        ledger.replay(event)
    assert ledger.state == ["done", "job_failed", "not_submitted", "held", "not_submitted"]
    assert ledger.failed_tasks == {0: 2}
    assert ledger.num_jobs_submitted == 3 and ledger.num_scheduler_failures == 1
    assert ledger.stuck[3].reason == "by user"
    assert ledger.ending.ending == "interrupted"  # a Ctrl-C is not "an error"


def test_a_session_started_is_the_first_event_of_a_call(tmp_path):
    session_dir = new_session(str(tmp_path))
    log = event_log.EventLog(session_dir.log_path)
    log.write(event_log.SESSION_STARTED, resuming=True, pid=1)
    log.write(event_log.SESSION_RESUMED, done=0, adopted_jobs=0)
    log.write(event_log.SESSION_FAILED, reason="task raised", itask=3)
    log.close()
    status = inspection.session_status(work_dir.SessionInfo.at(session_dir.path))
    assert status.num_calls == 1 and status.last_event == "session_failed"
    assert status.process.ending == "task_failed" and "task 3" in status.process.detail


# -- the archives' member names -----------------------------------------------


def test_what_the_reducer_folds_the_command_line_finds_by_name(tmp_path):
    session_dir = new_session(str(tmp_path))
    reducer = Reducer(session_dir, [(0, 2), (2, 4), (4, 6)])
    worker.write_outcome(session_dir.path, 0, worker_outcome(0, [0, 1]))
    worker.write_outcome(session_dir.path, 1, worker_outcome(1, [2, 3], failing={3}))
    jobs = {0: job_with_output(session_dir, 0, "of chunk 0"), 1: None}
    reducer.fold(jobs)
    failed_job = job_with_output(session_dir, 2, "of attempt 1")
    reducer.fold_failed_attempt(failed_job, failed_job.ichunk, attempt=1)

    session = work_dir.SessionInfo.at(session_dir.path)
    assert archived_chunks(session) == ({0}, [1])
    assert reducer.archived_chunks() == {0}
    output = inspection.job_output(session, 1, "stdout")
    assert (output.source, output.data) == ("archive", b"stdout of chunk 0\n")
    attempt = inspection.job_output(session, 4, "stderr", attempt=1)
    assert attempt.data == b"stderr of attempt 1\n"
    assert [f.itask for f in inspection.task_failures(session)] == [3]
    assert [run.ichunk for run in inspection.chunk_runs(session)] == [0, 1]


# -- session.json -------------------------------------------------------------


def test_the_metadata_the_map_writes_is_what_the_command_line_shows(tmp_path):
    session_dir = new_session(str(tmp_path), num_tasks=7, chunksize=3)
    (session,) = inspection.find_sessions(str(tmp_path))
    assert session.path == session_dir.path
    assert session.name == f"map-{hand_built_sessions.FINGERPRINT[:16]}"
    assert (session.function, session.kind, session.scheduler) == ("square", "starmap", "local")
    assert (session.num_tasks, session.chunksize, session.num_chunks) == (7, 3, 3)
    assert session.submit_host == socket.gethostname()
    assert session.fingerprint == hand_built_sessions.FINGERPRINT
    assert session.tasks_of(2) == range(6, 7) and session.chunk_of(5) == 1
    assert work_dir.SessionMetadata.read(session_dir) == work_dir.SessionMetadata.read(session.dir)
    assert len(session.session_id) == 8 and int(session.session_id, 16) >= 0


# -- session.lock -------------------------------------------------------------


def test_the_lock_the_map_takes_names_this_process(tmp_path):
    session_dir = new_session(str(tmp_path))
    session = work_dir.SessionInfo.at(session_dir.path)
    assert state_from_lock(session, num_calls=1).ending == "interrupted"
    session_dir.acquire_lock()
    try:
        holder = work_dir.LockHolder.read(session_dir.lock_path)
        assert holder == work_dir.LockHolder(socket.gethostname(), os.getpid())
        state = state_from_lock(session, num_calls=1)
        assert state.ending == "running"
        assert state.detail == f"pid {os.getpid()} on host {socket.gethostname()}"
    finally:
        session_dir.release_lock()
    assert work_dir.LockHolder.read(session_dir.lock_path) is None


# -- outcomes and exceptions.zip's text ---------------------------------------


def test_a_failed_task_reads_back_as_the_worker_described_it(tmp_path):
    session_dir = new_session(str(tmp_path))
    reducer = Reducer(session_dir, [(0, 2), (2, 4), (4, 6)])
    written = worker_outcome(2, [4, 5], failing={4, 5})
    worker.write_outcome(session_dir.path, 2, written)
    reducer.fold({2: None})
    session = work_dir.SessionInfo.at(session_dir.path)
    reports = list(inspection.task_failures(session))
    assert [(r.itask, r.ichunk, r.host) for r in reports] == [(4, 2, "node7"), (5, 2, "node7")]
    error = written["tasks"][1]["error"]
    assert reports[1].type == error["type"] == "builtins.ValueError"
    assert reports[1].message == "bad task 5"
    assert reports[1].traceback == error["traceback"].strip("\n")
    assert reports[1].traceback.startswith("Traceback (most recent call last):")

    loaded = outcome.load_outcome(pickle.dumps(written))
    assert [f.itask for f in outcome.failed_tasks(loaded, first_itask=4)] == [4, 5]
    assert outcome.load_outcome(pickle.dumps(ValueError("code"))) is None


def test_the_text_of_exceptions_zip_parses_back_into_the_failure_it_describes():
    traceback = 'Traceback (most recent call last):\n  File "t.py", line 1\nm.E: a: b\n'
    raised = outcome.TaskFailure(9, {"type": "m.E", "message": "a: b", "traceback": traceback}, "n")
    too_large = outcome.TaskFailure(
        3, {"type": "ResultTooLarge", "message": "10 bytes", "traceback": ""}, "node-2.cluster"
    )
    for failure in (raised, too_large):
        ichunk, parsed = outcome.parse_failure(failure.itask, outcome.describe_failure(4, failure))
        assert ichunk == 4 and (parsed.itask, parsed.host) == (failure.itask, failure.host)
        expected = dict(failure.error, traceback=failure.error["traceback"].strip("\n"))
        assert parsed.error == expected


def test_the_stderr_tail_of_a_failed_job_is_the_same_for_the_map_and_the_command_line(tmp_path):
    session_dir = new_session(str(tmp_path))
    reducer = Reducer(session_dir, [(0, 2), (2, 4), (4, 6)])
    job = Job("7_0", 0, session_dir.join("0.out"), session_dir.join("0.err"), "sub-1")
    lines = [f"line {i}" for i in range(40)]
    for path in (job.stdout_path, job.stderr_path):
        with open(path, "w") as file:
            file.write("\n".join(lines) + "\n")
    tail_seen_by_the_map = outcome.last_lines(
        reducer.fold_failed_attempt(job, job.ichunk, attempt=1)
    )
    log = event_log.EventLog(session_dir.log_path)
    log.write(event_log.JOB_FAILED, jobid="7_0", ichunk=0, attempt=1, reason="node died")
    log.close()
    session = work_dir.SessionInfo.at(session_dir.path)
    (report,) = inspection.scheduler_trouble(session).job_failures
    assert report.stderr_tail == tail_seen_by_the_map
    assert report.stderr_tail.splitlines() == lines[-outcome.STDERR_TAIL_LINES :]


def test_a_refused_submission_leaves_its_chunks_not_submitted_for_the_command_line(tmp_path):
    path = str(tmp_path / "log.jsonl")
    log = event_log.EventLog(path)
    log.write(event_log.SESSION_STARTED, resuming=False, pid=1)
    log.write(event_log.SUBMITTING, submission="s-1", chunks=event_log.consecutive_runs([0, 1]))
    log.write(event_log.SUBMISSION_REJECTED, submission="s-1")
    log.write(event_log.SESSION_ABORTED, error="SubmissionRejected: no", cancelled_jobs=0)
    log.close()
    ledger = ChunkLedger(num_chunks=3)
    for event in event_log.read(path):
        ledger.replay(event)
    assert ledger.state == ["not_submitted"] * 3  # not "being submitted"
