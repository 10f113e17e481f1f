"""Several tasks at once inside one job (``tasks_per_job``), on the local pool
and with the worker script run as a scheduler runs it.

The tasks wait at a barrier (a directory of markers) until as many have
started as the job has processes: a job that ran them one at a time would
never get past it, so a map that returns shows they overlapped.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import signal
import subprocess
import sys

import pytest
from test_cli import run_cli
from test_worker import prepare
from waiting import wait_for

import pypoolparty
from dummy_queues import make_pool
from pypoolparty import worker


def meet(barrier: str, x: int, count: int) -> None:
    """Wait until ``count`` tasks have reached ``barrier``."""
    open(os.path.join(barrier, str(x)), "w").close()
    wait_for(lambda: len(os.listdir(barrier)) >= count, timeout=60)


def square_in_threes(barrier: str, x: int) -> tuple[int, int, int]:
    meet(barrier, x, 3)
    print(f"task {x} says hello", flush=True)
    print(f"task {x} warns", file=sys.stderr, flush=True)
    if x == 4:
        raise ValueError(f"task {x} refuses")
    # The process group is the job's (the local pool starts each job in a session).
    return x * x, os.getpid(), os.getpgid(0)


def test_three_tasks_at_once_in_one_job_give_the_results_errors_and_outputs_of_one(tmp_path):
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    work_dir = str(tmp_path / "work")
    # Three slots, three tasks per job: one job.
    pool = pypoolparty.local.Pool(3, tasks_per_job=3, work_dir=work_dir, keep_work_dir=True)
    tasks = [(str(barrier), x) for x in range(7)]
    with pytest.raises(ValueError, match="task 4 refuses"):
        pool.starmap(square_in_threes, tasks, chunksize=1)
    for stream in ("stdout", "stderr"):
        shown = run_cli(stream, work_dir, 4)
        assert shown.returncode == 0, shown.stderr
        assert f"task 4 {'says hello' if stream == 'stdout' else 'warns'}" in shown.stdout
        # Each chunk's output apart, though three processes wrote at once.
        assert "task 5" not in shown.stdout and "task 3" not in shown.stdout

    # A new map (other tasks), at a barrier of its own: the first three tasks
    # run at once, in three processes.
    again = tmp_path / "barrier again"
    again.mkdir()
    others = [(str(again), x) for x in range(7) if x != 4]
    results = pool.starmap(square_in_threes, others, chunksize=1)
    assert [square for square, _, _ in results] == [0, 1, 4, 9, 25, 36]
    assert len({group for _, _, group in results}) == 1  # one job
    assert len({pid for _, pid, _ in results}) == 3  # three processes


def test_tasks_per_job_must_be_a_whole_number_of_at_least_one():
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(pypoolparty.BadInput, match="tasks_per_job must be a whole number >= 1"):
            pypoolparty.local.Pool(2, tasks_per_job=bad)


def test_without_a_shared_file_system_several_tasks_per_job_are_refused_when_the_pool_is_made(
    tmp_path,
):
    with pytest.raises(pypoolparty.BadInput, match="tasks_per_job=2 needs shared_file_system"):
        make_pool(
            "htcondor", shared_file_system=False, tasks_per_job=2, work_dir=str(tmp_path / "work")
        )


# -- the worker's processes ----------------------------------------------------


def die_in_the_second_task(barrier: str, x: int) -> int:
    meet(barrier, x, 3)
    if x == 1:
        os._exit(3)  # the process of the job that runs it dies
    return x


def wait_at_barrier_then_block(barrier: str, x: int) -> int:
    meet(barrier, x, 3)
    while True:  # until a warning signal interrupts the task
        signal.pause()


def prepare_claiming(session_dir, func, tasks, tasks_per_job):
    prepare(session_dir, func, tasks, 1, star=True)
    path = os.path.join(session_dir, "worker_config.json")
    with open(path) as file:
        config = json.load(file)
    config.update(claiming_chunks=len(tasks), tasks_per_job=tasks_per_job)
    with open(path, "w") as file:
        json.dump(config, file)


def start_worker_at_barrier(tmp_path, func, num_tasks: int):
    """A worker of 3 processes on ``num_tasks`` tasks ``(barrier, x)`` of ``func``, started."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    session_dir = tmp_path / "session"
    tasks = [(str(barrier), x) for x in range(num_tasks)]
    prepare_claiming(str(session_dir), func, tasks, 3)
    return barrier, session_dir, start_worker(session_dir)


