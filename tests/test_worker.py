"""The worker script, run as the scheduler runs it: a separate Python process."""

import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys

import cloudpickle
import pytest

from pypoolparty import chunking, serialization, worker

WORKER = worker.__file__


def prepare(session_dir, func, tasks, chunksize, star=False):
    os.makedirs(os.path.join(session_dir, "outcomes"))
    function_bytes = serialization.pickle_function(func)
    with open(os.path.join(session_dir, "function.pickle"), "wb") as file:
        file.write(function_bytes)
    bounds = chunking.chunk_bounds(len(tasks), chunksize)
    serialization.write_tasks(
        os.path.join(session_dir, "tasks.zip"), tasks, bounds, function_bytes, identity="test"
    )
    with open(os.path.join(session_dir, "worker_config.json"), "w") as file:
        json.dump({"star": star, "sys_path": sys.path, "max_result_size": 1000}, file)


def run_worker(session_dir, *arguments, env=None):
    return subprocess.run(
        [sys.executable, WORKER, str(session_dir), *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def outcome(session_dir, ichunk):
    with open(os.path.join(session_dir, "outcomes", f"{ichunk}.pickle"), "rb") as file:
        return pickle.load(file)


def divide(a, b):
    return a / b


def test_runs_one_chunk_and_records_results_errors_hosts_and_times(tmp_path):
    prepare(tmp_path, divide, [(1, 2), (1, 0), (9, 3), (4, 4)], chunksize=2, star=True)
    completed = run_worker(tmp_path, "--ichunk", "0")
    assert completed.returncode == 0, completed.stderr
    record = outcome(tmp_path, 0)
    first, second = record["tasks"]
    assert cloudpickle.loads(first["result"]) == 0.5
    assert first["itask"] == 0 and first["start"] <= first["end"]
    assert second["itask"] == 1
    assert second["error"]["type"] == "builtins.ZeroDivisionError"
    assert "ZeroDivisionError" in second["error"]["traceback"]
    assert isinstance(pickle.loads(second["error"]["exception"]), ZeroDivisionError)
    assert record["host"]
    assert not os.path.exists(os.path.join(tmp_path, "outcomes", "1.pickle"))


def test_array_task_id_from_the_environment_and_a_chunk_list(tmp_path):
    prepare(tmp_path, abs, [-1, -2, -3, -4], chunksize=1)
    chunk_list = tmp_path / "chunks.txt"
    chunk_list.write_text("3\n1\n")
    env = dict(os.environ, SGE_TASK_ID="1")
    run_worker(tmp_path, "--ichunk-from-env", "SGE_TASK_ID", "--chunk-list", chunk_list, env=env)
    assert cloudpickle.loads(outcome(tmp_path, 3)["tasks"][0]["result"]) == 4
    env = dict(os.environ, SLURM_ARRAY_TASK_ID="2")
    run_worker(tmp_path, "--ichunk-from-env", "SLURM_ARRAY_TASK_ID", env=env)
    assert cloudpickle.loads(outcome(tmp_path, 2)["tasks"][0]["result"]) == 3


def return_a_lock(x):
    import threading

    return threading.Lock()


def test_an_unpicklable_result_is_an_error_not_none(tmp_path):
    prepare(tmp_path, return_a_lock, [1], chunksize=1)
    run_worker(tmp_path, "--ichunk", "0")
    error = outcome(tmp_path, 0)["tasks"][0]["error"]
    assert error["kind"] == "unpicklable_result"
    assert "cannot be pickled" in error["message"]


def test_a_result_larger_than_the_limit_is_an_error(tmp_path):
    prepare(tmp_path, lambda n: b"x" * n, [10, 5000], chunksize=2)
    run_worker(tmp_path, "--ichunk", "0")
    small, large = outcome(tmp_path, 0)["tasks"]
    assert cloudpickle.loads(small["result"]) == b"x" * 10
    assert large["error"]["kind"] == "result_too_large"


def test_a_function_that_cannot_be_loaded_is_reported_with_the_workers_own_error(
    tmp_path, monkeypatch
):
    module_dir = tmp_path / "only_here"
    module_dir.mkdir()
    (module_dir / "only_on_submit_host.py").write_text("def f(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(module_dir))
    import only_on_submit_host

    function_bytes = cloudpickle.dumps(only_on_submit_host.f)
    monkeypatch.undo()
    session_dir = tmp_path / "work"
    prepare(str(session_dir), abs, [1], chunksize=1)
    (session_dir / "function.pickle").write_bytes(function_bytes)
    completed = run_worker(session_dir, "--ichunk", "0")
    assert completed.returncode == 0
    setup_error = outcome(session_dir, 0)["setup_error"]
    assert "only_on_submit_host" in setup_error["message"]
    assert "ModuleNotFoundError" in setup_error["traceback"]


def test_the_worker_never_imports_pypoolparty(tmp_path):
    trap = tmp_path / "trap" / "pypoolparty"
    trap.mkdir(parents=True)
    (trap / "__init__.py").write_text("raise ImportError('the worker must not import pypoolparty')")
    session_dir = tmp_path / "work"
    prepare(str(session_dir), abs, [-7], chunksize=1)
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "trap"))
    completed = run_worker(session_dir, "--ichunk", "0", env=env)
    assert completed.returncode == 0, completed.stderr
    assert cloudpickle.loads(outcome(session_dir, 0)["tasks"][0]["result"]) == 7


def test_a_bad_array_task_id_exits_non_zero_but_not_99_or_100(tmp_path):
    prepare(tmp_path, abs, [1], chunksize=1)
    env = dict(os.environ, SGE_TASK_ID="undefined")
    completed = run_worker(tmp_path, "--ichunk-from-env", "SGE_TASK_ID", env=env)
    assert completed.returncode not in (0, 99, 100)
    assert "SGE_TASK_ID" in completed.stderr


@pytest.mark.parametrize("name", ["worker.py"])
def test_the_worker_imports_only_the_standard_library_and_cloudpickle(name):
    import ast

    tree = ast.parse(open(WORKER).read())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    allowed = set(sys.stdlib_module_names) | {"cloudpickle"}
    assert imported <= allowed, imported - allowed


def start_a_thread_that_never_ends(x):
    import threading
    import time

    threading.Thread(target=lambda: time.sleep(3600)).start()
    return x


def test_a_thread_left_running_by_a_task_does_not_keep_the_worker_alive(tmp_path):
    prepare(tmp_path, start_a_thread_that_never_ends, [5], chunksize=1)
    completed = run_worker(tmp_path, "--ichunk", "0")
    assert completed.returncode == 0
    assert cloudpickle.loads(outcome(tmp_path, 0)["tasks"][0]["result"]) == 5


def default_warning_signal_handlers(_):
    """Per warning signal: whether it has its default handler and is not blocked."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    return [
        signal.getsignal(getattr(signal, name)) == signal.SIG_DFL
        and getattr(signal, name) not in blocked
        for name in ("SIGTERM", "SIGUSR1", "SIGUSR2")
    ]


def warning_signal_handlers_in_a_forked_child(_):
    """Whether a task's multiprocessing child (fork) has the default handlers."""
    with multiprocessing.get_context("fork").Pool(1) as pool:
        return pool.map(default_warning_signal_handlers, [0])[0]


def test_a_tasks_forked_children_die_of_warning_signals_as_without_the_worker(tmp_path):
    """The worker's handlers stay in the worker: in a child a task forks, a
    signal that lands just before the child blocks in C would only set a
    flag, and the task's ``Pool.terminate()`` would wait for it forever. The
    signals are blocked across the fork, and unblocked in the child again."""
    prepare(tmp_path, warning_signal_handlers_in_a_forked_child, [0], chunksize=1)
    completed = run_worker(tmp_path, "--ichunk", "0")
    assert completed.returncode == 0, completed.stderr
    task = outcome(tmp_path, 0)["tasks"][0]
    assert cloudpickle.loads(task["result"]) == [True, True, True]
