"""The joblib backend and the Executor beside joblib's loky and ProcessPoolExecutor.

Run by hand from a scratch directory (needs joblib and scikit-learn; for
``slurm.array`` the cluster of ``local_clusters/slurm/start.sh``)::

    python <checkout>/benchmarks/interfaces_benchmark.py [local slurm.array]

Cases: ``GridSearchCV`` of a small model over 48 fits (16 parameter sets,
3 folds), and 1,000 ``submit`` calls of a trivial function. Reported: wall
time and the number of scheduler submissions the pools made (read from their
kept work_dirs).
"""

from __future__ import annotations

import concurrent.futures
import glob
import importlib
import json
import os
import shutil
import sys
import tempfile
import time

GRID = {"C": [0.01, 0.1, 1, 10], "gamma": ["scale", 0.01, 0.1, 1]}


def grid_search(backend_config: dict) -> tuple[float, dict]:
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC

    X, y = load_iris(return_X_y=True)
    start = time.perf_counter()
    with joblib.parallel_config(**backend_config):
        found = GridSearchCV(SVC(), GRID, cv=3, n_jobs=-1).fit(X, y)
    return time.perf_counter() - start, found.best_params_


def submits(executor) -> float:
    start = time.perf_counter()
    with executor:
        futures = [executor.submit(abs, -x) for x in range(1000)]
        assert [f.result() for f in futures] == list(range(1000))
    return time.perf_counter() - start


def submissions(work_dir: str) -> int:
    count = 0
    for log in glob.glob(os.path.join(work_dir, "map-*", "log.jsonl")):
        with open(log) as file:
            count += sum(1 for line in file if json.loads(line)["event"] == "submitting")
    return count


def make_pool(kind: str, work_dir: str):
    module = importlib.import_module(f"pypoolparty.{kind}")
    options = {"work_dir": work_dir, "keep_work_dir": True}
    return module.Pool(2, **options) if kind == "local" else module.Pool(**options)


def main(kinds: list[str]) -> None:
    import pypoolparty.joblib

    pypoolparty.joblib.register()
    print(f"{'case':<34} {'wall s':>8} {'submissions':>12}")
    seconds, best = grid_search({"backend": "loky", "n_jobs": 2})
    print(f"{'GridSearchCV 48 fits, loky(2)':<34} {seconds:>8.2f} {'-':>12}  {best}")
    for kind in kinds:
        work_dir = tempfile.mkdtemp(prefix="ppp-bench-", dir=os.getcwd())
        seconds, best = grid_search({"backend": "pypoolparty", "pool": make_pool(kind, work_dir)})
        name = f"GridSearchCV 48 fits, {kind}"
        print(f"{name:<34} {seconds:>8.2f} {submissions(work_dir):>12}  {best}")
        shutil.rmtree(work_dir, ignore_errors=True)
    seconds = submits(concurrent.futures.ProcessPoolExecutor(2))
    print(f"{'1000 submits, ProcessPool(2)':<34} {seconds:>8.2f} {'-':>12}")
    for kind in kinds:
        work_dir = tempfile.mkdtemp(prefix="ppp-bench-", dir=os.getcwd())
        seconds = submits(make_pool(kind, work_dir).executor())
        name = f"1000 submits, {kind}"
        print(f"{name:<34} {seconds:>8.2f} {submissions(work_dir):>12}")
        shutil.rmtree(work_dir, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1:] or ["local", "slurm.array"])
