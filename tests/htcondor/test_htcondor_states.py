"""JobStatus codes and job events mapped to the session's states."""

from __future__ import annotations

import os

import pytest

from pypoolparty.htcondor import eventlog, states
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
    ended = last_status(2, 2)
    assert ended.state is JobState.ENDED and ended.reason == "exit code 3"


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
