"""Idle procs no slot can run, on a real HTCondor pool: told, and ended by pending_timeout."""

from __future__ import annotations

import pytest
from test_htcondor_real import (  # noqa: F401 (fixtures)
    assert_left_the_queue,
    condor_user,
    job_python,
    run_map,
    session_events,
    shared_dir,
    unique_batch_name,
)

pytestmark = pytest.mark.htcondor
NO_SUCH_MACHINE = {"requirements": '(Machine == "nosuchmachine.invalid")'}


def test_procs_no_slot_matches_end_the_map_at_its_pending_timeout(
    condor_user,  # noqa: F811 (the fixtures imported above)
    job_python,  # noqa: F811
    shared_dir,  # noqa: F811
):
    batch = unique_batch_name()
    outcome, stderr = run_map(
        condor_user,
        job_python,
        shared_dir,
        "one_task",
        submit_directives=NO_SUCH_MACHINE,
        batch_name=batch,
        pending_warning_after=0,
        pending_timeout=0,
    )
    assert outcome.get("error") == "PendingTimeout", (outcome, stderr)
    assert "no slot matches the job's requirements: 1 job(s)" in outcome["message"]
    blocked = [e for e in session_events(shared_dir, "job_state") if e.get("blocked")]
    assert blocked, "the proc was never told blocked"
    assert_left_the_queue(batch)
