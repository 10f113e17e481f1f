"""The job's environment on every pool, on the dummy queues (issue 16, items 1 and 2).

- The exported variables are in force when the worker's interpreter starts:
  a library found only through ``LD_LIBRARY_PATH`` loads with
  ``ctypes.CDLL``, a ``sitecustomize`` found only through ``PYTHONPATH``
  runs, a command found only through ``PATH`` runs in a setup line.
- Setup lines run before the worker, in its shell; a failing one ends the
  map with ``JobCannotRun`` naming the line and showing the job's stderr,
  without a resubmission.

The real schedulers: tests/test_job_environment_real.py.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from job_environment import (
    EXPECTED,
    FAILING_SETUP,
    assert_the_setup_failure_is_reported,
    environment_with,
    make_job_directories,
    what_the_job_sees,
)
from real_schedulers import REPO_DIR
from session_logs import session_events

import pypoolparty
from dummy_queues import POOL_KINDS, make_pool


def read_variable(name):
    return os.environ.get(name)


@pytest.fixture
def directories(tmp_path, monkeypatch):
    """The library, sitecustomize and command, on this process's search paths."""
    made = make_job_directories(str(tmp_path / "job"))
    for name, value in environment_with(made, dict(os.environ)).items():
        monkeypatch.setenv(name, value)
    return made


@pytest.mark.parametrize("pool_kind", sorted(POOL_KINDS))
def test_exported_variables_act_when_the_interpreter_starts(
    pool_kind, dummy_queue, directories, tmp_path
):
    dummy_queue(pool_kind)
    pool = make_pool(
        pool_kind,
        2,
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        setup=directories["setup"],
    )
    seen = pool.map(what_the_job_sees, [directories["library"]] * 3, chunksize=1)
    assert seen == [EXPECTED] * 3


@pytest.mark.parametrize("pool_kind", sorted(POOL_KINDS))
def test_a_failing_setup_line_ends_the_map_without_resubmission(pool_kind, dummy_queue, tmp_path):
    dummy_queue(pool_kind)
    work_dir = tmp_path / "work"
    pool = make_pool(
        pool_kind, 2, work_dir=str(work_dir), polling_interval=0.05, setup=FAILING_SETUP
    )
    with pytest.raises(pypoolparty.JobCannotRun) as info:
        pool.map(abs, range(4), chunksize=1)
    assert_the_setup_failure_is_reported(str(info.value))
    events = session_events(work_dir)
    assert len([e for e in events if e["event"] == "submitting"]) == 1
    (failed,) = [e for e in events if e["event"] == "job_failed"]
    assert "setup line 2" in failed["reason"]


def test_the_command_line_shows_the_failed_setup_and_its_stderr(tmp_path):
    work_dir = tmp_path / "work"
    pool = pypoolparty.local.Pool(1, work_dir=str(work_dir), setup=FAILING_SETUP)
    with pytest.raises(pypoolparty.JobCannotRun):
        pool.map(abs, [1])
    env = dict(os.environ, PYTHONPATH=REPO_DIR)
    shown = subprocess.run(
        [sys.executable, "-m", "pypoolparty", "errors", str(work_dir)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert "setup line 2" in shown.stdout
    assert "about to fail" in shown.stdout


def test_a_map_continues_once_what_the_setup_line_needs_is_there(tmp_path):
    needed = tmp_path / "module-installed"
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, setup=[f"test -e '{needed}'"])
    with pytest.raises(pypoolparty.JobCannotRun, match="setup line 1"):
        pool.map(abs, range(-3, 0), chunksize=1)
    needed.touch()
    assert pool.map(abs, range(-3, 0), chunksize=1) == [3, 2, 1]


def test_setup_lines_run_in_order_in_the_workers_shell(tmp_path):
    pool = pypoolparty.local.Pool(
        1,
        work_dir=str(tmp_path / "work"),
        setup=["cd /", "export PPP_ORDER=first", 'export PPP_ORDER="$PPP_ORDER,second"'],
    )
    assert pool.map(read_variable, ["PPP_ORDER"]) == ["first,second"]


# Lines whose failure set -e forgives (a failing test before &&, a failing
# command before ||, a negated one) and lines whose failure it does not.
FORGIVEN_LINES = [
    "[ -f /nonexistent/site.sh ] && source /nonexistent/site.sh",
    "false || export PPP_AFTER_OR=yes",
    "! true",
    "if false; then exit 3; fi",
]
FATAL_LINES = [
    ("true && false", 1),
    ("false || (exit 4)", 4),
    ("echo about to fail >&2; false; export PPP_UNREACHED=yes", 1),
]


def test_setup_lines_set_e_forgives_do_not_end_the_job(tmp_path):
    pool = pypoolparty.local.Pool(
        1, work_dir=str(tmp_path / "work"), setup=[*FORGIVEN_LINES, "export PPP_LAST=ran"]
    )
    assert pool.map(read_variable, ["PPP_AFTER_OR", "PPP_LAST"]) == ["yes", "ran"]


@pytest.mark.parametrize("line, status", FATAL_LINES)
def test_a_failing_last_command_of_a_setup_line_ends_the_job(line, status, tmp_path):
    pool = pypoolparty.local.Pool(
        1, work_dir=str(tmp_path / "work"), setup=["true", line, "export PPP_LAST=ran"]
    )
    with pytest.raises(pypoolparty.JobCannotRun, match=f"setup line 2 .*exit status {status}\\b"):
        pool.map(read_variable, ["PPP_LAST"])


def test_secrets_of_the_environment_stay_out_of_scripts_command_lines_and_logs(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("PPP_TEST_SECRET", "hunter2 'quoted' $(not run)")
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(1, work_dir=work_dir, keep_work_dir=True)
    assert pool.map(read_variable, ["PPP_TEST_SECRET"]) == ["hunter2 'quoted' $(not run)"]
    (session_dir,) = [os.path.join(work_dir, n) for n in os.listdir(work_dir)]
    holding = []
    for root, _, files in os.walk(session_dir):
        for name in files:
            path = os.path.join(root, name)
            if os.path.islink(path):  # a claim: its text names a job
                data = os.readlink(path).encode()
            else:
                with open(path, "rb") as file:
                    data = file.read()
            if b"hunter2" in data:
                holding.append(os.path.relpath(path, session_dir))
    assert holding == ["environment.sh"]
    assert os.stat(os.path.join(session_dir, "environment.sh")).st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "setup, complaint",
    [
        ("module load gcc", "not one string"),
        (["module load gcc\nsource env"], "line break"),
        (["ok", 3], "setup line 2 must be a string"),
        (["if true; then"], "setup line 1 is not complete bash syntax"),
        (5, "list of shell lines"),
    ],
)
def test_bad_setup_lines_are_refused_before_anything_is_submitted(setup, complaint, tmp_path):
    with pytest.raises(pypoolparty.BadInput, match=complaint):
        pypoolparty.local.Pool(1, work_dir=str(tmp_path / "work"), setup=setup)
    assert not (tmp_path / "work").exists()


def test_dask_jobqueues_name_for_setup_lines_is_accepted(tmp_path):
    pool = pypoolparty.local.Pool(
        1, work_dir=str(tmp_path / "work"), job_script_prologue=["export PPP_X=1"]
    )
    assert pool.map(read_variable, ["PPP_X"]) == ["1"]
