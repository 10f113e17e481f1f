"""The parsers, on output captured from a real Son of Grid Engine 8.1.9."""

from __future__ import annotations

import os

import pytest

from pypoolparty import commands
from pypoolparty.scheduler import JobState
from pypoolparty.sun_grid_engine import parsing

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")


def sample(name: str) -> str:
    with open(os.path.join(SAMPLES, name)) as file:
        return file.read()


def test_qsub_terse_gives_the_job_number_of_an_array_job():
    assert parsing.parse_qsub_terse(sample("qsub_terse_array.txt")) == "4"


@pytest.mark.parametrize("garbage", ["", "Your job 3 has been submitted", "x17", "<html>"])
def test_qsub_terse_refuses_anything_but_a_job_number(garbage):
    with pytest.raises(ValueError):
        parsing.parse_qsub_terse(garbage)


@pytest.mark.parametrize(
    "name, reason",
    [
        (
            "qsub_unknown_queue.txt",
            'Job was rejected because job requests unknown queue "nosuch.q"',
        ),
        ("qsub_unknown_resource.txt", 'unknown resource "h_vmemx"'),
        (
            "qsub_unknown_pe.txt",
            'job rejected: the requested parallel environment "nosuchpe" does not exist',
        ),
    ],
)
def test_qsub_rejection_message_is_qsubs_reason(name, reason):
    output = sample(name)
    assert parsing.qsub_rejection_message(output) == reason
    assert not parsing.is_unreachable(output)


def test_a_qmaster_that_cannot_be_reached_is_recognised():
    output = (
        "error: commlib error: got select error (Connection refused)\n"
        'Unable to run job: unable to send message to qmaster using port 6444 on host "vm": '
        "got send error\nExiting.\n"
    )
    assert parsing.is_unreachable(output)


def test_expand_task_ids_reads_qstats_compressed_ranges():
    assert parsing.expand_task_ids("1,4-6:1") == (1, 4, 5, 6)
    assert parsing.expand_task_ids("1-10:3") == (1, 4, 7, 10)
    assert parsing.expand_task_ids("2,3") == (2, 3)
    assert parsing.expand_task_ids("") == ()
    with pytest.raises(ValueError):
        parsing.expand_task_ids("1-x")


def test_qstat_xml_lists_running_and_waiting_array_tasks():
    entries = parsing.parse_qstat_xml(sample("qstat_xml_array_eqw_held_suspended.xml"))
    by_state = {(e.job_number, e.state): e.tasks for e in entries}
    assert by_state == {
        ("11", "hr"): (1,),
        ("11", "s"): (3,),
        ("11", "Eqw"): (2,),
        ("11", "qw"): (4,),
        ("12", "qw"): (1, 4, 5, 6),
        ("12", "hqw"): (2, 3),
    }
    assert {e.name for e in entries} == {"arrerr", "arrpend"}


def test_qstat_xml_of_plain_jobs_has_no_task_ids():
    entries = parsing.parse_qstat_xml(sample("qstat_xml_eqw_held.xml"))
    assert [(e.job_number, e.name, e.state, e.tasks) for e in entries] == [
        ("9", "eqwjob", "Eqw", ()),
        ("10", "heldjob", "hqw", ()),
    ]


def test_qstat_xml_with_transferring_and_deleted_tasks():
    entries = parsing.parse_qstat_xml(sample("qstat_xml_deleting.xml"))
    states = {(e.job_number, e.state, e.tasks) for e in entries}
    assert ("11", "ds", (3,)) in states
    assert ("12", "t", (1,)) in states


def test_qstat_xml_with_no_jobs_is_empty():
    assert parsing.parse_qstat_xml(sample("qstat_xml_empty.xml")) == []


@pytest.mark.parametrize("garbage", ["", "error: commlib error", "<html></html>", "<job_info>"])
def test_qstat_xml_refuses_garbage(garbage):
    with pytest.raises(ValueError):
        parsing.parse_qstat_xml(garbage)


@pytest.mark.parametrize(
    "states, expected",
    [
        (["qw", "Rq", "w", "dqw"], JobState.PENDING),
        (["hqw", "hRwq"], JobState.HELD),
        (["r", "t", "Rr", "Rt", "hr", "s", "S", "T", "ds", "dr", "dt", "hs"], JobState.RUNNING),
        (["Eqw", "Ehqw", "dEqw"], JobState.ERROR),
        (["z"], JobState.ENDED),
        (["", "X", "qwx", "?", "d"], JobState.UNKNOWN),
    ],
)
def test_every_state_word_maps_to_a_job_state(states, expected):
    assert {state: parsing.job_state(state) for state in states} == dict.fromkeys(states, expected)


