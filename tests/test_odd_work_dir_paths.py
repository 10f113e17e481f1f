"""A work_dir whose path holds characters the schedulers' syntaxes give a meaning.

Hydra names run folders ``lr=0.1,bs=32``; people put spaces, quotes, ``$``,
``#``, ``%`` and accents in directory names. Each scheduler reads paths in
its own syntax: HTCondor's submit language (macros ``$(...)``, and a bare
``name=value`` argument of condor_submit is a submit command), Grid Engine's
``-o``/``-e`` path lists (``,`` separates, ``:`` names a host, ``$HOME`` is
expanded), sbatch's filename patterns (``%a``, ``%%``), and the shell of
every job script. Every pool must run a map in such a directory and keep its
jobs' output, on the dummies and on the real schedulers.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import pytest
from real_schedulers import require_scheduler

import pypoolparty
from dummy_queues import make_pool
from pypoolparty import archive
from pypoolparty.htcondor import submitfile
from pypoolparty.scheduler import Submission, SubmissionRejected, WorkerCall
from pypoolparty.slurm.scheduler import escape_pattern
from pypoolparty.sun_grid_engine.scheduler import qsub_can_name

# The real HTCondor runs jobs as an ordinary user; its helpers live beside its tests.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "htcondor"))
import job_user  # noqa: E402

ODD_NAME = "lr=0.1,bs=32 $HOME $(x) 'q\" #h 100%a %% é ü"
"""Spaces, ``=``, ``,``, ``$``, ``'``, ``"``, ``#``, ``%`` and non-ASCII letters."""

QSUB_NAMEABLE = "lr=0.1 'q\" #h 100%a é"
"""Odd, but qsub's ``-o``/``-e`` can name it: Grid Engine makes the job's
output files itself (with ``ODD_NAME``, the job script does)."""

NUM_TASKS = 3
REAL_POOLS = {
    "slurm_array": ("slurm", pypoolparty.slurm.array.Pool),
    "slurm_job": ("slurm", pypoolparty.slurm.Pool),
    "sge": ("sge", pypoolparty.sun_grid_engine.Pool),
}


def square_and_say_so(work_dir: str):
    # Made inside a function, so that cloudpickle sends it by value: the
    # jobs cannot import this test module.
    def task(x):
        import os
        import stat

        print(f"stdout of task {x}")
        print(f"stderr of task {x}", file=sys.stderr)
        # Issue 17, item 15: while the job runs, every file of the work_dir
        # is private, the scheduler's output files of this very job too.
        shared = {}
        for root, _, names in os.walk(work_dir):
            for name in names:
                path = os.path.join(root, name)
                try:  # other processes of the map rename and remove theirs
                    mode = os.lstat(path).st_mode
                except FileNotFoundError:
                    continue
                if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) & 0o077:
                    shared[os.path.relpath(path, work_dir)] = oct(stat.S_IMODE(mode))
        if shared:
            return shared
        # Started where the map was called (the odd directory), as
        # multiprocessing's workers are.
        return x * x if os.getcwd() == os.path.dirname(work_dir) else os.getcwd()

    return task


def outputs_of(work_dir: str) -> dict[str, list[str]]:
    """What the kept session directory archived of each chunk's stdout and stderr."""
    (session_dir,) = glob.glob(os.path.join(glob.escape(work_dir), "map-*"))
    outputs = {}
    for which in ("stdout", "stderr"):
        path = os.path.join(session_dir, f"{which}.zip")
        members = [archive.read_member(path, f"{i}.txt") or b"" for i in range(NUM_TASKS)]
        outputs[which] = [member.decode() for member in members]
    return outputs


def assert_ran_and_kept_output(results, work_dir: str) -> None:
    assert results == [x * x for x in range(NUM_TASKS)]
    outputs = outputs_of(work_dir)
    for i in range(NUM_TASKS):
        assert f"stdout of task {i}" in outputs["stdout"][i]
        assert f"stderr of task {i}" in outputs["stderr"][i]


@pytest.mark.parametrize(
    "pool_kind, name",
    [
        ("local", ODD_NAME),
        ("slurm_array", ODD_NAME),
        ("slurm_job", ODD_NAME),
        ("sge", ODD_NAME),
        ("sge", QSUB_NAMEABLE),
        ("htcondor", ODD_NAME),
    ],
)
def test_a_map_runs_in_an_odd_work_dir_on_each_dummy(
    pool_kind, name, dummy_queue, tmp_path, monkeypatch
):
    dummy_queue(pool_kind)
    work_dir = str(tmp_path / name / "wd")
    os.makedirs(os.path.dirname(work_dir))
    monkeypatch.chdir(os.path.dirname(work_dir))  # Hydra's runs start in theirs
    pool = make_pool(
        pool_kind,
        work_dir=work_dir,
        keep_work_dir=True,
        polling_interval=0.05,
        missing_result_grace_period=1.0,
        max_num_resubmissions=0,
    )
    results = pool.map(square_and_say_so(work_dir), range(NUM_TASKS), chunksize=1)
    assert_ran_and_kept_output(results, work_dir)


