"""The joblib backend, with joblib's own backend tests as the checklist:
results in order, generators, exceptions, ``n_jobs`` values, nesting, abort
and continuation -- and scikit-learn's ``GridSearchCV`` and
``cross_val_score`` against the ``loky`` backend.

Runs on the local pool and on the SLURM array pool over the dummy queue.
"""

from __future__ import annotations

import os
import time

import pytest

import dummy_queues

joblib = pytest.importorskip("joblib")

import pypoolparty  # noqa: E402
import pypoolparty.joblib  # noqa: E402
import pypoolparty.slurm.array  # noqa: E402
from pypoolparty.joblib import PoolBackend  # noqa: E402

delayed, Parallel, parallel_config = joblib.delayed, joblib.Parallel, joblib.parallel_config


def square(x):
    return x * x


def fails_on_seven(x):
    if x == 7:
        raise ValueError(f"task {x} refuses")
    return x


def count_and_square(x, directory, release):
    """Record each run of task ``x``; tasks from 4 on wait for ``release``."""
    with open(os.path.join(directory, f"{x}-{os.getpid()}-{time.monotonic_ns()}"), "w"):
        pass
    if x >= 4:
        while not os.path.exists(release):
            time.sleep(0.02)
    return x * x


def inner_sum(x):
    return sum(Parallel(n_jobs=2)(delayed(square)(i) for i in range(x)))


def backend_of_nested_call(_):
    return type(joblib.parallel.get_active_backend()[0]).__name__


@pytest.fixture(scope="module", autouse=True)
def registered():
    pypoolparty.joblib.register()


@pytest.fixture(params=["local", "slurm_array"])
def pool(request, tmp_path, dummy_queue):
    dummy_queue(request.param)
    made = dummy_queues.make_pool(
        request.param,
        2,
        work_dir=tmp_path / "work",
        polling_interval=0.05,
        missing_result_grace_period=1.0,
    )
    yield made
    made.terminate()


def test_results_in_order_and_n_jobs_values(pool):
    with parallel_config(backend="pypoolparty", pool=pool):
        for n_jobs in (-1, -2, 2, 5, None):
            assert Parallel(n_jobs=n_jobs)(delayed(square)(x) for x in range(12)) == [
                x * x for x in range(12)
            ]
        with pytest.raises(ValueError, match="n_jobs == 0"):
            Parallel(n_jobs=0)(delayed(square)(x) for x in range(2))


def test_n_jobs_resolution(pool):
    backend = PoolBackend(pool)
    assert backend.effective_n_jobs(-1) == 2
    assert backend.effective_n_jobs(-2) == 1
    assert backend.effective_n_jobs(1) == 1
    assert backend.effective_n_jobs(5) == 2  # never above the pool's limit
    assert backend.effective_n_jobs(None) == 2


def test_generators_and_batch_size(pool):
    with parallel_config(backend="pypoolparty", pool=pool):
        ordered = Parallel(return_as="generator")(delayed(square)(x) for x in range(9))
        assert list(ordered) == [x * x for x in range(9)]
        unordered = Parallel(return_as="generator_unordered")(delayed(square)(x) for x in range(9))
        assert sorted(unordered) == [x * x for x in range(9)]
        fixed = Parallel(batch_size=4)(delayed(square)(x) for x in range(9))
        assert fixed == [x * x for x in range(9)]


def test_a_task_that_raises_reraises_with_the_remote_traceback(pool):
    with parallel_config(backend="pypoolparty", pool=pool):
        with pytest.raises(ValueError, match="task 7 refuses") as raised:
            Parallel()(delayed(fails_on_seven)(x) for x in range(10))
    assert type(raised.value.__cause__).__name__ == "RemoteTraceback"


def test_nested_parallel_runs_locally_by_default(pool):
    with parallel_config(backend="pypoolparty", pool=pool):
        assert Parallel()(delayed(inner_sum)(x) for x in range(4)) == [0, 0, 1, 5]
        assert set(Parallel()(delayed(backend_of_nested_call)(x) for x in range(2))) == {
            "ThreadingBackend"
        }


def test_interrupted_call_continues(pool, tmp_path):
    runs, release = tmp_path / "runs", str(tmp_path / "release")
    runs.mkdir()
    calls = [delayed(count_and_square)(x, str(runs), release) for x in range(8)]
    with parallel_config(backend="pypoolparty", pool=pool):
        results = Parallel(return_as="generator")(iter(calls))
        assert [next(results) for _ in range(4)] == [0, 1, 4, 9]
        results.close()  # as Ctrl-C does: the call's jobs are cancelled
        assert list((tmp_path / "work").glob("map-*"))
        open(release, "w").close()
        assert Parallel()(iter(calls)) == [x * x for x in range(8)]
    done_runs = [name.split("-")[0] for name in os.listdir(runs)]
    assert sorted(done_runs.count(str(x)) for x in range(4)) == [1, 1, 1, 1]


def test_options_are_checked(pool):
    with pytest.raises(ValueError, match="kind"):
        PoolBackend(pool, max_recursion_level=1)
    with pytest.raises(ValueError):
        PoolBackend("no-such-pool")
    with pytest.raises(ValueError, match="constructor"):
        PoolBackend(pool, partition="x")


def test_nested_level_on_the_cluster(tmp_path):
    backend = PoolBackend(
        "local",
        max_recursion_level=1,
        num_simultaneously_running_tasks=4,
        work_dir=str(tmp_path / "work"),
    )
    backend.configure(n_jobs=4, parallel=None)
    nested, _ = backend.get_nested_backend()
    assert isinstance(nested, PoolBackend) and nested.nesting_level == 1
    # Parents hold half the slots, children get the rest.
    assert backend._limit == 2 and nested.pool_options["num_simultaneously_running_tasks"] == 2
    deeper, _ = nested.get_nested_backend()
    assert type(deeper).__name__ == "SequentialBackend"
    with parallel_config(
        backend="pypoolparty",
        pool="local",
        max_recursion_level=1,
        num_simultaneously_running_tasks=4,
        work_dir=str(tmp_path / "work"),
    ):
        assert Parallel(n_jobs=4)(delayed(inner_sum)(x) for x in range(3)) == [0, 0, 1]
        assert Parallel(n_jobs=4)(delayed(backend_of_nested_call)(x) for x in range(2)) == [
            "PoolBackend",
            "PoolBackend",
        ]


# -- scikit-learn --------------------------------------------------------------


def test_grid_search_and_cross_val_score_match_loky(pool):
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV, cross_val_score
    from sklearn.svm import SVC

    X, y = load_iris(return_X_y=True)
    grid = {"C": [0.1, 10], "gamma": ["scale", 0.1]}

    def search():
        found = GridSearchCV(SVC(), grid, cv=3, n_jobs=-1).fit(X, y)
        return found.best_params_, list(found.cv_results_["mean_test_score"])

    def scores():
        return list(cross_val_score(SVC(), X, y, cv=3, n_jobs=-1))

    with parallel_config(backend="loky", n_jobs=2):
        expected = search(), scores()
    with parallel_config(backend="pypoolparty", pool=pool):
        assert (search(), scores()) == expected
