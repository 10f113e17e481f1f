"""Why HTCondor jobs stay idle: one ``condor_q -better-analyze:summary`` for all clusters."""

from __future__ import annotations

import os
import stat

from pypoolparty.commands import RetryPolicy
from pypoolparty.htcondor import parsing, states
from pypoolparty.htcondor.options import ClusterOptions
from pypoolparty.htcondor.scheduler import CommandPaths, HTCondorScheduler
from pypoolparty.scheduler import Job

# Captured from HTCondor 23.9.6 (one partitionable slot of 2 CPUs): cluster 77
# of three procs with requirements = (Machine == "nosuchmachine.invalid"),
# cluster 78 with request_memory larger than the machine; and (_busy) three
# procs of request_cpus = 2, one of them running.
SAMPLE = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "samples", "condor_q_better_analyze_summary.txt"
)


def test_the_summary_rows_are_read():
    with open(SAMPLE) as file:
        rows = parsing.parse_match_summary(file.read())
    assert rows == [
        parsing.MatchSummary("77.0", 0, 0),
        parsing.MatchSummary("78.0", 0, 0),
    ]


def test_a_busy_pool_is_read_too():
    # Three procs of request_cpus = 2 on the one 2-CPU machine: one runs.
    with open(SAMPLE.replace(".txt", "_busy.txt")) as file:
        [row] = parsing.parse_match_summary(file.read())
    assert row == parsing.MatchSummary("96.0", 1, 0)
    assert not states.idle_status(row).blocked


def test_no_matching_slot_is_blocked_and_a_busy_pool_is_not():
    never = states.idle_status(parsing.MatchSummary("77.0", 0, 0))
    busy = states.idle_status(parsing.MatchSummary("80.0", 4, 0))
    assert never.blocked and "no slot matches" in never.reason
    assert not busy.blocked and "waiting for a free slot" in busy.reason


def test_the_adapter_asks_once_for_all_clusters(tmp_path):
    calls = tmp_path / "calls"
    condor_q = tmp_path / "condor_q"
    condor_q.write_text(f'#!/bin/sh\necho "$@" >> {calls}\ncat {SAMPLE}\n')
    condor_q.chmod(stat.S_IRWXU)
    scheduler = HTCondorScheduler(
        ClusterOptions(),
        RetryPolicy(timeout=10.0, max_outage=10.0),
        CommandPaths(condor_q=str(condor_q)),
    )
    jobs = [Job(f"77.{p}", p, "o", "e", "s") for p in range(3)] + [Job("78.0", 3, "o", "e", "s")]
    told = scheduler.pending_reasons(jobs)
    assert calls.read_text().split("\n")[:-1] == ["77 78 -better-analyze:summary"]
    assert sorted(told) == ["77.0", "77.1", "77.2", "78.0"]
    assert all(status.blocked for status in told.values())
