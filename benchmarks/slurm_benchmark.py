"""pypoolparty.slurm.array.Pool() with default settings beside multiprocessing.Pool(2).

Run by hand, from a scratch directory, with the cluster of
``local_clusters/slurm/start.sh`` up:
``python <checkout>/benchmarks/slurm_benchmark.py [--repeat 3]``.
Aims: 1,000 trivial tasks in under 10 s; 100 tasks sleeping 0.5 s within 1.2x
of multiprocessing. This SLURM starts about 2 jobs per second.
"""

from measure import compare

if __name__ == "__main__":
    compare(["multiprocessing:2", "slurm.array"])