def start_worker(session_dir):
    return subprocess.Popen(
        [sys.executable, worker.__file__, str(session_dir), "--ichunk", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def outcomes(session_dir) -> dict:
    found = {}
    for name in os.listdir(os.path.join(session_dir, "outcomes")):
        if name.endswith(".pickle"):
            with open(os.path.join(session_dir, "outcomes", name), "rb") as file:
                found[int(name.split(".")[0])] = pickle.load(file)
    return found


@pytest.mark.parametrize("to", ["first process", "process group"])
def test_a_warning_signal_interrupts_the_running_chunk_of_every_process(tmp_path, to):
    barrier, session_dir, process = start_worker_at_barrier(tmp_path, wait_at_barrier_then_block, 4)
    try:
        wait_for(lambda: len(os.listdir(barrier)) == 3)
        if to == "process group":
            os.killpg(process.pid, signal.SIGTERM)
        else:
            os.kill(process.pid, signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, err
    found = outcomes(session_dir)
    assert sorted(found) == [0, 1, 2]  # the fourth chunk never started
    assert len({outcome["pid"] for outcome in found.values()}) == 3
    for outcome in found.values():
        assert outcome["interrupted"] == {"signal": "SIGTERM", "unfinished_tasks": 1}
        assert outcome["home_chunk"] == 0
    assert not os.path.lexists(session_dir / "claims" / "3")


def test_a_process_of_the_job_that_dies_fails_the_job(tmp_path):
    barrier, session_dir, process = start_worker_at_barrier(tmp_path, die_in_the_second_task, 3)
    _, err = process.communicate(timeout=60)
    # Chunk 1's claim stays without an outcome: the job fails, so the map takes it back.
    assert process.returncode == 1, err
    assert sorted(outcomes(session_dir)) == [0, 2]


def die_once(x: int, marker: str) -> int:
    if x == 3 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)  # the process of the job that runs it dies, once
    return x * x


def test_a_chunk_whose_process_died_runs_again_and_the_map_gets_every_result(tmp_path):
    marker = str(tmp_path / "died")
    pool = pypoolparty.local.Pool(2, tasks_per_job=2, work_dir=str(tmp_path / "work"))
    assert pool.starmap(die_once, [(x, marker) for x in range(6)], chunksize=1) == [
        x * x for x in range(6)
    ]
    assert os.path.exists(marker)


def square_once_allowed(x: int, allowed: str) -> int:
    if not os.path.exists(allowed):
        raise PermissionError(f"task {x} is not allowed yet")
    return x * x


def test_a_continued_map_takes_the_tasks_per_job_of_the_new_call(tmp_path):
    work_dir = tmp_path / "work"
    allowed = str(tmp_path / "allowed")
    tasks = [(x, allowed) for x in range(3)]
    with pytest.raises(PermissionError):
        pypoolparty.local.Pool(1, work_dir=str(work_dir)).starmap(square_once_allowed, tasks)
    (tmp_path / "allowed").touch()
    pool = pypoolparty.local.Pool(1, tasks_per_job=3, work_dir=str(work_dir), keep_work_dir=True)
    assert pool.starmap(square_once_allowed, tasks) == [0, 1, 4]
    (session_dir,) = work_dir.glob("map-*")  # the same map, continued
    config = json.loads((session_dir / "worker_config.json").read_text())
    assert config["tasks_per_job"] == 3


def first_process_dies(barrier: str, x: int) -> int:
    meet(barrier, x, 3)
    if x == 0:
        os._exit(3)  # the first process of the job runs chunk 0, its own
    while True:  # until a warning signal interrupts the task
        signal.pause()


def test_the_other_processes_stop_when_the_first_one_dies(tmp_path):
    barrier, session_dir, process = start_worker_at_barrier(tmp_path, first_process_dies, 3)
    try:
        process.communicate(timeout=60)
        # As a job whose processes the scheduler stops at its end.
        wait_for(lambda: sorted(outcomes(session_dir)) == [1, 2])
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 3
    for outcome in outcomes(session_dir).values():
        assert outcome["interrupted"] == {"signal": "SIGTERM", "unfinished_tasks": 1}


def test_the_processes_of_one_job_never_take_each_others_running_claims(tmp_path):
    config = {"claiming_chunks": 2}
    claims = worker.Claims.of(str(tmp_path), config, 0, "ppp-1")
    assert claims.take(0)
    pid = os.fork()
    if pid == 0:  # as the worker forks its other processes
        os._exit(0 if not claims.take(0) and claims.next() == 1 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # A later run of the same job (requeued) continues the claim as its own.
    assert worker.Claims.of(str(tmp_path), config, 0, "ppp-1").take(0)
