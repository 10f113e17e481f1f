"""What crosses the pickle on every pool: the user's script and its objects,
the file names in tracebacks, PYTHONPATH entries that are files, and what
cannot be pickled or unpickled.

Scripts run in a subprocess, as a user runs them, on the local pool and on
each dummy scheduler.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import types
import uuid
import zipfile

import pytest

import pypoolparty
from dummy_queues import POOL_KINDS, POOLS, make_pool, pool_paths
from pypoolparty.errors import RemoteTraceback, TaskError, Unpicklable

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = """
import importlib, json, multiprocessing, sys

pool_module, paths, work_dir = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]

def square(x):
    return x * x

class Point:
    def __init__(self, x):
        self.x = x

def squares_in_a_nested_pool(n):
    with multiprocessing.Pool(2) as pool:
        return pool.map(square, range(n))

def points_through_a_nested_pool(n):
    with multiprocessing.Pool(2) as pool:
        return [point.x for point in pool.map(Point, range(n))]

def inv_sqrt(x):
    import math
    return 1 / math.sqrt(x)

def from_the_zip(x):
    import zipped_module
    return zipped_module.VALUE + x

if __name__ == "__main__":
    with open(sys.argv[4], "a") as marks:
        marks.write("main block\\n")
    pool = importlib.import_module(pool_module).Pool(
        work_dir=work_dir, polling_interval=0.05, missing_result_grace_period=1.0, **paths
    )
    report = {
        "nested": pool.map(squares_in_a_nested_pool, [3, 4]),
        "points": pool.map(points_through_a_nested_pool, [2]),
        "zip": pool.map(from_the_zip, [1, 2]),
    }
    try:
        pool.map(inv_sqrt, [1, 0])
    except ZeroDivisionError as error:
        report["traceback"] = str(error.__cause__)
    print(json.dumps(report))
"""


def run_script(tmp_path, source: str, pool_module: str, paths: dict, *arguments: str, **popen):
    """Run ``source`` as a script file with a .zip on PYTHONPATH; return what it printed.

    The script's arguments: the module of the pool, the pool's options,
    the work_dir and a file for marks, then ``arguments``.
    """
    source_dir = tmp_path / "zipped"
    source_dir.mkdir(exist_ok=True)
    zip_path = tmp_path / "modules.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("zipped_module.py", "VALUE = 42\n")
    script = tmp_path / "user_script.py"
    script.write_text(source)
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([REPO_DIR, str(zip_path)]))
    command = [
        sys.executable,
        str(script),
        pool_module,
        json.dumps(paths),
        str(tmp_path / "work"),
        str(tmp_path / "marks"),
        *arguments,
    ]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, env=environment, timeout=300, **popen
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"the script ran for {expired.timeout} s; {what_its_maps_did(tmp_path)}")
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1]), script


def what_its_maps_did(tmp_path) -> str:
    """``pypoolparty status`` and ``errors`` of the script's work_dir: what a
    test that timed out leaves to read."""
    reports = []
    for command in ("status", "errors"):
        shown = subprocess.run(
            [sys.executable, "-m", "pypoolparty", command, str(tmp_path / "work")],
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=REPO_DIR),
            timeout=60,
        )
        reports.append(f"pypoolparty {command}:\n{shown.stdout}{shown.stderr}")
    return "\n".join(reports)


@pytest.mark.parametrize("pool_kind", sorted(POOL_KINDS))
def test_a_scripts_objects_work_in_the_task_as_in_a_multiprocessing_worker(
    pool_kind, dummy_queue, tmp_path
):
    dummy_queue(pool_kind)
    report, script = run_script(tmp_path, SCRIPT, POOLS[pool_kind][0], pool_paths(pool_kind))
    assert_the_scripts_objects_worked(report, script, tmp_path)


def assert_the_scripts_objects_worked(report: dict, script, tmp_path) -> None:
    # Item 20: the task's own multiprocessing.Pool pickles the script's
    # function and class by reference, as __main__.square and __main__.Point.
    assert report["nested"] == [[0, 1, 4], [0, 1, 4, 9]]
    assert report["points"] == [[0, 1]]
    # Item 16: a .zip on PYTHONPATH is importable in the task.
    assert report["zip"] == [43, 44]
    # Item 5: the traceback names the script and shows the failing line.
    assert f'File "{script}", line 23, in inv_sqrt' in report["traceback"]
    assert "return 1 / math.sqrt(x)" in report["traceback"]
    assert "<dynamic-code>" not in report["traceback"]
    # The worker ran the script as __mp_main__, never its main block.
    assert (tmp_path / "marks").read_text() == "main block\n"


UNGUARDED_SCRIPT = """
import importlib, json, multiprocessing, sys

pool_module, paths, work_dir = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
with open(sys.argv[4], "a") as marks:
    marks.write("top level\\n")

