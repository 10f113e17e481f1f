"""pypoolparty.sun_grid_engine.Pool() with default settings beside multiprocessing.Pool(2).

Run by hand, from a scratch directory, with the cell of
``local_clusters/sge/start.sh`` up:
``python <checkout>/benchmarks/sge_benchmark.py [--repeat 3]``.
Aims: 1,000 trivial tasks in under 10 s; 100 tasks sleeping 0.5 s within 1.2x
of multiprocessing (pypoolparty 0.3 took 512 s and 52 s here).
"""

from measure import compare

if __name__ == "__main__":
    compare(["multiprocessing:2", "sun_grid_engine"])
