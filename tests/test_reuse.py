"""A kept work_dir is not a cache: continuing an unfinished map is automatic,
serving a finished map's results needs ``reuse_results=True``, and either
reuse is said in one line on standard error."""

from __future__ import annotations

import json
import os
import random
import uuid

import pytest

import pypoolparty
from dummy_queues import make_pool


def read_file(path):
    with open(path) as file:
        return file.read()


def draw_and_mark(marks):
    """A random number; leaves a file in ``marks`` for each run."""
    with open(os.path.join(marks, uuid.uuid4().hex), "w"):
        pass
    return random.random()


def fail_while_flagged(x, marks, flag):
    """``x + 100``; raises for x == 2 while ``flag`` exists; marks each run of x."""
    with open(os.path.join(marks, f"{x}-{uuid.uuid4().hex}"), "w"):
        pass
    if x == 2 and os.path.exists(flag):
        raise ValueError("flagged")
    return x + 100


def session_dirs(work_dir):
    return sorted(os.path.join(work_dir, n) for n in os.listdir(work_dir) if n.startswith("map-"))


def scheduler_of(session_dir):
    with open(os.path.join(session_dir, "session.json")) as file:
        return json.load(file)["scheduler"]


def reuse_lines(stderr):
    return [line for line in stderr.splitlines() if "reusing" in line]


def runs_of(marks, x):
    return sum(1 for name in os.listdir(marks) if name.startswith(f"{x}-"))


@pytest.fixture
def marks(tmp_path):
    path = tmp_path / "marks"
    path.mkdir()
    return str(path)


def test_a_kept_finished_map_runs_again_when_its_input_file_changed(tmp_path, capfd):
    work_dir = str(tmp_path / "work")
    data = tmp_path / "input.txt"
    data.write_text("old")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    assert pool.map(read_file, [str(data)] * 2) == ["old", "old"]
    data.write_text("new")
    assert pool.map(read_file, [str(data)] * 2) == ["new", "new"]
    # The first run's directory stays for inspection, untouched.
    first, second = session_dirs(work_dir)
    assert second == first + "-2"
    assert reuse_lines(capfd.readouterr().err) == []


def test_a_kept_finished_map_of_random_numbers_draws_new_ones(tmp_path, marks):
    pool = pypoolparty.local.Pool(2, work_dir=str(tmp_path / "work"), keep_work_dir=True)
    first = pool.map(draw_and_mark, [marks] * 3, chunksize=1)
    second = pool.map(draw_and_mark, [marks] * 3, chunksize=1)
    assert first != second
    assert len(os.listdir(marks)) == 6


@pytest.mark.parametrize("verbose", [False, True])
def test_reuse_results_returns_the_stored_results_without_running_and_says_so(
    tmp_path, marks, capfd, verbose
):
    work_dir = str(tmp_path / "work")
    # No keep_work_dir: reuse_results keeps what it is to reuse.
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, reuse_results=True, verbose=verbose)
    first = pool.map(draw_and_mark, [marks] * 4, chunksize=1)
    assert reuse_lines(capfd.readouterr().err) == []
    assert pool.map(draw_and_mark, [marks] * 4, chunksize=1) == first
    assert len(os.listdir(marks)) == 4
    (session_dir,) = session_dirs(work_dir)
    (line,) = reuse_lines(capfd.readouterr().err)
    assert "reusing the stored results of 4 of 4 tasks" in line
    assert session_dir in line


