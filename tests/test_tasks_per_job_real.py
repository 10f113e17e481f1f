"""``tasks_per_job=4`` on a real SLURM and a real Sun Grid Engine: one job runs
four tasks at once.

Each task waits at a barrier until all four have started, so a map that
returns shows they overlapped in time; each says which job and process ran
it. The machine the CI schedulers run on has 2 CPUs: the job asks for 2
(``cpus_per_task``, ``-pe smp 2``) and its four processes share them.
"""

from __future__ import annotations

import os
import uuid

import pytest
from real_schedulers import require_scheduler
from waiting import wait_for

import pypoolparty

JOB_ID_VARIABLE = {"slurm": "SLURM_JOB_ID", "sge": "JOB_ID"}


def meet_all_four(barrier: str, x: int, variable: str) -> tuple[int, str, int]:
    open(os.path.join(barrier, str(x)), "w").close()
    wait_for(lambda: len(os.listdir(barrier)) == 4, timeout=120)
    return x, os.environ[variable], os.getpid()


def make_pool(scheduler: str, work_dir: str):
    options = dict(
        tasks_per_job=4,
        work_dir=work_dir,
        polling_interval=0.5,
        missing_result_grace_period=5.0,
        job_name_prefix=f"ppp{uuid.uuid4().hex[:6]}",
    )
    # Four slots, four tasks per job: one job, of two CPUs.
    if scheduler == "slurm":
        return pypoolparty.slurm.array.Pool(4, cpus_per_task=2, **options)
    return pypoolparty.sun_grid_engine.Pool(4, parallel_environment="smp", slots=2, **options)


@pytest.mark.parametrize(
    "scheduler",
    [pytest.param("slurm", marks=pytest.mark.slurm), pytest.param("sge", marks=pytest.mark.sge)],
)
def test_one_job_runs_four_tasks_at_once(tmp_path, scheduler):
    require_scheduler(scheduler)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    pool = make_pool(scheduler, str(tmp_path / "work"))
    variable = JOB_ID_VARIABLE[scheduler]
    results = pool.starmap(
        meet_all_four, [(str(barrier), x, variable) for x in range(4)], chunksize=1
    )
    assert [x for x, _, _ in results] == [0, 1, 2, 3]
    assert len({job for _, job, _ in results}) == 1
    assert len({pid for _, _, pid in results}) == 4
