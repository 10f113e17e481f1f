"""Why Grid Engine jobs wait: the scheduling info of one ``qstat -j N1,N2,...``."""

from __future__ import annotations

import os
import stat

from pypoolparty.commands import RetryPolicy
from pypoolparty.scheduler import Job, JobState
from pypoolparty.sun_grid_engine import parsing
from pypoolparty.sun_grid_engine.options import checked_options
from pypoolparty.sun_grid_engine.scheduler import CommandPaths, GridEngineScheduler

SAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples", "qstat_j_pending.txt")


def sample() -> str:
    with open(SAMPLE) as file:
        return file.read()


def test_scheduling_info_is_read_per_job_number():
    info = parsing.parse_qstat_j_scheduling_info(sample())
    assert sorted(info) == ["101", "111", "96", "99"]
    assert info["96"] == [
        'queue instance "ppptest.q@vm" dropped because it is disabled',
        "execution time not reached",
    ]


def test_only_a_job_no_queue_can_take_is_blocked():
    info = parsing.parse_qstat_j_scheduling_info(sample())
    blocked = {number for number, lines in info.items() if parsing.scheduling_info_blocks(lines)}
    # 111 may only use the disabled queue; the others wait for their start
    # time, a dependency, or memory a host may yet free.
    assert blocked == {"111"}
    assert parsing.pending_reason(info["96"]) == "execution time not reached"
    assert "not contained in its hard queue list" in parsing.pending_reason(info["111"])


def test_no_scheduling_info_is_no_reason():
    text = (
        "job_number:   5\n"
        "scheduling info:   (Collecting of scheduler job information is turned off)\n"
    )
    assert parsing.parse_qstat_j_scheduling_info(text) == {"5": []}
    assert not parsing.scheduling_info_blocks([])


def test_the_adapter_asks_one_qstat_for_all_job_numbers(tmp_path):
    calls = tmp_path / "calls"
    qstat = tmp_path / "qstat"
    qstat.write_text(f'#!/bin/sh\necho "$@" >> {calls}\ncat {SAMPLE}\n')
    qstat.chmod(stat.S_IRWXU)
    policy = RetryPolicy(timeout=10.0, max_outage=10.0)
    scheduler = GridEngineScheduler(
        checked_options(), policy, CommandPaths(qstat=str(qstat), qsub="qsub", qdel="qdel")
    )
    jobs = [Job(f"111.{t}", t, "o", "e", "s") for t in (1, 2, 3)] + [Job("96.1", 4, "o", "e", "s")]
    told = scheduler.pending_reasons(jobs)
    assert calls.read_text().split("\n")[:-1] == ["-j 96,111"]
    assert {jobid for jobid, status in told.items() if status.blocked} == {
        "111.1",
        "111.2",
        "111.3",
    }
    assert told["96.1"].state is JobState.PENDING
    assert told["96.1"].reason == "execution time not reached"
