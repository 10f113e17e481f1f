"""The Pool on a real Grid Engine (start one with ``local_clusters/sge/start.sh``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import pytest
from real_schedulers import require_scheduler
from session_logs import session_events
from waiting import wait_for

import pypoolparty
from pypoolparty.scheduler import SubmissionRejected
from pypoolparty.sun_grid_engine import parsing

pytestmark = pytest.mark.sge


@pytest.fixture(autouse=True)
def real_sge():
    require_scheduler("sge", ["qsub", "qstat", "qdel"], probe=["qstat", "-g", "c"])


def make_pool(tmp_path, **options):
    from pypoolparty import sun_grid_engine

    settings = dict(work_dir=str(tmp_path / "work"), polling_interval=0.5)
    settings.update(options)
    return sun_grid_engine.Pool(**settings)


def queued_jobs() -> list[parsing.QstatEntry]:
    output = subprocess.run(["qstat", "-xml"], capture_output=True, text=True, check=True)
    return parsing.parse_qstat_xml(output.stdout)


def queued_job_names() -> list[str]:
    return [entry.name for entry in queued_jobs()]


def test_map_of_a_thousand_tasks(tmp_path):
    pool = make_pool(tmp_path, job_name_prefix="pppmap")
    assert pool.map(lambda x: x * x, range(1000)) == [x * x for x in range(1000)]
    # tasks that wrote their results may still be exiting ("r", or "dr" once cancelled)
    wait_for(lambda: not [n for n in queued_job_names() if n.startswith("pppmap")], 30)


def test_starmap_of_a_thousand_tasks(tmp_path):
    pool = make_pool(tmp_path, num_simultaneously_running_tasks=2)
    tasks = [(x, x + 1) for x in range(1000)]
    assert pool.starmap(lambda a, b: a * b, tasks) == [x * (x + 1) for x in range(1000)]


def exit_100_on_first_try(marker_dir):
    # A job that exits with 100 goes to Grid Engine's error state Eqw.
    def task(x):
        marker = os.path.join(marker_dir, f"{x}.tried")
        if x == 5 and not os.path.exists(marker):
            open(marker, "w").close()
            os._exit(100)
        return -x

    return task


def test_a_job_in_error_state_is_resubmitted_and_the_map_completes(tmp_path):
    pool = make_pool(tmp_path, keep_work_dir=True, max_num_resubmissions=2)
    task = exit_100_on_first_try(str(tmp_path))
    assert pool.map(task, range(12), chunksize=3) == [-x for x in range(12)]
    failures = [e for e in session_events(tmp_path / "work") if e["event"] == "job_failed"]
    assert len(failures) == 1
    assert failures[0]["reason"].startswith("Eqw")
    assert "exit_status of job start = 100" in failures[0]["reason"]


def test_exhausted_resubmissions_raise_and_leave_nothing_queued(tmp_path):
    pool = make_pool(tmp_path, max_num_resubmissions=1, job_name_prefix="pppexhaust")
    with pytest.raises(pypoolparty.ResubmissionsExhausted) as raised:
        pool.map(lambda x: os._exit(100), range(2))
    assert "Eqw" in str(raised.value) and "exit_status of job start = 100" in str(raised.value)
    wait_for(lambda: not [n for n in queued_job_names() if n.startswith("pppexhaust")], 30)


CTRL_C_SCRIPT = """
import sys, time
from pypoolparty import sge
pool = sge.Pool(work_dir=sys.argv[1], polling_interval=0.5, job_name_prefix="pppctrlc")
pool.map(time.sleep, [60] * 4)
"""


def test_ctrl_c_leaves_nothing_in_qstat(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_SCRIPT, str(tmp_path / "work")],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        wait_for(lambda: any(n.startswith("pppctrlc") for n in queued_job_names()), 60)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0 and "map interrupted" in stderr
    wait_for(lambda: not [n for n in queued_job_names() if n.startswith("pppctrlc")], 30)


def job_description(_):
    return subprocess.run(
        ["qstat", "-j", os.environ["JOB_ID"]], capture_output=True, text=True
    ).stdout


def test_resource_options_reach_the_job(tmp_path):
    pool = make_pool(
        tmp_path,
        queue_name="all.q",
        parallel_environment="smp",
        slots=1,
        resources={"h_rt": "0:10:00", "h_vmem": "1G"},
    )
    (description,) = pool.map(job_description, [0])
    lines = dict(line.split(":", 1) for line in description.splitlines() if ":" in line)
    assert set(lines["hard resource_list"].strip().split(",")) == {"h_rt=600", "h_vmem=1G"}
    assert lines["hard_queue_list"].strip() == "all.q"
    assert "smp" in lines["parallel environment"]


def test_a_bad_option_gives_qsubs_own_message(tmp_path):
    pool = make_pool(tmp_path, queue_name="nosuch.q")
    with pytest.raises(SubmissionRejected, match='unknown queue "nosuch.q"'):
        pool.map(abs, [1])


def test_a_held_job_is_left_alone_until_released(tmp_path):
    pool = make_pool(tmp_path, qsub_arguments=["-h"], keep_work_dir=True, job_name_prefix="ppphold")
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(results=pool.map(abs, [-1, -2])))
    thread.start()
    try:
        held = wait_for(
            lambda: [
                e
                for e in session_events(tmp_path / "work")
                if e["event"] == "job_state" and e["state"] == "held"
            ],
            60,
        )
        assert held[0]["scheduler_state"] == "hqw"
    finally:
        job_numbers = {e.job_number for e in queued_jobs() if e.name.startswith("ppphold")}
        subprocess.run(["qrls", *job_numbers], capture_output=True, check=False)
        thread.join(120)
    assert outcome["results"] == [1, 2]
