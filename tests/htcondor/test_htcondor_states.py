"""JobStatus codes and job events mapped to the session's states."""

from __future__ import annotations

import os

import pytest

from pypoolparty.htcondor import eventlog, parsing, states
from pypoolparty.scheduler import JobState

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")


@pytest.mark.parametrize(
    "job_status, state",
    [
        ("1", JobState.PENDING),
        ("2", JobState.RUNNING),
        ("3", JobState.ERROR),
        ("4", JobState.ENDED),
        ("5", JobState.ERROR),
        ("6", JobState.RUNNING),
        ("7", JobState.RUNNING),
        ("8", JobState.UNKNOWN),
        ("undefined", JobState.UNKNOWN),
    ],
)
def test_every_job_status_has_a_state(job_status, state):
    assert states.status_from_job_status(job_status, 13, "some hold").state is state


def test_a_users_own_hold_is_left_alone_and_other_holds_are_errors():
    user = states.status_from_job_status("5", 1, "via condor_hold (by user alice)")
    assert user.state is JobState.HELD
    assert "via condor_hold (by user alice)" in user.reason
    policy = states.status_from_job_status("5", 34, "memory usage exceeded request_memory")
    assert policy.state is JobState.ERROR
    assert "memory usage exceeded" in policy.reason and "HoldReasonCode 34" in policy.reason


def events():
    with open(os.path.join(SAMPLES, "eventlog_held_removed_signal.log"), "rb") as file:
        return eventlog.parse_events(file.read())[0]


def last_status(cluster, proc, removed_by_us=False, until_code=None):
    status = None
    for event in events():
        if (event.cluster, event.proc) != (cluster, proc):
            continue
        if until_code is not None and event.code == until_code:
            break
        status = states.status_after_event(event, removed_by_us) or status
    return status


def test_events_walk_a_proc_through_its_states():
    assert last_status(2, 2, until_code=eventlog.EXECUTING).state is JobState.PENDING
    assert last_status(2, 2, until_code=eventlog.TERMINATED).state is JobState.RUNNING
    # A non-zero exit: the worker wrote no result; handled at once, resubmitted.
    ended = last_status(2, 2)
    assert ended.state is JobState.ERROR and ended.reason == "exit code 3" and ended.curable


def test_a_clean_exit_has_ended_and_its_result_file_decides():
    event = eventlog.Event(
        5, 7, 0, "", "Job terminated.", ("(1) Normal termination (return value 0)",)
    )
    assert states.status_after_event(event, removed_by_us=False).state is JobState.ENDED


@pytest.mark.parametrize("value, curable", [(126, False), (127, False), (1, True), (3, True)])
def test_the_launchers_cannot_run_the_interpreter_is_not_resubmitted(value, curable):
    event = eventlog.Event(
        5, 7, 0, "", "Job terminated.", (f"(1) Normal termination (return value {value})",)
    )
    status = states.status_after_event(event, removed_by_us=False)
    assert status.state is JobState.ERROR and status.curable is curable
    assert status.reason == f"exit code {value}"


@pytest.mark.parametrize("code", sorted(states.INCURABLE_HOLD_CODES))
def test_permission_path_and_process_holds_cannot_be_cured_by_resubmitting(code):
    status = states.status_from_job_status("5", code, "some hold")
    assert status.state is JobState.ERROR and not status.curable and status.fix


@pytest.mark.parametrize("code", [0, 3, 12, 13, 16, 21, 26, 34, 46])
def test_other_holds_are_errors_a_resubmission_may_cure(code):
    status = states.status_from_job_status("5", code, "some hold")
    assert status.state is JobState.ERROR and status.curable


def test_a_transfer_error_for_a_missing_or_forbidden_file_cannot_be_cured():
    for subcode in (2, 13):
        assert not states.held_status("5", "Transfer input files failure", 13, subcode).curable
    assert states.held_status("5", "Transfer input files failure", 13, 110).curable


def test_a_hold_by_another_user_is_an_admins_and_is_resubmitted():
    own = states.status_from_job_status("5", 1, "via condor_hold (by user alice)", "alice")
    admin = states.status_from_job_status("5", 1, "via condor_hold (by user root)", "alice")
    assert own.state is JobState.HELD
    assert admin.state is JobState.ERROR and admin.curable
    assert states.status_from_job_status("5", 15, "submitted on hold", "alice").state is (
        JobState.HELD
    )


def test_held_by_policy_is_an_error_with_code_and_reason():
    held = last_status(2, 1, until_code=eventlog.ABORTED)
    assert held.state is JobState.ERROR
    assert "OnExitHold" in held.reason and "HoldReasonCode 3" in held.reason


def test_held_by_the_user_is_held():
    assert last_status(3, 2, until_code=eventlog.ABORTED).state is JobState.HELD


def test_removal_is_an_error_unless_we_removed_it():
    assert last_status(3, 0).state is JobState.ERROR
    assert "via condor_rm" in last_status(3, 0).reason
    assert last_status(3, 0, removed_by_us=True).state is JobState.ENDED