def test_every_state_seen_in_the_samples_is_known():
    names = [n for n in os.listdir(SAMPLES) if n.startswith("qstat_xml") and "_j_" not in n]
    seen = {e.state for n in names for e in parsing.parse_qstat_xml(sample(n))}
    assert {"qw", "hqw", "r", "t", "Eqw", "hr", "s", "ds"} <= seen
    assert JobState.UNKNOWN not in {parsing.job_state(s) for s in seen}


def test_qstat_j_error_reason_of_a_plain_job():
    reasons = parsing.parse_qstat_j_error_reasons(sample("qstat_j_eqw.txt"))
    assert list(reasons) == [1]
    assert reasons[1].endswith(
        'error: can\'t open output file "/nonexistent/dir/out": No such file or directory'
    )


def test_qstat_j_error_reason_of_an_array_task_is_keyed_by_task_id():
    reasons = parsing.parse_qstat_j_error_reasons(sample("qstat_j_array_eqw.txt"))
    assert list(reasons) == [2]
    assert "d2/out" in reasons[2]


def test_qstat_j_of_an_unknown_job_has_no_reasons():
    assert parsing.parse_qstat_j_error_reasons(sample("qstat_j_unknown.txt")) == {}


def test_qstat_g_c_gives_usable_slots():
    text = sample("qstat_g_c.txt")
    assert parsing.parse_qstat_g_c(text) == 2
    assert parsing.parse_qstat_g_c(text, "all.q") == 2
    assert parsing.parse_qstat_g_c(text, "other.q") is None


def test_qdel_output_of_deletions_and_vanished_jobs_has_no_problems():
    for name in ["qdel_two_jobs.txt", "qdel_array_mixed.txt", "qdel_task_and_unknown.txt"]:
        assert parsing.qdel_problems(sample(name)) == []
    assert parsing.qdel_problems(sample("qdel_unknown.txt")) == []


def test_qdel_output_that_is_not_a_deletion_is_a_problem():
    output = "error: commlib error: got select error (Connection refused)\n"
    assert parsing.qdel_problems(output) == [output.strip()]


def test_qstat_g_c_with_the_execd_down_gives_the_configured_slots():
    # Captured with sge_execd stopped: both slots unusable ("u"). Chunking for
    # the configured size beats assuming a huge cluster.
    assert parsing.parse_qstat_g_c(sample("qstat_g_c_execd_down.txt")) == 2


# ------------------------------------------------------ failure classification


def test_an_output_path_that_does_not_exist_cannot_be_cured_by_resubmitting():
    reasons = parsing.parse_qstat_j_error_reasons(sample("qstat_j_eqw.txt"))
    status = parsing.error_status("Eqw", reasons[1])
    assert status.state is JobState.ERROR and not status.curable
    assert "can't open output file" in status.reason and "work_dir" in status.fix


@pytest.mark.parametrize(
    "reason, curable",
    [
        ("error: can't chdir to /nonexistent/wd: No such file or directory", False),
        ('unable to find shell "/nonexistent/shell"', False),
        ('error: can\'t open output file "/home/bob/forbidden.out": Permission denied', False),
        ('error: can\'t open output file "/nfs/out": Stale file handle', True),
        ("exit_status of job start = 100", True),
        ("", True),
    ],
)
def test_error_reasons_sorted_by_whether_a_resubmission_may_cure_them(reason, curable):
    assert parsing.error_status("Eqw", reason).curable is curable


def test_a_users_own_hold_is_held_and_an_operators_or_the_systems_is_an_error():
    (entry,) = parsing.parse_qstat_xml(sample("qstat_xml_s_hu.xml"))  # qstat -s hu
    assert entry.state == "hqw"
    assert parsing.held_status("hqw", user_hold=True).state is JobState.HELD
    other = parsing.held_status("hqw", user_hold=False)
    assert other.state is JobState.ERROR and other.curable


def test_qacct_tells_a_clean_exit_from_a_failed_one_and_a_segfault():
    records = parsing.parse_qacct(sample("qacct_j_array_exit_0_1_segv.txt"))
    assert sorted(records) == [1, 2, 3]
    assert records[1].status().state is JobState.ENDED
    failed = records[2].status()
    assert failed.state is JobState.ERROR and failed.curable and "exit_status 1" in failed.reason
    segfault = records[3].status()
    assert segfault.state is JobState.ERROR and "Segmentation fault" in segfault.reason


