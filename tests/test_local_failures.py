"""Full-chain tests of what goes wrong, on pypoolparty.local.Pool."""

import multiprocessing.pool
import os
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import zipfile

import pytest
from interpreters import skip_the_submitters_check
from waiting import wait_for

import dummy_queues
import pypoolparty
from pypoolparty import archive, event_log


def only_session_dir(work_dir):
    (name,) = [n for n in os.listdir(work_dir) if n.startswith("map-")]
    return os.path.join(work_dir, name)


def fail_on_seven(x):
    if x == 7:
        raise KeyError(f"no key {x}")
    return x


def test_a_task_exception_is_reraised_with_its_type_traceback_index_and_work_dir(tmp_path):
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir)
    with pytest.raises(KeyError) as info:
        pool.map(fail_on_seven, range(20), chunksize=2)
    assert info.value.args == ("no key 7",)
    cause = info.value.__cause__
    assert isinstance(cause, pypoolparty.RemoteTraceback)
    # code written for multiprocessing checks its own class
    assert isinstance(cause, multiprocessing.pool.RemoteTraceback)
    assert "fail_on_seven" in str(cause) and "KeyError" in str(cause)
    assert "Task 7" in str(cause)
    session_dir = only_session_dir(work_dir)
    assert session_dir in str(cause)
    # the other jobs finished and their results were kept for a later call
    with zipfile.ZipFile(os.path.join(session_dir, "results.zip")) as archive:
        kept = archive.namelist()
    assert len(kept) == 10 and "3.failed.pickle" in kept
    with zipfile.ZipFile(os.path.join(session_dir, "exceptions.zip")) as archive:
        assert "KeyError: 'no key 7'" in archive.read("7.txt").decode()


class Interrupts:
    """A task that records each run in ``runs_file``, then raises ``error``."""

    def __init__(self, runs_file, error):
        self.runs_file, self.error = runs_file, error

    def __call__(self, x):
        with open(self.runs_file, "a") as file:
            file.write(f"{x}\n")
        raise self.error


@pytest.mark.parametrize("pool_kind", ["local", "slurm_array"])
@pytest.mark.parametrize("error", [KeyboardInterrupt("from the task"), SystemExit(3)])
def test_a_task_raising_keyboard_interrupt_or_system_exit_runs_once_and_reraises_it(
    pool_kind, error, tmp_path, dummy_queue
):
    dummy_queue(pool_kind)
    runs_file = tmp_path / "runs.txt"
    pool = dummy_queues.make_pool(
        pool_kind,
        1,
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        max_num_resubmissions=1,
    )
    with pytest.raises(type(error)) as info:
        pool.map(Interrupts(str(runs_file), error), [5])
    assert info.value.args == error.args
    assert isinstance(info.value.__cause__, multiprocessing.pool.RemoteTraceback)
    assert "Task 0 failed" in str(info.value.__cause__)
    # the task's own exception: not a scheduler failure to resubmit
    assert runs_file.read_text() == "5\n"
    pool.close()


def test_the_first_failed_task_is_the_one_raised(tmp_path):
    pool = pypoolparty.local.Pool(2, work_dir=str(tmp_path / "work"))
    with pytest.raises(ZeroDivisionError) as info:
        pool.map(lambda x: 1 / (x % 5), range(20), chunksize=3)
    assert "Task 0 failed" in str(info.value.__cause__)
    assert "4 tasks failed in all" in str(info.value.__cause__)


def test_unpicklable_function_is_refused_before_anything_is_submitted(tmp_path):
    lock = threading.Lock()
    work_dir = tmp_path / "work"
    pool = pypoolparty.local.Pool(2, work_dir=str(work_dir))
    with pytest.raises(pypoolparty.BadInput, match="cannot be pickled"):
        pool.map(lambda x: lock, [1, 2])
    assert not work_dir.exists()


def test_unpicklable_task_is_refused_naming_its_index(tmp_path):
    work_dir = tmp_path / "work"
    pool = pypoolparty.local.Pool(2, work_dir=str(work_dir))
    with pytest.raises(pypoolparty.BadInput, match="task 2 .*cannot be pickled") as info:
        pool.map(abs, [1, 2, threading.Lock(), 4])
    assert "Nothing was submitted" in str(info.value)
    assert [p for p in work_dir.iterdir() if p.name.startswith("map-")] == []


