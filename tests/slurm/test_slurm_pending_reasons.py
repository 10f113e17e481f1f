"""Why SLURM jobs wait: squeue's reasons, and which of them do not clear by themselves."""

from __future__ import annotations

import os

import pytest

from pypoolparty.commands import Completed
from pypoolparty.scheduler import JobState
from pypoolparty.slurm import parsing

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")


def sample_statuses(name: str):
    with open(os.path.join(SAMPLES, name)) as file:
        text = file.read()
    records = parsing.squeue_records(Completed(["squeue"], 0, text, ""))
    jobids = [record.jobid for record in records]
    return parsing.statuses(records, jobids)


def test_pending_jobs_carry_squeues_reason_and_whether_it_clears_by_itself():
    # tests/slurm/samples/capture_pending.sh made these on a real SLURM 22.05.
    found = sample_statuses("squeue_pending_reasons.txt")
    blocked = {jobid for jobid, status in found.items() if status.blocked}
    assert blocked == {"586", "593_0", "593_1", "593_2", "594", "595"}
    assert {found[jobid].reason for jobid in blocked} == {
        "PartitionNodeLimit",
        "PartitionDown",
        "PartitionTimeLimit",
        "PartitionConfig",
    }
    assert found["585_2"].state is JobState.PENDING and found["585_2"].reason == "BeginTime"
    assert not found["590"].blocked  # Dependency: the job it waits for may end
    assert found["589"].state is JobState.HELD and not found["589"].blocked


@pytest.mark.parametrize(
    "reason",
    [
        "ReqNodeNotAvail, UnavailableNodes:node[01-04]",
        # squeue's words in the report of issue 17 (nodes drained after a restart)
        "Nodes required for job are DOWN, DRAINED or reserved for jobs in higher priority "
        "partitions",
        "NodeDown",
        "QOSMaxWallDurationPerJobLimit",
        "AssocMaxCpuPerJobLimit",
        "QOSMinCpuNotSatisfied",
        "AssocGrpCPUMinutesLimit",
        "AccountNotAllowed",
    ],
)
def test_reasons_someone_must_act_on_are_blocked(reason):
    assert parsing.is_blocked(reason)


@pytest.mark.parametrize(
    "reason",
    [
        "Priority",
        "Resources",
        "BeginTime",
        "Dependency",
        "JobArrayTaskLimit",
        "None",
        # limits on what runs at once clear as other jobs end
        "AssocMaxJobsLimit",
        "AssocGrpJobsLimit",
        "QOSMaxJobsPerUserLimit",
        "AssocGrpCPURunMinutesLimit",
        "Licenses",
        "Reservation",
    ],
)
def test_reasons_that_clear_by_themselves_are_not(reason):
    assert not parsing.is_blocked(reason)
