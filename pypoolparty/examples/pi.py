"""Estimate pi by throwing random darts, on whatever pool you choose.

Run it with ``python -m pypoolparty.examples.pi`` (local processes), or
``python -m pypoolparty.examples.pi --pool slurm.array`` on a SLURM cluster
(also ``slurm``, ``sge``, ``htcondor``).
"""

from __future__ import annotations

import argparse
import importlib
import random


def count_hits(seed_and_darts: tuple[int, int]) -> int:
    """Throw darts at the unit square; count those inside the quarter circle."""
    seed, num_darts = seed_and_darts
    rng = random.Random(seed)
    return sum(1 for _ in range(num_darts) if rng.random() ** 2 + rng.random() ** 2 <= 1.0)


POOLS = ("local", "slurm.array", "slurm", "sge", "htcondor")
"""The pools ``--pool`` may name: modules ``pypoolparty.<name>``."""


def make_pool(name: str):
    module = importlib.import_module(f"pypoolparty.{name}")
    return module.Pool(verbose=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", default="local", choices=POOLS, help="the pool to run on")
    parser.add_argument("--tasks", type=int, default=100, help="number of tasks")
    parser.add_argument("--darts", type=int, default=20_000, help="darts per task")
    args = parser.parse_args(argv)

    tasks = [(seed, args.darts) for seed in range(args.tasks)]
    print(f"Throwing {args.tasks} x {args.darts} darts with pypoolparty.{args.pool}.Pool ...")
    with make_pool(args.pool) as pool:
        # The progress line (verbose) ends saying how long the map took; a
        # clock of our own would measure something else and disagree with it.
        hits = pool.map(count_hits, tasks)
    estimate = 4.0 * sum(hits) / (args.tasks * args.darts)
    print(f"pi is about {estimate:.5f} (error {abs(estimate - 3.141592653589793):.5f})")


if __name__ == "__main__":
    main()