def make_generator(x):
    return (i for i in range(x))


def test_an_unpicklable_result_raises_never_returns_none(tmp_path):
    pool = pypoolparty.local.Pool(2, work_dir=str(tmp_path / "work"))
    with pytest.raises(pypoolparty.TaskError, match="cannot be pickled") as info:
        pool.map(make_generator, [1, 2])
    assert info.value.itask == 0


@pytest.mark.parametrize(
    "options, message",
    [
        ({"polling_interval": 0}, "polling_interval"),
        ({"polling_interval": -1.0}, "polling_interval"),
        ({"max_num_resubmissions": -1}, "max_num_resubmissions"),
        ({"python_path": "/no/such/python"}, "python_path"),
        ({"python_path": "python3"}, "absolute path"),
        ({"environment": "secret"}, "environment"),
        ({"job_name_prefix": "1abc"}, "job_name_prefix"),
    ],
)
def test_invalid_options_are_refused_at_once(options, message):
    with pytest.raises(ValueError, match=message):
        pypoolparty.local.Pool(2, **options)


def test_unknown_options_and_bad_chunksize_are_refused(tmp_path):
    with pytest.raises(TypeError, match="polling_intervall"):
        pypoolparty.local.Pool(2, polling_intervall=1)
    with pytest.raises(ValueError, match="num_simultaneously_running_tasks"):
        pypoolparty.local.Pool(0)
    pool = pypoolparty.local.Pool(2, work_dir=str(tmp_path / "work"))
    with pytest.raises(ValueError, match="chunksize"):
        pool.map(abs, [1], chunksize=0)
    with pytest.raises(TypeError, match="starmap"):
        pool.starmap(abs, [1, 2])


