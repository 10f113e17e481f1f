"""pypoolparty.local.Pool(2) beside multiprocessing.Pool(2).

Run by hand from a scratch directory: ``python <checkout>/benchmarks/local_benchmark.py``.
Aims: 100 tasks sleeping 0.5 s within 1.15x of multiprocessing's wall time;
10,000 trivial tasks in under 5 s on 2 cores.
"""

from measure import CASES, compare

if __name__ == "__main__":
    compare(["multiprocessing:2", "local:2"], [("trivial", 10_000), *CASES])
