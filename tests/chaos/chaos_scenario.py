"""Seeded chaos scenarios: one seed gives one pool, one map and its faults.

Everything random about a scenario is drawn here from ``random.Random(seed)``
(the dummies and the wrapper draw their own decisions from the same seed),
so a failing seed can be replayed with ``PYPOOLPARTY_CHAOS_SEED=<seed>``.
"""

from __future__ import annotations

import dataclasses
import random

from dummy_queues import POOL_KINDS, commands_of

# No TIMEOUT: a job that never ran cannot time out, and one that did ends the map
# when it finished no task (pypoolparty.stops). DEADLINE stands in its place, so
# every seed draws as before and fails the way TIMEOUT used to (a resubmission).
SLURM_ERROR_STATES = ["NODE_FAIL", "DEADLINE", "OUT_OF_MEMORY", "BOOT_FAIL", "PREEMPTED", "FAILED"]
CRASH_POINTS = ("before_submit", "after_submit", "during_fold")
STRICT_RESUBMISSIONS = 10
"""With this many resubmissions the faults drawn below cannot plausibly
exhaust a chunk: such a scenario must end with the map's true outcome."""


@dataclasses.dataclass(frozen=True)
class Scenario:
    seed: int
    kind: str
    tasks: list
    chunksize: int
    pool_options: dict
    dummy_faults: dict
    wrapper_faults: dict
    late_delay_max: float
    interruption: tuple | None
    """``("crash", point)``, ``("kill", seconds)`` or None."""

    @property
    def strict(self) -> bool:
        """Must this scenario end with the local map's outcome (no clear error)?"""
        return self.pool_options["max_num_resubmissions"] >= STRICT_RESUBMISSIONS

    def describe(self) -> str:
        return (
            f"seed {self.seed}: {self.kind} pool, {len(self.tasks)} task(s) in chunks of "
            f"{self.chunksize}, options {self.pool_options}, dummy faults {self.dummy_faults}, "
            f"wrapper faults {self.wrapper_faults} (late up to {self.late_delay_max} s), "
            f"interruption {self.interruption}"
        )


def generate(seed: int) -> Scenario:
    draw = random.Random(seed)
    kind = draw.choice(POOL_KINDS)
    return Scenario(
        seed=seed,
        kind=kind,
        tasks=_tasks(draw),
        chunksize=draw.randint(1, 4),
        pool_options=_pool_options(draw, kind),
        dummy_faults=_dummy_faults(draw, seed, kind),
        wrapper_faults=_wrapper_faults(draw),
        late_delay_max=round(draw.uniform(0.2, 2.0), 2),
        interruption=_interruption(draw),
    )


def _tasks(draw: random.Random) -> list:
    num_tasks = draw.randint(1, 16)
    refusing = draw.random() < 0.1
    return [
        [x, refusing and draw.random() < 0.15, draw.choice([0.0] * 8 + [0.05, 0.2])]
        for x in range(num_tasks)
    ]


def _pool_options(draw: random.Random, kind: str) -> dict:
    return {
        "num_simultaneously_running_tasks": draw.choice([None, None, 1, 2, 3]),
        "polling_interval": draw.choice([0.05, 0.1]),
        "missing_result_grace_period": draw.choice([0.3, 0.6, 1.0]),
        "max_num_resubmissions": draw.choice([1, 2] + [STRICT_RESUBMISSIONS] * 6),
        "command_timeout": 0.5,
        "outage_timeout": 60.0,
    }


def _dummy_faults(draw: random.Random, seed: int, kind: str) -> dict:
    if kind == "local":
        return {}
    faults = {
        "seed": seed,
        "slots": draw.randint(1, 3),
        "error_probability": draw.choice([0.0, 0.0, 0.05, 0.15]),
        "vanish_probability": draw.choice([0.0, 0.0, 0.05, 0.1]),
        "unknown_state_probability": draw.choice([0.0, 0.1, 0.3]),
    }
    if kind.startswith("slurm"):
        faults["error_states"] = draw.sample(SLURM_ERROR_STATES, draw.randint(1, 3))
    for fault, most in (("fail_commands", 2), ("hang_commands", 1), ("garbage_commands", 1)):
        counts = {command: draw.randint(0, most) for command in commands_of(kind)}
        faults[fault] = {command: n for command, n in counts.items() if n and draw.random() < 0.3}
    faults.update(_cluster_stops(seed, kind))
    return faults


def _cluster_stops(seed: int, kind: str) -> dict:
    """The cluster stopping running jobs, which run again by themselves: Grid
    Engine's reschedule (``qmod -rj``), HTCondor's eviction (``condor_vacate_job``).

    Drawn apart, so that adding them left every other draw of a seed as it was.
    """
    draw = random.Random(f"{seed}-cluster-stops")
    probability = draw.choice([0.0, 0.0, 0.1, 0.3])
    if kind == "sge":
        return {"reschedule_probability": probability}
    if kind == "htcondor":
        return {"vacate_probability": probability}
    return {}


def _wrapper_faults(draw: random.Random) -> dict:
    if draw.random() < 0.3:
        return {}
    return {
        "die_early": draw.choice([0.0, 0.05]),
        "half_written": draw.choice([0.0, 0.05]),
        "truncated": draw.choice([0.0, 0.05]),
        "late": draw.choice([0.0, 0.1, 0.2]),
        "duplicate": draw.choice([0.0, 0.1, 0.2]),
    }


def _interruption(draw: random.Random) -> tuple | None:
    roll = draw.random()
    if roll < 0.12:
        return ("crash", draw.choice(CRASH_POINTS))
    if roll < 0.22:
        return ("kill", round(draw.uniform(0.3, 2.0), 2))
    return None
