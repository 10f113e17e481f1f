"""The repository's dummy schedulers (``dummy_queues/``), as tests use them.

One class per dummy, on one base: where its state lives, its faults, what it
still holds, and how to empty it. The ``dummy_queue`` fixture of
``tests/conftest.py`` makes them; the pool kinds below point a pool of each
kind at its dummy's commands.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import types

from waiting import wait_for

DUMMY_QUEUES_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "dummy_queues"
)
QUEUE_DIR_VARIABLE = "PYPOOLPARTY_DUMMY_QUEUE_DIR"


class DummyQueue:
    """One dummy scheduler with its state in ``state_dir``.

    Its commands run with ``PYPOOLPARTY_DUMMY_QUEUE_DIR`` set to ``state_dir``,
    whatever the test's environment holds.
    """

    name = ""
    """The dummy's directory in ``dummy_queues/`` and the prefix of its state file."""
    commands: tuple[str, str, str] = ("", "", "")
    """Its submit, query and cancel commands, the ones a pool is given."""
    empty_state: dict = {}

    def __init__(self, state_dir: str) -> None:
        self.state_dir = str(state_dir)
        self.bin = os.path.join(DUMMY_QUEUES_DIR, self.name)
        self.paths = self.pool_paths()

    @classmethod
    def pool_paths(cls) -> dict[str, str]:
        """Pool options that point a pool at this dummy's commands (``sbatch_path``, ...)."""
        return {f"{command}_path": cls.path(command) for command in cls.commands}

    @classmethod
    def path(cls, command: str) -> str:
        return os.path.join(DUMMY_QUEUES_DIR, cls.name, command)

    @classmethod
    def module(cls, name: str) -> types.ModuleType:
        """The dummy's own module ``name`` (e.g. ``submit_file``), for testing it alone.

        Only a module that imports none of the dummy's other modules can be loaded so.
        """
        path = os.path.join(DUMMY_QUEUES_DIR, cls.name, f"{name}.py")
        spec = importlib.util.spec_from_file_location(f"dummy_{cls.name}_{name}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    def environment(self) -> dict:
        return dict(os.environ, **{QUEUE_DIR_VARIABLE: self.state_dir})

    def run(self, command: str, *args: str) -> subprocess.CompletedProcess:
        """Run one of the dummy's commands on its state."""
        return subprocess.run(
            [self.path(command), *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=self.environment(),
        )

    def set_faults(self, **faults) -> None:
        """Write ``faults.json`` (see ``dummy_queues/common.py``); no arguments: no faults."""
        path = os.path.join(self.state_dir, "faults.json")
        # The dummies' runners read it every tick: a half-written file would end them.
        with open(f"{path}.part", "w") as file:
            json.dump(faults, file)
        os.replace(f"{path}.part", path)

    def state(self) -> dict:
        """The dummy's whole state, as its commands left it."""
        try:
            with open(os.path.join(self.state_dir, f"{self.name}_state.json")) as file:
                return json.load(file)  # written by rename: never half a file
        except FileNotFoundError:
            return json.loads(json.dumps(self.empty_state))

    def jobs(self):
        return self.state()["jobs"]

    def faults_used(self) -> dict:
        """The command faults played so far, in faults.json's shape.

        ``{"fail_commands": {"squeue": 2}}``: squeue failed twice.
        """
        return self.state()["faults_used"]

    def queued_jobs(self) -> list[str]:
        """Ids of the jobs still in the queue (not ended)."""
        raise NotImplementedError

    def cancel_everything(self) -> None:
        """Cancel every job still queued, without faults getting in the way."""
        self.set_faults()
        ids = self.queued_jobs()
        if ids:
            self.run(self.commands[2], *self.cancel_arguments(ids))

    def cancel_arguments(self, ids: list[str]) -> list[str]:
        raise NotImplementedError

    def close(self) -> None:
        """Leave nothing queued, whatever the test did; the runner then ends by itself."""
        self.cancel_everything()
        wait_for(lambda: not self.queued_jobs(), 30)


class DummySlurm(DummyQueue):
    """``dummy_queues/slurm``: jobs are a list of records, one per job or array task."""

    name = "slurm"
    commands = ("sbatch", "squeue", "scancel")  # scontrol and sinfo: found beside sbatch
    empty_state = {"next_jobid": 1, "jobs": [], "runner_pid": None, "faults_used": {}}
    ACTIVE = ("PENDING", "RUNNING", "COMPLETING")

    def queued_jobs(self) -> list[str]:
        return [
            f"{job['array_job_id']}_{job['task']}"
            for job in self.jobs()
            if job["state"] in self.ACTIVE
        ]

    def cancel_arguments(self, ids: list[str]) -> list[str]:
        return sorted({jobid.split("_")[0] for jobid in ids})

    def release_everything(self) -> None:
        for job in self.jobs():
            task = "" if job["task"] is None else f"_{job['task']}"
            self.run("scontrol", "release", f"{job['array_job_id']}{task}")


class DummySge(DummyQueue):
    """``dummy_queues/sge``: jobs by number, each with its tasks by id."""

    name = "sge"
    commands = ("qsub", "qstat", "qdel")
    empty_state = {"next_job_number": 1, "jobs": {}, "runner_pid": None, "faults_used": {}}

    def queued_jobs(self) -> list[str]:
        return [f"{number}.{task}" for number, job in self.jobs().items() for task in job["tasks"]]

    def cancel_arguments(self, ids: list[str]) -> list[str]:
        return sorted({jobid.split(".")[0] for jobid in ids})

    def task_states(self) -> list[str]:
        return [t["state"] for job in self.jobs().values() for t in job["tasks"].values()]


class DummyHTCondor(DummyQueue):
    """``dummy_queues/htcondor``: procs by ``cluster.proc``, and the clusters."""

    name = "htcondor"
    commands = ("condor_submit", "condor_q", "condor_rm")
    empty_state = {
        "next_cluster": 1,
        "runner_pid": None,
        "clusters": {},
        "jobs": {},
        "faults_used": {},
    }
    GONE = (3, 4)  # removed, completed

    def queued_jobs(self) -> list[str]:
        return [jobid for jobid, job in self.jobs().items() if job["status"] not in self.GONE]

    def cancel_arguments(self, ids: list[str]) -> list[str]:
        return ["-all"]

    def listed_jobs(self) -> list[str]:
        """The job ids the dummy's condor_q lists now."""
        completed = self.run("condor_q", "-af:j", "JobStatus")
        assert completed.returncode == 0, completed.stderr
        return [line.split()[0] for line in completed.stdout.splitlines() if line.strip()]


DUMMIES = {dummy.name: dummy for dummy in (DummySlurm, DummySge, DummyHTCondor)}

POOLS = {
    "local": ("pypoolparty.local", None),
    "slurm_array": ("pypoolparty.slurm.array", DummySlurm),
    "slurm_job": ("pypoolparty.slurm", DummySlurm),
    "sge": ("pypoolparty.sun_grid_engine", DummySge),
    "htcondor": ("pypoolparty.htcondor", DummyHTCondor),
}
"""Each kind of pool: its module, and the dummy it runs on (None: it needs none)."""
POOL_KINDS = tuple(POOLS)


def dummy_class(kind: str) -> type[DummyQueue] | None:
    """The dummy named ``kind`` (``"sge"``), or the one pools of ``kind`` run on (``"slurm_job"``).

    None for the local pool, which needs no dummy.
    """
    return DUMMIES[kind] if kind in DUMMIES else POOLS[kind][1]


def dummy_of(kind: str, state_dir: str) -> DummyQueue | None:
    """The dummy of :func:`dummy_class`, with its state in ``state_dir``."""
    dummy = dummy_class(kind)
    return None if dummy is None else dummy(state_dir)


def commands_of(pool_kind: str) -> tuple[str, ...]:
    """The submit, query and cancel commands of ``pool_kind`` (none for local)."""
    dummy = POOLS[pool_kind][1]
    return () if dummy is None else dummy.commands


def pool_paths(pool_kind: str) -> dict[str, str]:
    """Pool options that point a pool of ``pool_kind`` at its dummy's commands."""
    dummy = POOLS[pool_kind][1]
    return {} if dummy is None else dummy.pool_paths()


def make_pool(pool_kind: str, *args, **options):
    """A pool of ``pool_kind`` pointed at its dummy's commands, with ``args`` and ``options``."""
    module = importlib.import_module(POOLS[pool_kind][0])
    return module.Pool(*args, **pool_paths(pool_kind), **options)
