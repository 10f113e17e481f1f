"""The script's objects, tracebacks naming its file, and results the submit
host cannot unpickle, on the real schedulers (CI starts them with
``local_clusters/<scheduler>/start.sh``)."""

from __future__ import annotations

import uuid

import pytest
from real_schedulers import require_scheduler
from test_pickling import (
    SCRIPT,
    assert_an_unloadable_result_fails_its_task_alone,
    assert_the_scripts_objects_worked,
    run_script,
)

SCHEDULERS = {
    "slurm": (
        "pypoolparty.slurm.array",
        ["sbatch", "squeue", "scancel"],
        ["scontrol", "ping"],
    ),
    "sge": ("pypoolparty.sun_grid_engine", ["qsub", "qstat", "qdel"], ["qstat", "-g", "c"]),
}


@pytest.fixture(params=sorted(SCHEDULERS))
def real_pool_module(request) -> str:
    module, commands, probe = SCHEDULERS[request.param]
    require_scheduler(request.param, commands, probe=probe)
    return module


def options() -> dict:
    """A job name prefix of this test alone."""
    return {"job_name_prefix": f"ppp{uuid.uuid4().hex[:8]}"}


def test_a_scripts_objects_work_in_the_task_on_a_real_scheduler(real_pool_module, tmp_path):
    report, script = run_script(tmp_path, SCRIPT, real_pool_module, options())
    assert_the_scripts_objects_worked(report, script, tmp_path)


def test_an_unloadable_result_fails_its_task_alone_on_a_real_scheduler(real_pool_module, tmp_path):
    import importlib

    pool_class = importlib.import_module(real_pool_module).Pool
    pool = pool_class(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.2,
        missing_result_grace_period=1.0,
        **options(),
    )
    assert_an_unloadable_result_fails_its_task_alone(pool, tmp_path)
