"""Full-chain tests of pypoolparty.local.Pool: map and starmap as a user sees them."""

import functools
import os
import pickle
import stat
import subprocess
import sys
import textwrap
import zipfile

import pytest

import pypoolparty
from pypoolparty import event_log


@pytest.fixture
def pool(tmp_path):
    return pypoolparty.local.Pool(2, work_dir=str(tmp_path / "work"))


def square(x):
    return x * x


class Multiplier:
    def __init__(self, factor):
        self.factor = factor

    def times(self, x):
        return self.factor * x


def test_map_returns_results_in_order(pool):
    assert pool.map(square, range(50)) == [x * x for x in range(50)]


def test_map_takes_any_iterable_including_generators(pool):
    assert pool.map(square, (x for x in range(7))) == [0, 1, 4, 9, 16, 25, 36]
    assert pool.map(len, {"ab": 1}.keys()) == [2]


def test_starmap_unpacks_each_task(pool):
    assert pool.starmap(pow, [(2, 3), (3, 2), (10, 0)]) == [8, 9, 1]


def test_empty_iterable_returns_empty_list_and_submits_nothing(tmp_path):
    work_dir = tmp_path / "work"
    pool = pypoolparty.local.Pool(2, work_dir=str(work_dir))
    assert pool.map(square, []) == []
    assert pool.starmap(pow, iter(())) == []
    assert not work_dir.exists()


def test_all_kinds_of_callables_and_tasks(pool):
    offset = 10

    def closure(x):
        return x + offset

    assert pool.map(closure, [1, 2]) == [11, 12]
    assert pool.map(lambda x: -x, [1, 2]) == [-1, -2]
    assert pool.map(functools.partial(pow, 2), [3, 4]) == [8, 16]
    assert pool.map(Multiplier(3).times, [1, 2]) == [3, 6]
    assert pool.map(abs, [-1, -2]) == [1, 2]
    assert pool.map(square, [Multiplier(2).factor]) == [4]
    results = pool.map(lambda m: m.factor, [Multiplier(5), Multiplier(6)])
    assert results == [5, 6]