def square(x):
    return x * x

def squares_in_a_nested_pool(n):
    with multiprocessing.Pool(2) as pool:
        return pool.map(square, range(n))

pool = importlib.import_module(pool_module).Pool(work_dir=work_dir, polling_interval=0.05, **paths)
print(json.dumps(pool.map(squares_in_a_nested_pool, [3, 4], chunksize=1)))
"""


@pytest.mark.parametrize("how", ["file", "-c", "stdin"])
def test_a_script_without_main_guard_is_never_run_again_by_the_jobs(how, tmp_path):
    """Its top level is its program: running it in the jobs would map again."""
    if how == "file":
        report, _ = run_script(tmp_path, UNGUARDED_SCRIPT, POOLS["local"][0], {})
    else:
        # python -c and a script read from stdin have no file to import.
        command = ["-c", UNGUARDED_SCRIPT] if how == "-c" else ["-"]
        arguments = [POOLS["local"][0], "{}", str(tmp_path / "work"), str(tmp_path / "marks")]
        completed = subprocess.run(
            [sys.executable, *command, *arguments],
            input=UNGUARDED_SCRIPT if how == "stdin" else None,
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=REPO_DIR),
            timeout=300,
        )
        assert completed.returncode == 0, completed.stderr
        report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report == [[0, 1, 4], [0, 1, 4, 9]]
    assert (tmp_path / "marks").read_text() == "top level\n"


def test_a_script_that_starts_a_map_at_import_is_not_mapped_again_by_the_jobs(tmp_path):
    """A guarded script that still maps at its top level: the worker's import of
    it refuses that map (as spawn refuses a Pool), says so, and runs the task."""
    source = UNGUARDED_SCRIPT + '\nif __name__ == "__main__":\n    pass\n'
    report, _ = run_script(tmp_path, source, POOLS["local"][0], {})
    assert report == [[0, 1, 4], [0, 1, 4, 9]]
    # The submitter, then each of the two jobs, which stop at the map.
    assert (tmp_path / "marks").read_text() == "top level\n" * 3


# -- what cannot be pickled (item 12) ------------------------------------------


class RefusesToPickle:
    def __reduce__(self):
        raise RuntimeError("this object refuses to be pickled")


def test_a_task_that_cannot_be_pickled_raises_its_own_exceptions_type(tmp_path):
    pool = pypoolparty.local.Pool(work_dir=str(tmp_path / "work"))
    with pytest.raises(RuntimeError) as raised:
        pool.map(str, [1, RefusesToPickle(), 3])
    assert isinstance(raised.value, Unpicklable)
    assert isinstance(raised.value, TypeError)
    assert "task 1 (RefusesToPickle) cannot be pickled" in str(raised.value)
    assert "this object refuses to be pickled" in str(raised.value)
    assert isinstance(raised.value.__cause__, RuntimeError)
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").glob("map-*"))


def test_a_function_that_cannot_be_pickled_raises_its_own_exceptions_type(tmp_path):
    refuses = RefusesToPickle()
    pool = pypoolparty.local.Pool(work_dir=str(tmp_path / "work"))
    with pytest.raises(RuntimeError) as raised:
        pool.map(lambda x: (refuses, x), [1])
    assert isinstance(raised.value, Unpicklable)
    assert "cannot be pickled, so it cannot be sent to the jobs" in str(raised.value)


def refusing_result(x):
    class Refuses:
        def __reduce__(self):
            raise RuntimeError("this result refuses to be pickled")

    return Refuses() if x == 1 else x


def test_a_result_that_cannot_be_pickled_raises_its_own_exceptions_type(tmp_path):
    pool = pypoolparty.local.Pool(work_dir=str(tmp_path / "work"))
    with pytest.raises(RuntimeError) as raised:
        pool.map(refusing_result, [0, 1, 2], chunksize=1)
    assert isinstance(raised.value, TaskError)
    assert raised.value.itask == 1
    assert "the result cannot be pickled: this result refuses to be pickled" in str(raised.value)


# -- a result the submit host cannot unpickle (item 17) ------------------------


def job_only_module(tmp_path) -> tuple[str, str]:
    """A module's directory and name that only the jobs put on their sys.path."""
    name = f"job_only_{uuid.uuid4().hex[:8]}"
    directory = tmp_path / "job_only"
    directory.mkdir()
    (directory / f"{name}.py").write_text(
        textwrap.dedent(
            """
            class Thing:
                def __init__(self, x):
                    self.x = x
            """
        )
    )
    return str(directory), name


def returns_a_job_only_thing(directory: str, name: str):
    def task(x):
        if x != 2:
            return x * 10
        import importlib
        import sys

        sys.path.insert(0, directory)
        return importlib.import_module(name).Thing(x)

    return task


