"""The script's objects, tracebacks naming its file, and results the submit
host cannot unpickle, on the real schedulers (CI starts them with
``local_clusters/<scheduler>/start.sh``)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import uuid
import zipfile

import pytest
from real_schedulers import REPO_DIR, require_scheduler
from test_pickling import (
    SCRIPT,
    assert_an_unloadable_result_fails_its_task_alone,
    assert_the_scripts_objects_worked,
    run_script,
)

sys.path.insert(0, os.path.join(REPO_DIR, "tests", "htcondor"))
import job_user  # noqa: E402  (tests/htcondor is no package)

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
    pool_class = importlib.import_module(real_pool_module).Pool
    pool = pool_class(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.2,
        missing_result_grace_period=1.0,
        **options(),
    )
    assert_an_unloadable_result_fails_its_task_alone(pool, tmp_path)


def test_a_scripts_objects_work_in_the_task_on_the_real_htcondor(tmp_path):
    """HTCondor never runs a job as root: the script runs as the job user
    (see tests/htcondor/job_user.py), in a directory that user owns."""
    entry = job_user.require_job_user()
    venv = os.environ.get("PYPOOLPARTY_HTCONDOR_VENV", job_user.DEFAULT_VENV)
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        python = job_user.ensure_venv()
    shared = job_user.make_shared_dir(entry)
    try:
        script = os.path.join(shared, "user_script.py")
        zip_path = os.path.join(shared, "modules.zip")
        with open(script, "w") as file:
            file.write(SCRIPT)
        with zipfile.ZipFile(zip_path, "w") as archive:
            archive.writestr("zipped_module.py", "VALUE = 42\n")
        for path in (script, zip_path):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        marks = os.path.join(shared, "marks")
        completed = subprocess.run(
            [
                python,
                script,
                "pypoolparty.htcondor",
                json.dumps(options()),
                os.path.join(shared, "work"),
                marks,
            ],
            # This checkout first, whatever the shared venv's .pth names.
            env={**job_user.environment(entry), "PYTHONPATH": f"{REPO_DIR}:{zip_path}"},
            user=entry.pw_uid,
            group=entry.pw_gid,
            extra_groups=[],
            cwd=shared,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert completed.returncode == 0, completed.stderr
        report = json.loads(completed.stdout.strip().splitlines()[-1])
        shutil.copy(marks, tmp_path / "marks")
        assert_the_scripts_objects_worked(report, script, tmp_path)
    finally:
        job_user.remove_shared_dir(shared)
