"""pypoolparty.local.Pool(2) beside multiprocessing.Pool(2).

Run by hand: ``python benchmarks/local_benchmark.py``. Aims (issue "The
engine, the local pool ..."): 100 tasks sleeping 0.5 s within 1.15x of
multiprocessing's wall time; 10,000 trivial tasks in under 5 s on 2 cores.
"""

from measure import print_table, run_case

CASES = [("trivial", 1000), ("trivial", 10_000), ("sleep_half_second", 100)]
POOLS = ["multiprocessing:2", "local:2"]

if __name__ == "__main__":
    rows = []
    for task, num_tasks in CASES:
        for pool_factory in POOLS:
            rows.append((pool_factory, task, num_tasks, run_case(pool_factory, task, num_tasks)))
    print_table(rows)