def test_functions_defined_in_main_work(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import pypoolparty

            def cube(x):
                return x ** 3

            if __name__ == "__main__":
                pool = pypoolparty.local.Pool(2, work_dir={str(tmp_path / "work")!r})
                print(pool.map(cube, range(5)))
            """
        )
    )
    completed = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[0, 1, 8, 27, 64]"


class CountsItsPickling:
    pickled = 0

    def __call__(self, x):
        return x

    def __reduce__(self):
        CountsItsPickling.pickled += 1
        return (CountsItsPickling, ())


def test_the_function_is_pickled_once_per_map_not_per_chunk(pool):
    CountsItsPickling.pickled = 0
    assert pool.map(CountsItsPickling(), range(20), chunksize=2) == list(range(20))
    assert CountsItsPickling.pickled == 1


def submitted_chunks(session_dir):
    return [
        job[1]
        for event in event_log.read(os.path.join(session_dir, "log.jsonl"))
        if event["event"] == "submitted"
        for job in event["jobs"]
    ]


def only_session_dir(work_dir):
    (name,) = os.listdir(work_dir)
    return os.path.join(work_dir, name)


def chunk_tasks(session_dir):
    """The task indices of each chunk whose outcome was archived, by chunk."""
    with zipfile.ZipFile(os.path.join(session_dir, "results.zip")) as archive:
        outcomes = [pickle.loads(archive.read(name)) for name in archive.namelist()]
    return {o["ichunk"]: [task["itask"] for task in o["tasks"]] for o in outcomes}


def test_chunksize_is_honoured(tmp_path):
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    assert pool.map(square, range(10), chunksize=3) == [x * x for x in range(10)]
    session_dir = only_session_dir(work_dir)
    assert chunk_tasks(session_dir) == {0: [0, 1, 2], 1: [3, 4, 5], 2: [6, 7, 8], 3: [9]}
    # One job per slot: the jobs claim the chunks beyond their own.
    assert len(submitted_chunks(session_dir)) <= 2


def test_default_chunks_shrink_towards_the_end_and_jobs_claim_them(tmp_path):
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    assert pool.map(square, range(1000)) == [x * x for x in range(1000)]
    session_dir = only_session_dir(work_dir)
    by_chunk = chunk_tasks(session_dir)
    sizes = [len(by_chunk[ichunk]) for ichunk in sorted(by_chunk)]
    assert sum(sizes) == 1000
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] > 4 * sizes[-1]
    assert len(submitted_chunks(session_dir)) <= 2


def test_work_dir_is_removed_after_success_unless_kept(tmp_path):
    work_dir = tmp_path / "work"
    pypoolparty.local.Pool(2, work_dir=str(work_dir)).map(square, range(3))
    assert list(work_dir.iterdir()) == []
    pypoolparty.local.Pool(2, work_dir=str(work_dir), keep_work_dir=True).map(square, range(3))
    assert len(list(work_dir.iterdir())) == 1


def test_default_work_dir_is_below_the_current_directory_and_cleaned_up(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert pypoolparty.local.Pool(2).map(square, [3]) == [9]
    assert list(tmp_path.iterdir()) == []


def test_the_work_dir_is_private_and_self_describing(tmp_path):
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    pool.map(square, range(20), chunksize=5)
    session_dir = only_session_dir(work_dir)
    for directory, _subdirectories, filenames in os.walk(work_dir):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory
        for name in filenames:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                # A claim (pypoolparty/claims.py): a link has no mode of its
                # own; its text names a job, and its directory is private.
                assert os.path.basename(directory) == "claims", path
                continue
            assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
    names = set(os.listdir(session_dir))
    assert {"session.json", "log.jsonl", "results.zip", "stdout.zip", "stderr.zip"} <= names
    events = [e["event"] for e in event_log.read(os.path.join(session_dir, "log.jsonl"))]
    assert events[0] == "session_started" and events[-1] == "session_finished"
    # outputs were folded into the archives: no per-chunk files are left
    assert os.listdir(os.path.join(session_dir, "outcomes")) == []
    leftovers = [
        n for _, _, files in os.walk(os.path.join(session_dir, "scheduler")) for n in files
    ]
    assert leftovers == []


def read_variable(name):
    return os.environ.get(name)


def test_environment_is_exported_through_a_private_file_never_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("PPP_TEST_SECRET", "hunter2")
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    assert pool.map(read_variable, ["PPP_TEST_SECRET"]) == ["hunter2"]
    session_dir = only_session_dir(work_dir)
    for name in ("log.jsonl", "session.json", "worker.py", "worker_config.json"):
        with open(os.path.join(session_dir, name), "rb") as file:
            assert b"hunter2" not in file.read(), name
    none_pool = pypoolparty.local.Pool(2, work_dir=work_dir, environment="none")
    assert none_pool.map(read_variable, ["PPP_TEST_SECRET"]) == [None]
    named_pool = pypoolparty.local.Pool(2, work_dir=work_dir, environment=["PPP_TEST_SECRET"])
    assert named_pool.map(read_variable, ["PPP_TEST_SECRET", "HOSTNAME"])[0] == "hunter2"


def test_stdout_and_stderr_of_tasks_are_kept_in_archives(tmp_path):
    import zipfile

    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    pool.map(print, ["hello from a task"])
    with zipfile.ZipFile(os.path.join(only_session_dir(work_dir), "stdout.zip")) as archive:
        assert archive.read("0.txt") == b"hello from a task\n"


def test_tasks_run_in_the_directory_the_map_was_called_from(tmp_path, monkeypatch):
    here = tmp_path / "analysis"
    here.mkdir()
    monkeypatch.chdir(here)
    pool = pypoolparty.local.Pool(2, work_dir=str(tmp_path / "work"))
    assert pool.map(lambda _: os.getcwd(), range(2)) == [str(here)] * 2