@pytest.mark.parametrize("pool_kind, chunksize", [("local", 1), ("local", 4), ("slurm_array", 4)])
def test_an_unfinished_map_continues_and_says_how_much_it_reuses(
    pool_kind, chunksize, tmp_path, marks, capfd, dummy_queue
):
    work_dir = str(tmp_path / "work")
    if pool_kind == "local":
        pool = pypoolparty.local.Pool(2, work_dir=work_dir)
    else:
        dummy_queue(pool_kind)
        pool = make_pool(pool_kind, work_dir=work_dir, polling_interval=0.1)
    flag = tmp_path / "flag"
    flag.touch()
    tasks = [(x, marks, str(flag)) for x in range(4)]
    with pytest.raises(ValueError, match="flagged"):
        pool.starmap(fail_while_flagged, tasks, chunksize=chunksize)
    capfd.readouterr()
    flag.unlink()
    # Only the task that failed runs again, also when it shared its chunk
    # with tasks that finished.
    assert pool.starmap(fail_while_flagged, tasks, chunksize=chunksize) == [100, 101, 102, 103]
    assert [runs_of(marks, x) for x in range(4)] == [1, 1, 2, 1]
    (line,) = reuse_lines(capfd.readouterr().err)
    assert "continuing this map from" in line
    assert "reusing 3 of 4 tasks" in line


def test_an_unfinished_map_is_not_continued_on_another_scheduler(tmp_path, marks, dummy_queue):
    dummy = dummy_queue("slurm_array")
    flag = tmp_path / "flag"
    flag.touch()
    work_dir = str(tmp_path / "work")
    tasks = [(x, marks, str(flag)) for x in range(4)]
    with pytest.raises(ValueError, match="flagged"):
        pypoolparty.local.Pool(2, work_dir=work_dir).starmap(fail_while_flagged, tasks, chunksize=1)
    flag.unlink()
    slurm_pool = make_pool("slurm_array", work_dir=work_dir, polling_interval=0.1)
    with pytest.raises(pypoolparty.WorkDirError) as info:
        slurm_pool.starmap(fail_while_flagged, tasks, chunksize=1)
    message = str(info.value)
    assert "started on local" in message and "runs on slurm" in message
    assert "Nothing was submitted" in message
    assert dummy.jobs() == []
    (session_dir,) = session_dirs(work_dir)
    assert scheduler_of(session_dir) == "local"
    # On its own scheduler it continues.
    pool = pypoolparty.local.Pool(2, work_dir=work_dir)
    assert pool.starmap(fail_while_flagged, tasks, chunksize=1) == [100, 101, 102, 103]


def test_a_finished_map_kept_on_one_scheduler_runs_afresh_on_another(tmp_path, marks, dummy_queue):
    dummy = dummy_queue("slurm_array")
    work_dir = str(tmp_path / "work")
    tasks = [(x, marks, str(tmp_path / "no-flag")) for x in range(3)]
    local_pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    assert local_pool.starmap(fail_while_flagged, tasks, chunksize=1) == [100, 101, 102]
    slurm_pool = make_pool(
        "slurm_array", work_dir=work_dir, keep_work_dir=True, polling_interval=0.1
    )
    assert slurm_pool.starmap(fail_while_flagged, tasks, chunksize=1) == [100, 101, 102]
    assert [runs_of(marks, x) for x in range(3)] == [2, 2, 2]
    assert len(dummy.jobs()) == 2  # a job per slot of the dummy: they claim the third chunk
    first, second = session_dirs(work_dir)
    assert (scheduler_of(first), scheduler_of(second)) == ("local", "slurm")


def test_reuse_results_serves_a_map_finished_on_another_scheduler(
    tmp_path, marks, dummy_queue, capfd
):
    dummy = dummy_queue("slurm_array")
    work_dir = str(tmp_path / "work")
    local_pool = pypoolparty.local.Pool(2, work_dir=work_dir, reuse_results=True)
    first = local_pool.map(draw_and_mark, [marks] * 3, chunksize=1)
    slurm_pool = make_pool("slurm_array", work_dir=work_dir, reuse_results=True)
    assert slurm_pool.map(draw_and_mark, [marks] * 3, chunksize=1) == first
    assert dummy.jobs() == []
    assert len(os.listdir(marks)) == 3
    (line,) = reuse_lines(capfd.readouterr().err)
    assert "finished on local" in line