def test_a_work_dir_that_cannot_be_created_is_refused(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    pool = pypoolparty.local.Pool(2, work_dir=str(blocker / "work"))
    with pytest.raises(pypoolparty.WorkDirError, match="a_file' is a file, not a directory"):
        pool.map(abs, [1])


def test_a_work_dir_others_can_write_is_refused(tmp_path):
    work_dir = tmp_path / "shared"
    work_dir.mkdir()
    os.chmod(work_dir, 0o777)
    pool = pypoolparty.local.Pool(2, work_dir=str(work_dir))
    with pytest.raises(pypoolparty.WorkDirError, match="can be written by others"):
        pool.map(abs, [1])
    assert list(work_dir.iterdir()) == []


def die_once(x, marker_dir):
    marker = os.path.join(marker_dir, f"{x}.died")
    if x == 3 and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def test_a_job_killed_from_outside_is_resubmitted_and_the_map_completes(tmp_path):
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    results = pool.starmap(die_once, [(x, str(tmp_path)) for x in range(8)], chunksize=2)
    assert results == list(range(8))
    events = list(event_log.read(os.path.join(only_session_dir(work_dir), "log.jsonl")))
    failures = [e for e in events if e["event"] == "job_failed"]
    assert len(failures) == 1 and failures[0]["ichunk"] == 1
    assert "SIGKILL" in failures[0]["reason"]
    assert sum(1 for e in events if e["event"] == "submitted") == 2


def always_die(x):
    print(f"task {x} is about to die", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def test_exhausted_resubmissions_raise_naming_chunks_tasks_reason_stderr_and_work_dir(tmp_path):
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(1, work_dir=work_dir, max_num_resubmissions=2)
    with pytest.raises(pypoolparty.ResubmissionsExhausted) as info:
        pool.map(always_die, range(4), chunksize=2)
    message = str(info.value)
    assert "after 2 resubmission(s)" in message
    assert "chunk 0 (tasks 0..1)" in message
    assert "killed by signal SIGKILL" in message
    assert "task 0 is about to die" in message
    session_dir = only_session_dir(work_dir)
    assert session_dir in message
    jobs_of_chunk_0 = [
        job
        for e in event_log.read(os.path.join(session_dir, "log.jsonl"))
        if e["event"] == "submitted"
        for job in e["jobs"]
        if job[1] == 0
    ]
    assert len(jobs_of_chunk_0) == 3


def test_a_job_that_ends_without_a_result_is_resubmitted_after_the_grace_period(tmp_path):
    marker = tmp_path / "first-call-done"
    fake_python = tmp_path / "python"
    fake_python.write_text(
        # The submitter's interpreter check (python -c ...) gets the real Python.
        f'#!/bin/sh\ncase "$1" in -c) exec {sys.executable} "$@";; esac\n'
        f"if [ ! -e {marker} ]; then touch {marker}; exit 0; fi\n"
        f'exec {sys.executable} "$@"\n'
    )
    fake_python.chmod(0o755)
    pool = pypoolparty.local.Pool(
        1,
        python_path=str(fake_python),
        work_dir=str(tmp_path / "work"),
        missing_result_grace_period=0.2,
    )
    assert pool.map(abs, [-1, -2]) == [1, 2]
    assert marker.exists()


MAP_SCRIPT = """
import os, sys, time
import pypoolparty

def slow(x):
    with open(os.path.join({side_effects!r}, str(x)), "a") as file:
        file.write("ran\\n")
    time.sleep({sleep})
    return x * 10

if __name__ == "__main__":
    pool = pypoolparty.local.Pool(2, work_dir={work_dir!r})
    print(pool.map(slow, range({n}), chunksize=1))
"""


def start_map(tmp_path, n, sleep):
    side_effects = tmp_path / "side_effects"
    side_effects.mkdir(exist_ok=True)
    work_dir = str(tmp_path / "work")
    script = tmp_path / "map_script.py"
    script.write_text(
        textwrap.dedent(
            MAP_SCRIPT.format(side_effects=str(side_effects), sleep=sleep, work_dir=work_dir, n=n)
        )
    )
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    return process, work_dir, side_effects


def worker_pids(session_dir):
    pids = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                if session_dir.encode() in file.read():
                    pids.append(int(entry))
        except (OSError, ValueError):
            pass
    return pids


@pytest.mark.parametrize(
    "signum, exception", [(signal.SIGINT, "KeyboardInterrupt"), (signal.SIGTERM, "Terminated")]
)
def test_interrupting_a_map_cancels_its_jobs_and_keeps_the_work_dir(tmp_path, signum, exception):
    process, work_dir, side_effects = start_map(tmp_path, n=6, sleep=30)
    wait_for(lambda: len(os.listdir(side_effects)) == 2)
    session_dir = only_session_dir(work_dir)
    assert worker_pids(session_dir)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert exception in stderr
    # The map's two jobs (one per slot): they claim the other chunks.
    assert "cancelled 2 job(s)" in stderr and session_dir in stderr
    wait_for(lambda: worker_pids(session_dir) == [], timeout=10)
    assert os.path.exists(os.path.join(session_dir, "session.json"))


def test_a_killed_map_resumes_without_running_finished_chunks_twice(tmp_path):
    process, work_dir, side_effects = start_map(tmp_path, n=8, sleep=0.5)
    wait_for(lambda: len(os.listdir(side_effects)) >= 4)
    process.kill()
    process.wait()
    # The workers of the killed process run on; running the script again
    # continues the same map and adopts them.
    again = subprocess.run(
        [sys.executable, str(tmp_path / "map_script.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == str([x * 10 for x in range(8)])
    runs = {
        name: (side_effects / name).read_text().count("ran") for name in os.listdir(side_effects)
    }
    assert runs == {str(x): 1 for x in range(8)}


def test_another_map_in_the_same_work_dir_gets_its_own_session(tmp_path):
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    assert pool.map(abs, [-1, -2]) == [1, 2]
    assert pool.map(abs, [-3, -4]) == [3, 4]
    assert pool.map(str, [-3, -4]) == ["-3", "-4"]
    assert len([n for n in os.listdir(work_dir) if n.startswith("map-")]) == 3
    assert stat.S_IMODE(os.stat(work_dir).st_mode) == 0o700


def test_a_result_larger_than_max_result_size_is_an_error_of_its_task(tmp_path):
    pool = pypoolparty.local.Pool(2, work_dir=str(tmp_path / "work"), max_result_size=1000)
    with pytest.raises(pypoolparty.TaskError, match="more than the limit of 1000 bytes") as info:
        pool.map(lambda n: "x" * n, [10, 10, 5000, 10], chunksize=1)
    assert info.value.itask == 2


@pytest.fixture
def small_file_system(tmp_path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    completed = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if completed.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {completed.stderr.strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill_disk_at_task_three(x, filler_path, fill_flag):
    if x == 3 and os.path.exists(fill_flag):
        os.remove(fill_flag)
        with open(filler_path, "wb") as file:
            try:
                file.write(b"\0" * 8 * 1024 * 1024)
            except OSError:
                pass
    return "r" * 20_000


def test_a_full_work_dir_stops_the_map_naming_it_and_keeps_finished_results(
    small_file_system, tmp_path
):
    work_dir = str(small_file_system / "work")
    filler = str(small_file_system / "filler")
    fill_flag = tmp_path / "fill the disk once"
    fill_flag.touch()
    pool = pypoolparty.local.Pool(1, work_dir=work_dir)
    tasks = [(x, filler, str(fill_flag)) for x in range(24)]
    with pytest.raises(pypoolparty.WorkDirError) as info:
        pool.starmap(fill_disk_at_task_three, tasks, chunksize=1)
    assert "full" in str(info.value) and work_dir in str(info.value)
    session_dir = only_session_dir(work_dir)
    os.remove(filler)
    # Chunk 0 finished before the disk filled: archived, or its outcome still
    # waits to be (the one job ran chunks 0..2 before the first fold).
    archived = archive.names(os.path.join(session_dir, "results.zip"))
    assert "0.pickle" in archived + os.listdir(os.path.join(session_dir, "outcomes"))
    results = pool.starmap(fill_disk_at_task_three, tasks, chunksize=1)
    assert results == ["r" * 20_000] * 24


@pytest.mark.parametrize(
    "pool_module, option",
    [
        ("slurm.array", "sbatch_path"),
        ("slurm", "squeue_path"),
        ("sun_grid_engine", "qsub_path"),
        ("htcondor", "condor_rm_path"),
    ],
)
def test_a_missing_scheduler_command_is_refused_before_anything_is_prepared(
    pool_module, option, tmp_path
):
    import importlib

    module = importlib.import_module(f"pypoolparty.{pool_module}")
    work_dir = tmp_path / "work"
    pool = module.Pool(work_dir=str(work_dir), **{option: str(tmp_path / "no-such-command")})
    with pytest.raises(pypoolparty.BadInput, match=f"{option}=.*Nothing was submitted"):
        pool.map(abs, [1, 2])
    assert not work_dir.exists()


def test_a_function_that_cannot_be_imported_on_the_worker_raises_the_workers_error(
    tmp_path, monkeypatch
):
    module_dir = tmp_path / "project"
    module_dir.mkdir()
    # Importable here, not on the "compute node" (local jobs carry PYPOOLPARTY_JOB_NAME).
    (module_dir / "analysis_tools.py").write_text(
        "import os\n"
        "if 'PYPOOLPARTY_JOB_NAME' in os.environ:\n"
        "    raise ModuleNotFoundError(\"No module named 'analysis_tools' on this node\")\n"
        "def analyse(x):\n"
        "    return x\n"
    )
    monkeypatch.syspath_prepend(str(module_dir))
    import analysis_tools

    pool = pypoolparty.local.Pool(2, work_dir=str(tmp_path / "work"))
    with pytest.raises(ModuleNotFoundError, match="analysis_tools' on this node") as info:
        pool.map(analysis_tools.analyse, range(4))
    assert "Task 0 failed" in str(info.value.__cause__)


def test_a_python_path_the_worker_cannot_execute_ends_with_a_clear_error(tmp_path, monkeypatch):
    # Executable on the submit host, where the interpreter check passes.
    skip_the_submitters_check(monkeypatch)
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    pool = pypoolparty.local.Pool(
        1, python_path=str(python), work_dir=str(tmp_path / "work"), max_num_resubmissions=1
    )
    python.chmod(0o644)  # as if the compute nodes could not execute it
    with pytest.raises(pypoolparty.JobCannotRun, match="exit code 126") as info:
        pool.map(abs, [1])
    assert "could not run the interpreter" in str(info.value)
    assert f"{python}: Permission denied" in str(info.value)  # the job's stderr
