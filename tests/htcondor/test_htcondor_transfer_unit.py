"""Without a shared file system: the submit description, the staged files, the parsers.

The real HTCondor runs these maps in ``test_htcondor_real_transfer.py``.
"""

from __future__ import annotations

import os
import stat
import zipfile

import pytest

from dummy_queues import DummyHTCondor
from pypoolparty import BadInput, job_files, task_records
from pypoolparty.commands import Completed, RetryPolicy
from pypoolparty.htcondor import Pool, spool, states, submitfile
from pypoolparty.htcondor.options import ClusterOptions, checked_options
from pypoolparty.scheduler import JobState, Submission, WorkerCall

dummy_submit_file = DummyHTCondor.module("submit_file")
SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")


def render_without_shared_file_system(session_dir="submit-host/maps/map-1"):
    worker = WorkerCall(
        "/usr/bin/python3",
        f"{session_dir}/worker.py",
        session_dir,
        launcher_path=f"{session_dir}/launcher.sh",
        working_dir="submit-host/home",
    )
    submission = Submission([4, 2, 9], "ppp-abc-1", worker, f"{session_dir}/scheduler/ppp-abc-1")
    text = submitfile.render(submission, ClusterOptions(shared_file_system=False))
    return text, dummy_submit_file.parse(text)


def test_the_job_names_no_path_of_the_submit_host():
    text, description = render_without_shared_file_system()
    commands = description["commands"]
    arguments = dummy_submit_file.split_arguments(commands["arguments"])
    assert commands["executable"] == "/bin/bash"
    assert commands["transfer_executable"] == "False"
    assert arguments == [
        "launcher.sh",
        "/usr/bin/python3",
        "worker.py",
        ".",
        "--ichunk",
        "$(ichunk)",
    ]
    # Only the initial directory, on the submit side, names the session directory.
    assert [line for line in text.splitlines() if "submit-host/" in line] == [
        "initialdir = submit-host/maps/map-1"
    ]
    assert "log" not in commands


def test_each_job_gets_the_shared_files_and_its_own_chunk_and_sends_back_its_outcome():
    _, description = render_without_shared_file_system()
    commands = description["commands"]
    assert commands["should_transfer_files"] == "YES"
    assert commands["when_to_transfer_output"] == "ON_EXIT_OR_EVICT"
    inputs = [name.strip() for name in commands["transfer_input_files"].split(",")]
    assert inputs == [
        "worker.py",
        "worker_config.json",
        "function.pickle",
        "launcher.sh",
        "environment.sh",
        "setup.sh",
        "scheduler/ppp-abc-1/inputs/$(ichunk)/",
    ]
    assert commands["transfer_output_files"] == "outcomes, partial, outputs, checkpoints"
    assert commands["output"] == "scheduler/ppp-abc-1/chunk-$(ichunk).stdout"
    assert commands["error"] == "scheduler/ppp-abc-1/chunk-$(ichunk).stderr"
    assert description["items"] == ["4", "2", "9"]


def test_a_shared_file_system_transfers_nothing():
    worker = WorkerCall("/usr/bin/python3", "/w/worker.py", "/w")
    submission = Submission([0], "ppp-abc-1", worker, "/w/scheduler/ppp-abc-1")
    commands = dummy_submit_file.parse(submitfile.render(submission, ClusterOptions()))["commands"]
    assert commands["should_transfer_files"] == "NO"
    assert "transfer_input_files" not in commands


def test_transfer_directives_are_the_pools_own_without_a_shared_file_system():
    with pytest.raises(ValueError, match="transfer_input_files"):
        checked_options(
            submit_directives={"transfer_input_files": "data.h5"}, shared_file_system=False
        )
    options = checked_options(submit_directives={"transfer_input_files": "data.h5"})
    assert options.shared_file_system is True


@pytest.mark.parametrize(
    "options, refused",
    [
        ({"num_simultaneously_running_tasks": 4}, "num_simultaneously_running_tasks"),
        ({"tasks_per_job": 2}, "tasks_per_job=2 needs shared_file_system=True"),
        ({"shared_file_system": "no"}, "shared_file_system"),
    ],
)
def test_options_that_need_a_shared_file_system_are_refused_at_once(options, refused):
    with pytest.raises((BadInput, ValueError), match=refused):
        Pool(**{"shared_file_system": False, **options})


