"""Chaos scenarios in which the cluster stops running jobs, on every dummy (see docs/chaos.rst).

The drawn scenarios (``test_chaos_scenarios.py``) stop jobs only now and
then; these force the stops on a couple of seeds per scheduler: jobs
requeued as by ``scontrol requeue`` and stopped at a SLURM time limit (with
its warning signal, or SIGTERM at the limit), Grid Engine tasks rescheduled
as by ``qmod -rj`` and killed at their ``h_rt``, HTCondor jobs vacated as by
``condor_vacate_job`` -- among the seed's other faults. Each must end with
the local map's results, no task run again once its session recorded it as
finished, and no stop counted as a resubmission (``chaos_runner``).
"""

from __future__ import annotations

import concurrent.futures
import os

import chaos_runner
import chaos_scenario
import pytest

STOP_SCENARIOS = [
    ("slurm_array", 26),  # with the warning signal before the limit, and wrapper faults
    ("slurm_job", 33),  # time_limit_warning=0: SIGTERM at the limit itself
    ("sge", 19),
    ("sge", 26),  # with wrapper faults
    ("htcondor", 33),
]
"""Seeds whose scenarios map 4 to 7 tasks in chunks of 2 or 3, with enough
resubmissions to be strict (they must end with the true results)."""


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    """(kind, seed) -> future of its scenario, all started at once on a few threads."""
    base = tmp_path_factory.mktemp("chaos-stops")
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=3)
    futures = {}
    for kind, seed in STOP_SCENARIOS:
        root = str(base / f"{kind}-{seed}")
        os.makedirs(root)
        scenario = chaos_scenario.generate(seed, kind=kind, stops=True)
        futures[(kind, seed)] = executor.submit(chaos_runner.run_scenario, scenario, root)
    yield futures
    for future in futures.values():
        future.cancel()
    executor.shutdown(wait=True)


@pytest.mark.chaos
@pytest.mark.parametrize(("kind", "seed"), STOP_SCENARIOS, ids=lambda v: str(v))
def test_stopped_jobs_lose_no_finished_task_and_no_resubmission(kind, seed, verdicts):
    scenario = chaos_scenario.generate(seed, kind=kind, stops=True)
    assert scenario.strict, scenario.describe()
    outcome = verdicts[(kind, seed)].result()
    assert "results" in outcome, outcome
