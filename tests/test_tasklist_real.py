"""``pypoolparty run TASKLIST`` on a real SLURM and a real Sun Grid Engine.

Each task prints the job id the scheduler gave it, so the test sees that the
commands ran as that scheduler's jobs; one task fails and one times out, and
the others still run. CI starts the schedulers with
``sudo bash local_clusters/<name>/start.sh``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest
from real_schedulers import REPO_DIR, require_scheduler

JOB_ID_VARIABLE = {"slurm.array": "SLURM_JOB_ID", "sge": "JOB_ID"}
SCHEDULER = {"slurm.array": "slurm", "sge": "sge"}


def pypoolparty(*args, cwd) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_DIR, env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "pypoolparty", *map(str, args)],
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


@pytest.mark.parametrize(
    "pool",
    [
        pytest.param("slurm.array", marks=pytest.mark.slurm),
        pytest.param("sge", marks=pytest.mark.sge),
    ],
)
def test_a_task_list_runs_as_jobs_of_the_scheduler(tmp_path, pool):
    require_scheduler(SCHEDULER[pool])
    variable = JOB_ID_VARIABLE[pool]
    lines = [
        f"echo \"job ${variable}\" 'héllo ✓'",
        "echo broken >&2; exit 7",
        "sleep 600",
        "echo done > side-effect",
    ]
    (tmp_path / "tasks.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    options = (
        *("--pool", pool, "--timeout", "3", "--polling-interval", "0.5"),
        *("--pool-option", f"job_name_prefix=ppp{uuid.uuid4().hex[:6]}"),
        *("--pool-option", "missing_result_grace_period=5"),
    )
    run = pypoolparty("run", "tasks.txt", *options, cwd=tmp_path)
    out = run.stdout.decode()
    assert run.returncode == 1, out + run.stderr.decode()
    assert "4 task(s): 2 done, 2 failed, 0 not run" in out
    assert "failed: line 2 (exit status 7)" in out and "      broken" in out
    assert "failed: line 3 (timed out after 3 s)" in out
    assert (tmp_path / "side-effect").read_text() == "done\n"
    shown = pypoolparty("stdout", ".pypoolparty", 1, cwd=tmp_path).stdout.decode()
    job, jobid, greeting = shown.split(" ", 2)
    assert job == "job" and jobid.strip().isdigit(), f"not run as a {pool} job: {shown!r}"
    assert greeting == "héllo ✓\n"
    # One slice per task, on the compute host and worker process that ran it.
    timeline = pypoolparty("timeline", ".pypoolparty", "-o", "trace.json", cwd=tmp_path)
    assert timeline.returncode == 0, timeline.stderr.decode()
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    tasks = {e["name"]: e for e in events if e["ph"] == "X" and e["cat"].startswith("task")}
    assert sorted(tasks) == ["line 1", "line 2 FAILED", "line 3 FAILED", "line 4"]
    assert tasks["line 3 FAILED"]["args"]["failure"] == "timed out"
    workers = [e for e in events if e["ph"] == "X" and e["cat"].startswith("worker")]
    assert sum(w["args"]["num_tasks"] for w in workers) == 4
    # Again: nothing left to run, nothing submitted.
    again = pypoolparty("run", "tasks.txt", *options, cwd=tmp_path)
    assert "(0 in this call)" in again.stdout.decode()
