"""Ctrl-C in a program that runs its calls through joblib's ``Parallel`` or
``pool.executor()``: the jobs are cancelled, the process ends with
KeyboardInterrupt, and the same ``Parallel`` call run again with the same
work_dir continues (no finished task runs again).

The program runs in a subprocess that the test interrupts with SIGINT, on the
local pool and on the SLURM array pool over the dummy queue. Its tasks leave
a marker when they start and when they finish; tasks from ``FAST`` on wait
for a release file, so that the interrupt finds them running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from waiting import wait_for

import dummy_queues

pytest.importorskip("joblib")

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM_TASKS = 8
FAST = 4
"""Tasks below this index end at once; the others wait for the release file."""
LIMIT = 2
"""``n_jobs`` of the call and the pool's limit: the waiting tasks fill every slot."""

TASK = """
import json, os, sys, time

def task(x, markers, release):
    # The pid says which process to look for after the interrupt.
    stamp = f"{x}-{os.getpid()}-{time.monotonic_ns()}"
    open(os.path.join(markers, "started", stamp), "w").close()
    if x >= FAST:
        while not os.path.exists(release):
            time.sleep(0.02)
    open(os.path.join(markers, "finished", stamp), "w").close()
    return x * x

def make_pool(module, work_dir, options):
    import importlib
    return importlib.import_module(module).Pool(
        LIMIT, work_dir=work_dir, polling_interval=0.05, **json.loads(options)
    )
"""

PARALLEL_SCRIPT = (
    TASK
    + """
import joblib
import pypoolparty.joblib

if __name__ == "__main__":
    module, work_dir, options, markers, release = sys.argv[1:]
    pypoolparty.joblib.register()
    with joblib.parallel_config(backend="pypoolparty", pool=make_pool(module, work_dir, options)):
        results = joblib.Parallel(n_jobs=LIMIT)(
            joblib.delayed(task)(x, markers, release) for x in range(NUM_TASKS)
        )
    print(results)
"""
)

EXECUTOR_SCRIPT = (
    TASK
    + """
import concurrent.futures

if __name__ == "__main__":
    module, work_dir, options, markers, release = sys.argv[1:]
    executor = make_pool(module, work_dir, options).executor()
    futures = [executor.submit(task, x, markers, release) for x in range(NUM_TASKS)]
    print([future.result() for future in futures])
"""
)

EXECUTOR_WITH_SCRIPT = (
    TASK
    + """
import concurrent.futures

if __name__ == "__main__":
    module, work_dir, options, markers, release = sys.argv[1:]
    with make_pool(module, work_dir, options).executor() as executor:
        futures = [executor.submit(task, x, markers, release) for x in range(NUM_TASKS)]
        print([future.result() for future in futures])
"""
)


class Program:
    """One of the scripts above, on a pool of ``kind``, with its markers in ``tmp_path``."""

    def __init__(self, script: str, kind: str, tmp_path) -> None:
        self.script = f"FAST, NUM_TASKS, LIMIT = {FAST}, {NUM_TASKS}, {LIMIT}\n" + script
        self.markers = tmp_path / "markers"
        for name in ("started", "finished"):
            (self.markers / name).mkdir(parents=True)
        self.release = tmp_path / "release"
        self.work_dir = tmp_path / "work"
        options = dict(dummy_queues.pool_paths(kind), missing_result_grace_period=1.0)
        self.arguments = [
            dummy_queues.POOLS[kind][0],
            str(self.work_dir),
            json.dumps(options),
            str(self.markers),
            str(self.release),
        ]

    def start(self) -> subprocess.Popen:
        # The test's environment holds the dummy's state directory.
        env = dict(os.environ, PYTHONPATH=REPO_DIR)
        return subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(self.script), *self.arguments],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def runs(self, stage: str) -> list[tuple[int, int]]:
        """(task, pid) of each time a task reached ``stage``: "started" or "finished"."""
        stamps = [name.split("-") for name in os.listdir(self.markers / stage)]
        return [(int(x), int(pid)) for x, pid, _ in stamps]

    def waiting_tasks(self) -> list[tuple[int, int]]:
        return [(x, pid) for x, pid in self.runs("started") if x >= FAST]


def interrupt(process: subprocess.Popen) -> tuple[str, str]:
    """SIGINT, as Ctrl-C sends; return the process's output once it has ended."""
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=60)
    finally:
        process.kill()


def gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def assert_interrupted(process, stderr, program, dummy) -> None:
    """The process ended with KeyboardInterrupt and left no job and no task running."""
    assert process.returncode != 0
    assert "KeyboardInterrupt" in stderr, stderr
    if dummy is not None:
        wait_for(lambda: dummy.queued_jobs() == [], timeout=30)
    pids = {pid for _, pid in program.waiting_tasks()}
    wait_for(lambda: all(gone(pid) for pid in pids), timeout=30)
    assert not program.release.exists()
    # A waiting task ends only by its release: none was let finish.
    assert all(x < FAST for x, _ in program.runs("finished"))


@pytest.fixture(params=["local", "slurm_array"])
def kind(request, dummy_queue):
    return request.param


def test_ctrl_c_cancels_parallel_and_the_same_call_continues(kind, dummy_queue, tmp_path):
    dummy = dummy_queue(kind)
    program = Program(PARALLEL_SCRIPT, kind, tmp_path)
    process = program.start()
    try:
        # Both slots held by waiting tasks: every task before them has ended.
        wait_for(lambda: len(program.waiting_tasks()) == LIMIT, timeout=60)
        finished_before = sorted(x for x, _ in program.runs("finished"))
        assert finished_before == list(range(FAST))
        _, stderr = interrupt(process)
    finally:
        process.kill()
    assert_interrupted(process, stderr, program, dummy)
    assert list(program.work_dir.glob("map-*")), "the session directory is kept"

    program.release.touch()
    rerun = program.start()
    stdout, stderr = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, stderr
    assert stdout.strip() == str([x * x for x in range(NUM_TASKS)])
    finished = sorted(x for x, _ in program.runs("finished"))
    # Tasks finished before the interrupt did not run again; the others ran once.
    assert finished == list(range(NUM_TASKS))
    assert sorted(x for x, _ in program.runs("started") if x < FAST) == list(range(FAST))
    if dummy is not None:
        assert dummy.queued_jobs() == []


@pytest.mark.parametrize("script", [EXECUTOR_SCRIPT, EXECUTOR_WITH_SCRIPT], ids=["plain", "with"])
def test_ctrl_c_cancels_the_executors_jobs(kind, dummy_queue, tmp_path, script):
    dummy = dummy_queue(kind)
    program = Program(script, kind, tmp_path)
    process = program.start()
    try:
        wait_for(lambda: len(program.waiting_tasks()) == LIMIT, timeout=60)
        if dummy is not None:
            assert dummy.queued_jobs(), "the jobs of the waiting calls are in the queue"
        _, stderr = interrupt(process)
    finally:
        process.kill()
    assert_interrupted(process, stderr, program, dummy)
