"""Uneven tasks: 10 sleeping 3 s, then 90 sleeping 0.2 s, on every pool.

The ideal is ``max(total work / slots, longest task)`` = 24 s on 2 slots;
``multiprocessing.Pool(2).imap(chunksize=1)`` is the reference that reaches
it. Run by hand from a scratch directory with the clusters of
``local_clusters/*/start.sh`` up, naming the pools to compare, e.g.
``python <checkout>/benchmarks/skewed_benchmark.py --pools
local:2,slurm.array,slurm,sun_grid_engine [--repeat 3]`` (HTCondor as in
``htcondor_benchmark.py``). Aim (issue 12): every pool within 1.10x of the
ideal.
"""

import argparse

from measure import compare
from tasks import skewed_ideal_seconds

NUM_TASKS = 100
SLOTS = 2

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pools", default="local:2", help="comma-separated, as in measure.py")
    pools = parser.parse_known_args()[0].pools.split(",")
    print(f"ideal: {skewed_ideal_seconds(NUM_TASKS, SLOTS):.1f} s on {SLOTS} slots")
    compare([f"multiprocessing-imap:{SLOTS}", *pools], [("skewed", NUM_TASKS)])
