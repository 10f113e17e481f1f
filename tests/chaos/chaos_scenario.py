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
STOP_KINDS = ("slurm_array", "slurm_job", "sge", "htcondor")
"""The pools whose dummies stop running jobs (:func:`_cluster_stops`)."""
TIME_LIMIT_TASK_PAUSES = {"slurm_array": 0.5, "slurm_job": 0.5, "sge": 0.8}
"""Seconds each task takes where a time limit is drawn: a job then finishes
a task (after its worker's start, about half a second) before its limit
and outlives the limit mid-chunk when it has two tasks or more."""
TIME_LIMIT_MAX_TASKS = 6
"""At most this many of those slower tasks, to keep the suite's time."""
SLURM_TIME_SCALE = 1 / 20
"""The dummy SLURM's clock where a time limit is drawn: ``time="1"`` stops a
job after 3 s, its default warning signal (half the limit) comes after 1.5 s."""
SGE_H_RT = "0:0:2"
"""Grid Engine's time limit where one is drawn: SIGKILL after 2 s (the pools do
not ask for ``-notify``)."""
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
    time_limit: dict
    """The pool options (in ``pool_options``) that give its jobs a time limit
    they may hit, or {}. Where the map ends with TimeLimitTooShort, the
    runner drops them, as the error advises, and calls the map again."""
    stops_forced: bool = False
    """Made by ``generate(seed, kind, stops=True)`` (``test_chaos_stops.py``)."""

    @property
    def replay(self) -> str:
        """How to run this scenario alone."""
        if self.stops_forced:
            return f"pytest tests/chaos/test_chaos_stops.py -k '{self.kind}-{self.seed}'"
        return f"PYPOOLPARTY_CHAOS_SEED={self.seed} pytest tests/chaos -k scenario"

    @property
    def strict(self) -> bool:
        """Must this scenario end with the local map's outcome (no clear error)?"""
        return self.pool_options["max_num_resubmissions"] >= STRICT_RESUBMISSIONS

    def describe(self) -> str:
        return (
            f"seed {self.seed}: {self.kind} pool, {len(self.tasks)} task(s) in chunks of "
            f"{self.chunksize}, options {self.pool_options}, dummy faults {self.dummy_faults}, "
            f"wrapper faults {self.wrapper_faults} (late up to {self.late_delay_max} s), "
            f"interruption {self.interruption}, time limit {self.time_limit or None}"
        )


def generate(seed: int, kind: str | None = None, stops: bool = False) -> Scenario:
    """The scenario of ``seed``.

    ``kind`` forces the pool (every other draw stays as the seed makes it);
    ``stops`` makes its dummy stop running jobs often and its jobs run into a
    time limit (see :func:`_cluster_stops`), for a test of the stops.
    """
    draw = random.Random(seed)
    drawn_kind = draw.choice(POOL_KINDS)
    kind = kind or drawn_kind
    tasks = _tasks(draw)
    chunksize = draw.randint(1, 4)
    pool_options = _pool_options(draw, kind)
    dummy_faults = _dummy_faults(draw, seed, kind)
    stop_faults, time_limit = _cluster_stops(seed, kind, stops)
    dummy_faults.update(stop_faults)
    pool_options.update(time_limit)
    if time_limit:
        least = TIME_LIMIT_TASK_PAUSES[kind]
        tasks = [[x, refuse, max(pause, least)] for x, refuse, pause in tasks]
        tasks = tasks[:TIME_LIMIT_MAX_TASKS]
    return Scenario(
        seed=seed,
        kind=kind,
        tasks=tasks,
        chunksize=chunksize,
        pool_options=pool_options,
        dummy_faults=dummy_faults,
        wrapper_faults=_wrapper_faults(draw),
        late_delay_max=round(draw.uniform(0.2, 2.0), 2),
        interruption=_interruption(draw),
        time_limit=time_limit,
        stops_forced=stops,
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
    return faults


def _cluster_stops(seed: int, kind: str, often: bool = False) -> tuple[dict, dict]:
    """The dummy's faults and the pool's options that stop running jobs.

    The cluster's stops, after which the chunk runs on from its first
    unfinished task (not a resubmission): a SLURM requeue (as ``scontrol
    requeue``: SIGTERM, pending under the same id), a Grid Engine reschedule
    (as ``qmod -rj``: SIGKILL, ``Rq``, the same job again), an HTCondor
    eviction (as ``condor_vacate_job``: SIGTERM, back to idle). And time
    limits, the user's estimate: SLURM's ``time`` with or without the
    warning signal before it, Grid Engine's ``h_rt`` (SIGKILL); the tasks
    then take :data:`TIME_LIMIT_TASK_PAUSES` each, so that jobs hit the limit
    mid-chunk (and are at most :data:`TIME_LIMIT_MAX_TASKS`). ``often``: a
    stop in about a third of the runs, and a time limit where there is one.

    Drawn apart, so that adding them left every other draw of a seed as it was.
    Returns the dummy's faults and the pool's time limit options.
    """
    draw = random.Random(f"{seed}-cluster-stops")
    probability = draw.choice([0.0, 0.0, 0.1, 0.3])
    with_time_limit = draw.random() < 0.1
    if often:
        probability, with_time_limit = 0.3, True
    if kind.startswith("slurm"):
        faults = {"requeue_probability": probability, "requeue_delay": 0.2, "kill_wait": 0.5}
        if not with_time_limit:
            return faults, {}
        faults["time_scale"] = SLURM_TIME_SCALE
        time_limit = {"time": "1"}
        if draw.random() < 0.3:
            time_limit["time_limit_warning"] = 0  # SIGTERM at the limit, no warning
        return faults, time_limit
    if kind == "sge":
        return {"reschedule_probability": probability}, (
            {"resources": {"h_rt": SGE_H_RT}} if with_time_limit else {}
        )
    if kind == "htcondor":
        return {"vacate_probability": probability}, {}
    return {}, {}


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
