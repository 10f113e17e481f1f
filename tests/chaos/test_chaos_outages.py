"""The outage rules, deterministically, on every dummy queue.

A scheduler command that fails, hangs or prints garbage for less than
``outage_timeout`` is survived with correct results. One that keeps doing so
for longer ends the map with :class:`SchedulerUnavailable`, naming the command
and its last error, after cancelling the map's jobs; the work_dir is kept with
the finished results, and calling the map again does not run them twice.
"""

from __future__ import annotations

import chaos_tasks
import pytest
from chaos_bounded import call_within

import dummy_queues
import pypoolparty

DUMMY_KINDS = [kind for kind in dummy_queues.POOL_KINDS if kind != "local"]
FAULTS = ["fail_commands", "hang_commands", "garbage_commands"]
LAST_ERRORS = {
    "fail_commands": {
        "slurm_array": "Socket timed out",
        "slurm_job": "Socket timed out",
        "sge": "unable to send message to qmaster",
        "htcondor": "Failed to connect",
    },
    "hang_commands": dict.fromkeys(DUMMY_KINDS, "did not answer within 0.5 s"),
    "garbage_commands": {
        "slurm_array": "cannot read",
        "slurm_job": "cannot read",
        "sge": "printed no XML document",
        "htcondor": "unexpected line from condor_q",
    },
}
"""Words of the last error each dummy's failing query command leaves."""
TIME_LIMIT = 120.0


@pytest.fixture
def dummy(kind, dummy_queue):
    """The dummy that the test's ``kind`` of pool runs on."""
    return dummy_queue(kind)


def make_pool(kind: str, tmp_path, outage_timeout: float):
    return dummy_queues.make_pool(
        kind,
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        missing_result_grace_period=0.5,
        command_timeout=0.5,
        outage_timeout=outage_timeout,
    )


def recording_tasks(tmp_path, n: int) -> list[tuple[int, str]]:
    side_effects = tmp_path / "side_effects"
    side_effects.mkdir(exist_ok=True)
    return [(x, str(side_effects)) for x in range(n)]


def runs_per_task(tmp_path) -> dict[str, int]:
    side_effects = tmp_path / "side_effects"
    return {p.name: p.read_text().count("ran") for p in side_effects.iterdir()}


@pytest.mark.chaos
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("kind", DUMMY_KINDS)
def test_a_short_outage_is_survived_with_correct_results(kind, fault, dummy, tmp_path):
    submit, query, _ = dummy.commands
    dummy.set_faults(**{fault: {submit: 1, query: 2}})
    pool = make_pool(kind, tmp_path, outage_timeout=30.0)
    tasks = recording_tasks(tmp_path, 6)
    results = call_within(TIME_LIMIT, pool.starmap, chaos_tasks.record, tasks, chunksize=2)
    assert results == [chaos_tasks.record(*task) for task in tasks]
    assert dummy.queued_jobs() == []


@pytest.mark.chaos
@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("kind", DUMMY_KINDS)
def test_a_long_outage_fails_naming_the_command_and_keeps_finished_results(
    kind, fault, dummy, tmp_path
):
    query = dummy.commands[1]
    dummy.set_faults(**{fault: {query: 10_000}})
    pool = make_pool(kind, tmp_path, outage_timeout=2.0)
    tasks = recording_tasks(tmp_path, 6)
    with pytest.raises(pypoolparty.SchedulerUnavailable) as info:
        call_within(TIME_LIMIT, pool.starmap, chaos_tasks.record, tasks, chunksize=2)
    message = str(info.value)
    assert dummy.path(query) in message
    assert LAST_ERRORS[fault][kind] in message
    assert str(tmp_path / "work") in message
    assert dummy.queued_jobs() == []
    # The outage ends: the same map continues and runs nothing twice.
    dummy.set_faults()
    ran_before = runs_per_task(tmp_path)
    results = call_within(TIME_LIMIT, pool.starmap, chaos_tasks.record, tasks, chunksize=2)
    assert results == [10 * x for x in range(6)]
    ran = runs_per_task(tmp_path)
    assert all(count == 1 for name, count in ran.items() if name in ran_before), ran