def test_a_real_hold_for_an_inaccessible_initial_working_directory_ends_the_map():
    # Root submitted; HTCondor ran the job as condoruser, who cannot enter the
    # work_dir (issue 17: resubmitted five times, then advised to continue).
    with open(os.path.join(SAMPLES, "condor_q_af_t_held_iwd_permission.txt")) as file:
        (queued, _) = parsing.parse_condor_q(file.read())
    status = states.status_from_job_status(
        queued.job_status, queued.hold_reason_code, queued.hold_reason, "root"
    )
    assert status.state is JobState.ERROR and not status.curable
    assert "Cannot access initial working directory" in status.reason
    assert "HoldReasonCode 14" in status.reason
    # Root's session directories are private to root in any work_dir: only
    # submitting as the job's user, or sending the files with the job, works.
    assert "Submit as the user the jobs run as" in status.fix
    assert "shared_file_system=False" in status.fix
    assert "pass a work_dir" not in status.fix


@pytest.mark.parametrize("code", [14, 7, 22])
def test_a_work_dir_hold_of_an_ordinary_user_advises_a_work_dir_the_job_can_reach(code):
    held = states.held_status("5 (Held)", "Permission denied", code, 0, user="alice")
    as_root = states.held_status("5 (Held)", "Permission denied", code, 0, user="root")
    assert "pass a work_dir" in held.fix and "shared_file_system=False" not in held.fix
    assert "shared_file_system=False" in as_root.fix and "pass a work_dir" not in as_root.fix


def test_a_transfer_hold_of_root_does_not_advise_the_mode_it_came_from():
    # A transfer error's hold comes with shared_file_system=False already.
    held = states.held_status("5 (Held)", "Transfer input files failure", 13, 13, user="root")
    assert not held.curable and "shared_file_system=False" not in held.fix


# -- time limits and evictions (event logs of jobs held, removed and vacated for real)


def sample_events(name):
    with open(os.path.join(SAMPLES, name), "rb") as file:
        return eventlog.parse_events(file.read())[0]


def final_statuses(name, removed_by_us=False, codes=None):
    statuses = {}
    for event in sample_events(name):
        if codes is not None and event.code not in codes:
            continue
        status = states.status_after_event(event, removed_by_us)
        if status is not None:
            statuses[(event.cluster, event.proc)] = status
    return statuses


def test_a_periodic_hold_on_the_run_time_is_a_time_limit_naming_periodic_hold():
    # (The test removed the held jobs afterwards.)
    held = final_statuses("eventlog_time_limits.log", codes=[eventlog.HELD])[(247, 0)]
    assert held.state is JobState.ERROR and held.curable
    assert "periodic_hold" in held.time_limit and "HoldReasonCode 3" in held.reason


def test_a_periodic_remove_on_the_run_time_is_a_time_limit_naming_periodic_remove():
    removed = final_statuses("eventlog_time_limits.log")[(248, 0)]
    assert removed.state is JobState.ERROR and "periodic_remove" in removed.time_limit
    # Removed by this map itself: not a failure at all.
    ours = final_statuses("eventlog_time_limits.log", removed_by_us=True)[(248, 0)]
    assert ours.state is JobState.ENDED and ours.time_limit == ""


def test_allowed_job_duration_is_a_time_limit_naming_it():
    held = final_statuses("eventlog_time_limits.log", codes=[eventlog.HELD])[(249, 0)]
    assert held.state is JobState.ERROR and "allowed_job_duration" in held.time_limit


def test_a_policy_hold_on_anything_but_the_run_time_is_no_time_limit():
    status = states.held_status(
        "5 (Held)", "The job attribute OnExitHold expression 'ExitBySignal =?= true' ...", 3
    )
    assert status.state is JobState.ERROR and status.time_limit == ""


def test_a_sites_own_max_runtime_hold_names_the_pools_policy():
    status = states.held_status(
        "5 (Held)",
        "The system macro SYSTEM_PERIODIC_HOLD expression "
        "'(JobStatus == 2) && (time() - EnteredCurrentStatus > MaxRuntime)' evaluated to TRUE",
        3,
    )
    assert "pool's run time policy" in status.time_limit and "+MaxRuntime" in status.time_limit


def test_a_vacated_job_goes_back_to_idle_and_runs_again_by_itself():
    walk = [
        states.status_after_event(event, removed_by_us=False)
        for event in sample_events("eventlog_vacated.log")
    ]
    walk = [status.state for status in walk if status is not None]
    # Submitted, executing, evicted (back to idle), executing again; then the
    # test removed it.
    assert walk[:4] == [JobState.PENDING, JobState.RUNNING, JobState.PENDING, JobState.RUNNING]


def test_condor_q_shows_time_limit_holds_as_time_limits():
    with open(os.path.join(SAMPLES, "condor_q_af_t_held_at_time_limits.txt")) as file:
        queued = parsing.parse_condor_q(file.read())
    limits = [
        states.status_from_job_status(j.job_status, j.hold_reason_code, j.hold_reason).time_limit
        for j in queued
    ]
    assert "periodic_hold" in limits[0] and "allowed_job_duration" in limits[1]