def test_qacct_reasons_read_without_qaccts_column_padding():
    # qacct pads the exit status to a column: "139                  (Segmentation fault)".
    segfault = parsing.parse_qacct(sample("qacct_j_array_exit_0_1_segv.txt"))[3].status()
    assert "exit_status 139 (Segmentation fault)" in segfault.reason
    assert "failed 100 : assumedly after job" in segfault.reason
    (killed,) = parsing.parse_qacct(sample("qacct_j_h_rt_killed.txt")).values()
    assert "exit_status 137 (Killed); failed 37 : qmaster enforced" in killed.status().reason


def test_qacct_of_a_job_without_a_record_yet_is_no_answer():
    text = sample("qacct_j_unknown.txt")
    assert parsing.parse_qacct_command(commands.Completed(("qacct",), 1, "", text)) == {}


# -- time limits and rescheduling (samples from jobs killed for real) ---------


def test_a_job_killed_at_its_h_rt_timed_out_and_names_h_rt():
    (record,) = parsing.parse_qacct(sample("qacct_j_h_rt_killed.txt")).values()
    status = record.status()
    assert status.state is JobState.ERROR and status.curable
    assert "h_rt=5" in status.time_limit and "resources" in status.time_limit
    assert "failed 37" in status.reason and not status.by_the_cluster


def test_every_task_of_an_array_killed_at_its_h_rt_timed_out():
    records = parsing.parse_qacct(sample("qacct_j_array_h_rt_killed.txt"))
    assert sorted(records) == [1, 2]
    assert all("h_rt=4" in record.status().time_limit for record in records.values())


def test_a_job_warned_by_notify_before_its_h_rt_kill_timed_out_too():
    # -notify: SIGUSR2 at h_rt; this job then ended by itself (exit 0)
    # before the kill, but qacct still says failed 37.
    (record,) = parsing.parse_qacct(sample("qacct_j_h_rt_notify.txt")).values()
    assert "h_rt=5" in record.status().time_limit


def test_a_qdel_of_a_job_with_an_h_rt_is_no_time_limit():
    (record,) = parsing.parse_qacct(sample("qacct_j_qdel_with_h_rt.txt")).values()
    status = record.status()
    assert status.state is JobState.ERROR and status.time_limit == ""
    assert "Killed" in status.reason


def test_the_record_of_a_rescheduled_run_is_the_clusters_doing():
    text = sample("qacct_j_rescheduled_qmod_rj.txt")
    # Two records: the run qmod -rj stopped, then the rerun, which counts.
    first, rerun = text.split("=" * 62)[1:]
    (stopped,) = parsing.parse_qacct("=" * 62 + first).values()
    status = stopped.status()
    assert status.state is JobState.ERROR and status.by_the_cluster
    assert "rescheduling" in status.reason
    assert parsing.parse_qacct(text)[1].status().state is JobState.ENDED


def test_a_rescheduled_task_waits_in_the_queue_as_rq():
    entries = parsing.parse_qstat_xml(sample("qstat_xml_rescheduled_rq.xml"))
    rescheduled = [e for e in entries if e.state == "Rq"]
    assert [e.tasks for e in rescheduled] == [(1,)]
    assert parsing.job_state("Rq") is JobState.PENDING
    assert parsing.job_state("Rr") is JobState.RUNNING


def test_qstat_gives_when_running_tasks_started_and_none_for_waiting_ones():
    entries = parsing.parse_qstat_xml(sample("qstat_xml_mixed.xml"))
    running = [e for e in entries if parsing.job_state(e.state) is JobState.RUNNING]
    waiting = [e for e in entries if parsing.job_state(e.state) is JobState.PENDING]
    assert running and waiting
    assert running[0].start_time == "2026-11-21T21:43:17"
    assert parsing.start_time_seconds(running[0].start_time) is not None
    assert {e.start_time for e in waiting} == {""}


@pytest.mark.parametrize(
    "text, seconds",
    [("5", 5), ("0:0:5", 5), ("1:30", 90), ("1:00:00", 3600), ("::7", 7), ("INFINITY", None)],
)
def test_grid_engine_time_values(text, seconds):
    assert parsing.time_value_seconds(text) == seconds


def test_without_accounting_a_job_gone_after_its_h_rt_was_killed_at_it():
    assert "h_rt=0:0:5" in parsing.killed_at_run_time_limit("0:0:5", 100.0, 105.5)
    assert parsing.killed_at_run_time_limit("0:0:5", 100.0, 103.0) == ""
    assert parsing.killed_at_run_time_limit("0:0:5", None, 1000.0) == ""
