"""The job's environment on the real schedulers (issue 16, items 1 and 2): a
library found only through ``LD_LIBRARY_PATH``, a ``sitecustomize`` only
through ``PYTHONPATH`` and a command only through ``PATH`` act when the
worker starts; a failing setup line ends the map, once, naming the line and
showing the job's stderr. CI starts the schedulers with
``local_clusters/<scheduler>/start.sh``; the dummies: test_job_environment.py.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid

import pytest
from job_environment import (
    EXPECTED,
    FAILING_SETUP,
    assert_the_setup_failure_is_reported,
    environment_with,
    make_job_directories,
    what_the_job_sees,
)
from real_schedulers import REPO_DIR, require_scheduler
from session_logs import session_events

import pypoolparty

sys.path.insert(0, os.path.join(REPO_DIR, "tests", "htcondor"))
import job_user  # noqa: E402  (tests/htcondor is no package)

SCHEDULERS = {
    "slurm_array": (
        "slurm",
        "pypoolparty.slurm.array",
        ["sbatch", "squeue", "scancel"],
        ["scontrol", "ping"],
    ),
    "slurm_job": (
        "slurm",
        "pypoolparty.slurm",
        ["sbatch", "squeue", "scancel"],
        ["scontrol", "ping"],
    ),
    "sge": ("sge", "pypoolparty.sun_grid_engine", ["qsub", "qstat", "qdel"], ["qstat", "-g", "c"]),
}


@pytest.fixture(params=sorted(SCHEDULERS))
def real_pool_class(request):
    name, module, commands, probe = SCHEDULERS[request.param]
    require_scheduler(name, commands, probe=probe)
    return importlib.import_module(module).Pool


def options(tmp_path) -> dict:
    return {
        "work_dir": str(tmp_path / "work"),
        "polling_interval": 0.2,
        "job_name_prefix": f"ppp{uuid.uuid4().hex[:8]}",
    }


def test_exported_variables_act_when_the_interpreter_starts_on_a_real_scheduler(
    real_pool_class, tmp_path, monkeypatch
):
    directories = make_job_directories(str(tmp_path / "job"))
    for name, value in environment_with(directories, dict(os.environ)).items():
        monkeypatch.setenv(name, value)
    pool = real_pool_class(setup=directories["setup"], **options(tmp_path))
    seen = pool.map(what_the_job_sees, [directories["library"]] * 2, chunksize=1)
    assert seen == [EXPECTED] * 2


def test_a_failing_setup_line_ends_the_map_on_a_real_scheduler(real_pool_class, tmp_path):
    pool = real_pool_class(setup=FAILING_SETUP, **options(tmp_path))
    with pytest.raises(pypoolparty.JobCannotRun) as info:
        pool.map(abs, range(3), chunksize=1)
    assert_the_setup_failure_is_reported(str(info.value))
    events = session_events(tmp_path / "work")
    assert len([e for e in events if e["event"] == "submitting"]) == 1


# -- HTCondor, which never runs a job as root ---------------------------------

HTCONDOR_SCRIPT = """
import json, sys
import pypoolparty, pypoolparty.htcondor
from job_environment import what_the_job_sees

if __name__ == "__main__":
    work_dir, setup, library, prefix = sys.argv[1], sys.argv[2], sys.argv[3:5], sys.argv[5]
    setup = json.loads(setup)
    pool = pypoolparty.htcondor.Pool(
        work_dir=work_dir, setup=setup, polling_interval=0.2, batch_name=prefix,
        job_name_prefix=prefix,
    )
    try:
        print(json.dumps({"results": pool.map(what_the_job_sees, [library] * 2, chunksize=1)}))
    except pypoolparty.JobCannotRun as error:
        print(json.dumps({"cannot_run": str(error)}))
"""


@pytest.fixture
def condor_user():
    entry = job_user.require_job_user()
    return entry


def run_as_condor_user(entry, setup: list[str]) -> dict:
    python = job_user.ensure_venv()
    shared = job_user.make_shared_dir(entry)
    try:
        directories = make_job_directories(os.path.join(shared, "job"))
        script = os.path.join(shared, "user_script.py")
        with open(script, "w") as file:
            file.write(HTCONDOR_SCRIPT)
        environ = job_user.environment(entry)
        # This checkout and the tests' helpers first, whatever the venv's .pth names.
        environ["PYTHONPATH"] = os.pathsep.join([REPO_DIR, os.path.join(REPO_DIR, "tests")])
        prefix = f"ppp{uuid.uuid4().hex[:8]}"
        completed = subprocess.run(
            [
                python,
                script,
                os.path.join(shared, "work"),
                json.dumps(setup or directories["setup"]),
                *directories["library"],
                prefix,
            ],
            env=environment_with(directories, environ),
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
        report["events"] = session_events(os.path.join(shared, "work"))
        return report
    finally:
        job_user.remove_shared_dir(shared)


def test_exported_variables_act_when_the_interpreter_starts_on_the_real_htcondor(condor_user):
    report = run_as_condor_user(condor_user, setup=[])
    assert report.get("results") == [EXPECTED] * 2, report


def test_a_failing_setup_line_ends_the_map_on_the_real_htcondor(condor_user):
    report = run_as_condor_user(condor_user, setup=FAILING_SETUP)
    assert_the_setup_failure_is_reported(report["cannot_run"])
    assert len([e for e in report["events"] if e["event"] == "submitting"]) == 1