def assert_unloadable_result_error(error: BaseException, name: str, work: str) -> None:
    assert isinstance(error, TaskError)
    assert isinstance(error, ModuleNotFoundError)
    assert error.itask == 2
    message = str(error)
    assert f"the result refers to the module {name!r}" in message
    assert f"Make {name!r} importable here too" in message
    assert isinstance(error.__cause__, RemoteTraceback)
    assert "Task 2 failed on host" in str(error.__cause__)
    assert work in str(error.__cause__)


@pytest.mark.parametrize("pool_kind", sorted(POOL_KINDS))
def test_a_result_the_submit_host_cannot_unpickle_is_an_error_of_its_task(
    pool_kind, dummy_queue, tmp_path
):
    dummy_queue(pool_kind)
    pool = make_pool(pool_kind, work_dir=str(tmp_path / "work"), polling_interval=0.05)
    assert_an_unloadable_result_fails_its_task_alone(pool, tmp_path)


def assert_an_unloadable_result_fails_its_task_alone(pool, tmp_path) -> None:
    directory, name = job_only_module(tmp_path)
    task = returns_a_job_only_thing(directory, name)
    work = str(tmp_path / "work")
    for _ in range(2):  # calling the map again gives the same error, not a bare one
        with pytest.raises(TaskError) as raised:
            pool.map(task, range(5), chunksize=1)
        assert_unloadable_result_error(raised.value, name, work)
    iterator = pool.imap(task, range(5), chunksize=1)
    assert [next(iterator), next(iterator)] == [0, 10]
    with pytest.raises(TaskError) as raised:
        next(iterator)
    assert_unloadable_result_error(raised.value, name, work)
    assert list(iterator) == [30, 40]


# -- the pieces ----------------------------------------------------------------


class CannotBeSubclassed(Exception):
    def __init_subclass__(cls, **kwargs):
        raise TypeError("no subclasses")


@pytest.mark.parametrize(
    "original",
    [RuntimeError("r"), KeyError("k"), OSError(2, "gone"), ModuleNotFoundError("m", name="m")],
)
def test_an_error_of_two_types_keeps_its_message_and_survives_pickling(original):
    import pickle

    from pypoolparty.errors import also_of_type

    error = also_of_type(TaskError, original, "task 3: what happened", itask=3, remote_type="x")
    assert isinstance(error, type(original)) and isinstance(error, TaskError)
    assert str(error) == "task 3: what happened"
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and copy.itask == 3 and str(copy) == str(error)


def test_an_error_whose_type_cannot_be_combined_is_the_pypoolparty_error_alone():
    from pypoolparty.errors import also_of_type

    error = also_of_type(Unpicklable, CannotBeSubclassed("c"), "task 0 cannot be pickled")
    assert type(error) is Unpicklable
    assert str(error) == "task 0 cannot be pickled"


@pytest.mark.parametrize(
    "source, guarded",
    [
        ('x = 1\nif __name__ == "__main__":\n    print(x)\n', True),
        ("if '__main__' == __name__:\n    pass\n", True),
        ('def f():\n    if __name__ == "__main__":\n        pass\n', False),
        ('if __name__ != "__main__":\n    pass\n', False),
        ("print(1)\n", False),
        ("this is not python\n", False),
    ],
)
def test_only_a_script_with_a_main_block_counts_as_guarded(source, guarded, tmp_path):
    from pypoolparty import worker

    path = tmp_path / "script.py"
    path.write_text(source)
    assert worker.has_main_guard(str(path)) is guarded


def test_the_same_code_in_two_files_is_given_no_file_name():
    from pypoolparty.serialization import CodeFiles, code_key

    first = compile("def f(x):\n    return x\n", "/one/a.py", "exec").co_consts[0]
    second = compile("def f(x):\n    return x\n", "/two/b.py", "exec").co_consts[0]
    code_files = CodeFiles()
    code_files.record(first)
    assert code_files.files == {code_key(first): "/one/a.py"}
    code_files.record(second)
    code_files.record(first)
    assert code_files.files == {}


def test_pickles_are_cloudpickles_own_and_both_sides_key_code_alike():
    """The bytes (and so the fingerprint of a map) do not depend on file names."""
    import cloudpickle

    from pypoolparty import serialization, worker

    def outer(x):
        return (lambda y: y + 1)(x)

    code_files = serialization.CodeFiles()
    assert serialization.dumps(outer, code_files) == cloudpickle.dumps(outer)
    (inner,) = [c for c in outer.__code__.co_consts if isinstance(c, types.CodeType)]
    keys = {serialization.code_key(outer.__code__), serialization.code_key(inner)}
    assert set(code_files.files) == keys
    assert set(code_files.files.values()) == {__file__}
    assert worker.code_key(outer.__code__) == serialization.code_key(outer.__code__)
