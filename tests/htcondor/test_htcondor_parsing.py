"""The parsers against output captured from a real HTCondor 23.9.6."""

from __future__ import annotations

import os

import pytest

from pypoolparty.htcondor import eventlog, parsing

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")


def sample(name: str) -> str:
    with open(os.path.join(SAMPLES, name)) as file:
        return file.read()


def command_sample(name: str) -> tuple[str, int]:
    """A captured condor_rm answer; the capture appended ``rc=<exit code>``."""
    text = sample(name)
    body, _, rc_line = text.rstrip("\n").rpartition("\n")
    assert rc_line.startswith("rc=")
    return body, int(rc_line[3:])


def test_terse_submit_output_gives_cluster_and_procs():
    assert parsing.parse_submit_output(sample("condor_submit_terse.stdout")) == (10, 0, 2)


def test_plain_submit_output_gives_cluster_and_procs():
    assert parsing.parse_submit_output(sample("condor_submit_plain.stdout")) == (3, 0, 3)


@pytest.mark.parametrize("garbage", ["", "Submitting job(s)\n", "10.0 - 9.2\n", "<html>\n"])
def test_submit_output_without_cluster_is_an_error(garbage):
    with pytest.raises(ValueError):
        parsing.parse_submit_output(garbage)


@pytest.mark.parametrize(
    "name, words",
    [
        ("bad1", "ERROR: Executable file /no/such/python does not exist"),
        ("bad2", "Reached end of file without finding closing brace"),
        ("bad3", "ERROR: Failed to parse command file (line 3)."),
    ],
)
def test_rejections_keep_condor_submits_words_and_are_not_retried(name, words):
    message = parsing.submit_error_message(sample(f"condor_submit_rejected_{name}.stderr"))
    assert words in message
    assert not parsing.is_unreachable_schedd(message)


def test_an_unreachable_schedd_is_worth_retrying():
    message = parsing.submit_error_message(sample("condor_submit_no_schedd.stderr"))
    assert "Can't find address of local schedd" in message
    assert parsing.is_unreachable_schedd(message)


def test_condor_q_lines_with_policy_hold():
    jobs = parsing.parse_condor_q(sample("condor_q_af_t_held_by_policy.txt"))
    assert [(j.cluster, j.proc, j.job_status) for j in jobs][:2] == [(2, 0, "2"), (2, 1, "5")]
    held = jobs[1]
    assert held.hold_reason_code == 3
    assert held.hold_reason.startswith("The job attribute OnExitHold expression")
    assert jobs[0].hold_reason_code is None and jobs[0].hold_reason == ""


def test_condor_q_lines_with_user_holds():
    jobs = {
        (j.cluster, j.proc): j
        for j in parsing.parse_condor_q(sample("condor_q_af_t_user_held.txt"))
    }
    assert jobs[(3, 0)].hold_reason == "via condor_hold (by user condoruser)"
    assert jobs[(3, 2)].hold_reason == "paused by test (by user condoruser)"
    assert jobs[(3, 0)].hold_reason_code == jobs[(3, 2)].hold_reason_code == 1


def test_condor_q_without_jobs_prints_nothing():
    assert parsing.parse_condor_q("") == []


@pytest.mark.parametrize(
    "garbage",
    ["1.0 R\x07 %%% ???\n", "9\t0\n", "x\t0\t1\tundefined\tundefined\n", "1\t0\t2\tmany\tx\n"],
)
def test_garbled_condor_q_is_an_error(garbage):
    with pytest.raises(ValueError):
        parsing.parse_condor_q(garbage)


@pytest.mark.parametrize(
    "name, fine",
    [
        ("condor_rm_proc.stdout", True),
        ("condor_rm_cluster.stdout", True),
        ("condor_rm_cluster_gone.stdout", True),
        ("condor_rm_proc_gone.stdout", True),
        ("condor_rm_procs_some_gone.stdout", True),
    ],
)
def test_condor_rm_of_something_gone_is_fine(name, fine):
    output, _rc = command_sample(name)
    assert parsing.condor_rm_went_fine(output, "") is fine


def test_condor_rm_that_cannot_reach_the_schedd_is_not_fine():
    assert not parsing.condor_rm_went_fine("", "ERROR: Can't find address of local schedd\n")


def test_total_cpus_from_condor_status():
    assert parsing.parse_total_cpus(sample("condor_status_af_cpus.txt")) == 2
    assert parsing.parse_total_cpus("1\n1\n1\n") == 3
    assert parsing.parse_total_cpus("") is None


def test_event_log_of_a_late_materialized_cluster():
    events, consumed = eventlog.parse_events(sample("eventlog_materialize_4_procs.log").encode())
    assert consumed == len(sample("eventlog_materialize_4_procs.log").encode())
    assert events[0].code == eventlog.CLUSTER_SUBMITTED and events[0].proc == -1
    assert events[-1].code == eventlog.CLUSTER_REMOVED
    terminated = [e for e in events if e.code == eventlog.TERMINATED]
    assert sorted(e.proc for e in terminated) == [0, 1, 2, 3]
    assert {eventlog.termination_of(e) for e in terminated} == {"exit code 0"}


def test_event_log_holds_aborts_and_exit_codes():
    events, _ = eventlog.parse_events(sample("eventlog_held_removed_signal.log").encode())
    holds = {(e.cluster, e.proc): eventlog.hold_of(e) for e in events if e.code == eventlog.HELD}
    assert holds[(2, 1)].code == 3 and holds[(2, 1)].subcode == 0
    assert "OnExitHold" in holds[(2, 1)].reason
    assert holds[(3, 0)] == eventlog.Hold("via condor_hold (by user condoruser)", 1, 0)
    ends = {(e.cluster, e.proc): eventlog.termination_of(e) for e in events if e.code == 5}
    assert ends == {(2, 2): "exit code 3", (2, 3): "exit code 4", (3, 3): "exit code 4"}
    aborts = [eventlog.abort_reason_of(e) for e in events if e.code == eventlog.ABORTED]
    assert aborts and set(aborts) == {"via condor_rm (by user condoruser)"}


def test_event_log_is_read_incrementally_and_half_written_events_wait(tmp_path):
    data = sample("eventlog_held_removed_signal.log").encode()
    path = tmp_path / "events.log"
    reader = eventlog.EventLogReader(str(path))
    assert reader.read_new_events() == []  # not there yet
    cut = data.index(b"Code 3 Subcode 0")  # in the middle of the first hold event
    path.write_bytes(data[:cut])
    first = reader.read_new_events()
    assert first and all(e.code != eventlog.HELD for e in first)
    assert reader.read_new_events() == []  # nothing new
    with open(path, "ab") as file:
        file.write(data[cut:])
    rest = reader.read_new_events()
    assert rest[0].code == eventlog.HELD
    everything, _ = eventlog.parse_events(data)
    assert first + rest == everything