def test_a_chunk_is_staged_alone_with_its_records(tmp_path):
    session_dir = tmp_path / "map-1"
    session_dir.mkdir(mode=0o700)
    with zipfile.ZipFile(session_dir / "tasks.zip", "w") as archive:
        for ichunk in range(3):
            archive.writestr(f"{ichunk}.pickle", f"tasks of chunk {ichunk}".encode())
    records = session_dir / task_records.DIRECTORY
    records.mkdir(mode=0o700)
    (records / "1.node.12.ab.records").write_bytes(b"records of chunk 1")
    (records / "2.node.13.cd.records").write_bytes(b"records of chunk 2")
    submission_dir = session_dir / "scheduler" / "ppp-1"  # as the session makes it
    submission_dir.mkdir(parents=True)
    for path in (submission_dir.parent, submission_dir):
        path.chmod(0o700)
    staged = submission_dir / "inputs" / "1"
    job_files.stage_chunks(str(session_dir), {1: str(staged)})
    with zipfile.ZipFile(staged / "tasks.zip") as archive:
        assert {n: archive.read(n) for n in archive.namelist()} == {"1.pickle": b"tasks of chunk 1"}
    assert os.listdir(staged / "partial") == ["1.node.12.ab.records"]
    assert (staged / "partial" / "1.node.12.ab.records").read_bytes() == b"records of chunk 1"
    assert os.listdir(staged / "outcomes") == []
    for root, _dirs, files in os.walk(session_dir / "scheduler"):
        assert stat.S_IMODE(os.stat(root).st_mode) == 0o700, root
        for name in files:
            assert stat.S_IMODE(os.stat(os.path.join(root, name)).st_mode) == 0o600, name


def test_the_exits_of_spooled_procs_from_condor_q():
    with open(os.path.join(SAMPLES, "condor_q_af_t_exit_status_spooled.txt")) as file:
        stdout = file.read()
    exits = spool.exits(Completed(("condor_q",), 0, stdout, ""))
    assert exits == [
        spool.Exit("246.0", "exit code 0"),
        spool.Exit("246.1", "exit code 3"),
        spool.Exit("246.2", "signal 9"),
    ]
    states_ = [states.status_after_termination("4", e.termination).state for e in exits]
    assert states_ == [JobState.ENDED, JobState.ERROR, JobState.ERROR]


def test_a_proc_whose_inputs_are_still_spooling_is_pending():
    status = spool.spooling_status(16, "Spooling input data files")
    assert status.state is JobState.PENDING and status.reason == "Spooling input data files"
    assert spool.spooling_status(3, "The job attribute OnExitHold expression") is None


def test_a_submission_that_sends_much_through_the_schedd_is_warned_about(
    tmp_path, monkeypatch, caplog
):
    session_dir = tmp_path / "map-1"
    session_dir.mkdir()
    (session_dir / "function.pickle").write_bytes(b"f" * 3000)  # captured data
    staged = []
    for ichunk in range(4):
        directory = session_dir / "inputs" / str(ichunk)
        directory.mkdir(parents=True)
        (directory / "tasks.zip").write_bytes(b"t" * 100)
        staged.append(str(directory))
    assert job_files.transfer_size(str(session_dir), staged) == (3000, 4 * 3000 + 4 * 100)
    assert job_files.warn_if_large(str(session_dir), staged) is None
    monkeypatch.setattr(job_files, "TRANSFER_WARNING_BYTES", 10_000)
    with caplog.at_level("WARNING", logger="pypoolparty"):
        message = job_files.warn_if_large(str(session_dir), staged)
    assert message is not None and message in caplog.text
    assert "4 job(s) of this map get 12.1 KiB by file transfer; each job gets up to 3.0 KiB" in (
        message
    )
    assert "2.9 KiB that every job gets" in message and "up to 100 bytes of its own" in message


@pytest.mark.parametrize("shared_file_system", [False, True])
def test_cancelling_one_held_proc_removes_only_that_proc(tmp_path, monkeypatch, shared_file_system):
    """A held proc of a cluster without late materialization goes alone: the
    others of its cluster keep running (without a shared file system nothing
    is ever in the submit host's event log, which once made the whole cluster
    go)."""
    from pypoolparty.htcondor import parsing
    from pypoolparty.htcondor import scheduler as htcondor_scheduler

    removed: list[list[str]] = []
    queue = [parsing.QueuedJob(7, 0, "5", 1, "via condor_hold (by user someone)")] + [
        parsing.QueuedJob(7, proc, "2", None, "") for proc in range(1, 6)
    ]

    def call(args, parse, policy, **kwargs):
        command = os.path.basename(args[0])
        if command == "condor_rm":
            removed.append(list(args[1:]))
            return True
        assert command == "condor_q", args
        return queue

    monkeypatch.setattr(htcondor_scheduler.commands, "call", call)
    monkeypatch.setattr(htcondor_scheduler.commands, "ask", lambda *args, **kwargs: 7)
    directory = tmp_path / "ppp-abc-1"
    directory.mkdir()
    worker = WorkerCall("/usr/bin/python3", "worker.py", str(tmp_path))
    submission = Submission(list(range(6)), "ppp-abc-1", worker, str(directory))
    scheduler = htcondor_scheduler.HTCondorScheduler(
        ClusterOptions(shared_file_system=shared_file_system), RetryPolicy(timeout=5.0)
    )
    jobs = scheduler.recover(submission)
    statuses = scheduler.query(jobs)
    assert statuses[jobs[0].jobid].state is JobState.ERROR  # someone else's hold
    scheduler.cancel(jobs[:1])
    assert removed == [["7.0"]]