@pytest.mark.parametrize(
    "pool_kind, name",
    [
        pytest.param("slurm_array", ODD_NAME, marks=pytest.mark.slurm),
        pytest.param("slurm_job", ODD_NAME, marks=pytest.mark.slurm),
        pytest.param("sge", ODD_NAME, marks=pytest.mark.sge),
        pytest.param("sge", QSUB_NAMEABLE, marks=pytest.mark.sge),
    ],
)
def test_a_map_runs_in_an_odd_work_dir_on_the_real_scheduler(
    pool_kind, name, tmp_path, monkeypatch
):
    scheduler, pool_class = REAL_POOLS[pool_kind]
    require_scheduler(scheduler)
    work_dir = str(tmp_path / name / "wd")
    os.makedirs(os.path.dirname(work_dir))
    # Hydra's runs start in theirs: qsub -cwd would replace $HOME in it.
    monkeypatch.chdir(os.path.dirname(work_dir))
    pool = pool_class(
        work_dir=work_dir,
        keep_work_dir=True,
        polling_interval=0.3,
        max_num_resubmissions=0,
        job_name_prefix="pppodd",
        # Jobs that claim chunks (links in the odd path) and run two at once.
        num_simultaneously_running_tasks=2,
        tasks_per_job=2,
    )
    results = pool.map(square_and_say_so(work_dir), range(NUM_TASKS), chunksize=1)
    assert_ran_and_kept_output(results, work_dir)


@pytest.mark.htcondor
def test_a_map_runs_in_an_odd_work_dir_on_the_real_htcondor():
    user = job_user.require_job_user()
    python = job_user.ensure_venv()
    shared_dir = job_user.make_shared_dir(user)
    try:
        work_dir = os.path.join(shared_dir, ODD_NAME, "wd")
        driver = os.path.join(os.path.dirname(job_user.__file__), "htcondor_driver.py")
        options = dict(
            keep_work_dir=True,
            polling_interval=0.3,
            max_num_resubmissions=0,
            num_simultaneously_running_tasks=2,
            tasks_per_job=2,
        )
        process = job_user.popen(
            user,
            [python, driver, "say_squares", work_dir, json.dumps(options)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stdout, stderr = process.communicate(timeout=180)
        outcome = json.loads(stdout.strip().splitlines()[-1])
        assert "error" not in outcome, outcome
        assert_ran_and_kept_output(outcome["results"], work_dir)
    finally:
        job_user.remove_shared_dir(shared_dir)


# ------------------------------------------------ what each syntax is given


def test_sbatch_patterns_get_a_literal_percent_sign():
    assert escape_pattern("/runs/100%a/x") == "/runs/100%%a/x"
    assert escape_pattern("/runs/plain") == "/runs/plain"


@pytest.mark.parametrize("pool_kind", ["slurm_array", "slurm_job"])
def test_slurm_refuses_a_backslash_before_submitting(pool_kind, dummy_queue, tmp_path):
    dummy = dummy_queue(pool_kind)
    work_dir = str(tmp_path / "a\\b" / "wd")
    pool = make_pool(pool_kind, work_dir=work_dir, polling_interval=0.05)
    with pytest.raises(SubmissionRejected, match="holds a backslash") as raised:
        pool.map(abs, [-1, -2])
    assert "Nothing was submitted" in str(raised.value)
    assert not dummy.jobs()


@pytest.mark.parametrize("character", [",", ":", "$"])
def test_qsub_path_lists_cannot_name_a_directory_with(character):
    assert not qsub_can_name(f"/runs/a{character}b")
    assert qsub_can_name("/runs/lr=0.1 'q\" #h %a é")
    assert qsub_can_name(f"/runs/{QSUB_NAMEABLE}")


def test_every_path_of_the_submit_file_is_a_literal(tmp_path):
    directory = "/runs/lr=0.1 $(x) $HOME"
    worker = WorkerCall(
        python_path="/opt/py $(v)/bin/python",
        script_path=f"{directory}/worker.py",
        session_dir=directory,
    )
    submission = Submission(chunks=[0, 1], job_name="ppp-1", worker=worker, directory=directory)
    text = submitfile.render(submission, pypoolparty.htcondor.options.checked_options())
    escaped = "/runs/lr=0.1 $(DOLLAR)(x) $(DOLLAR)HOME"
    assert f"initialdir = {escaped}\n" in text
    assert f"output = {escaped}/chunk-$(ichunk).stdout\n" in text
    assert "executable = /opt/py $(DOLLAR)(v)/bin/python\n" in text
    assert "'--ichunk' '$(ichunk)'" in text


def test_a_line_break_in_a_path_is_refused_for_htcondor():
    with pytest.raises(SubmissionRejected, match="line break"):
        submitfile.literal("/runs/a\nb")
