"""A few hundred seeded chaos scenarios over every pool (see docs/chaos.rst).

``PYPOOLPARTY_CHAOS_SCENARIOS=N`` runs seeds 0..N-1 (default
:data:`DEFAULT_NUM_SCENARIOS`); ``PYPOOLPARTY_CHAOS_SEED=S`` runs only seed S.
Scenarios mostly wait (on polls, grace periods, backoffs), so
``PYPOOLPARTY_CHAOS_PARALLEL`` of them (default 3) run at once in the
background while the tests collect their verdicts in order.
"""

from __future__ import annotations

import concurrent.futures
import os

import chaos_runner
import chaos_scenario
import pytest

DEFAULT_NUM_SCENARIOS = 200
DEFAULT_PARALLEL = 3


def chaos_seeds() -> list[int]:
    if os.environ.get("PYPOOLPARTY_CHAOS_SEED"):
        return [int(os.environ["PYPOOLPARTY_CHAOS_SEED"])]
    return list(range(int(os.environ.get("PYPOOLPARTY_CHAOS_SCENARIOS", DEFAULT_NUM_SCENARIOS))))


SEEDS = chaos_seeds()


def run_one(seed: int, root: str) -> None:
    scenario = chaos_scenario.generate(seed)
    os.makedirs(root)
    chaos_runner.run_scenario(scenario, root)


def selected_seeds(session: pytest.Session) -> list[int]:
    """The seeds of this module's tests that pytest will run (after ``-k``)."""
    return [
        item.callspec.params["seed"]
        for item in session.items
        if item.module.__name__ == __name__ and hasattr(item, "callspec")
    ]


@pytest.fixture(scope="module")
def verdicts(request, tmp_path_factory):
    """seed -> future of its scenario, all started at once on a few threads."""
    base = tmp_path_factory.mktemp("chaos")
    parallel = int(os.environ.get("PYPOOLPARTY_CHAOS_PARALLEL", DEFAULT_PARALLEL))
    executor = concurrent.futures.ThreadPoolExecutor(max_workers=parallel)
    futures = {
        seed: executor.submit(run_one, seed, str(base / f"seed-{seed}"))
        for seed in selected_seeds(request.session)
    }
    yield futures
    for future in futures.values():
        future.cancel()
    executor.shutdown(wait=True)


@pytest.mark.chaos
@pytest.mark.parametrize("seed", SEEDS)
def test_chaos_scenario_ends_with_the_true_outcome_or_a_clear_error(seed, verdicts):
    # Each scenario bounds its own time (chaos_runner.MAP_TIME_LIMIT per run).
    verdicts[seed].result()
