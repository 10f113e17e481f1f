"""The parts of the Pool interface that go beyond multiprocessing parity:
lazy imap, terminate and the context manager cancelling jobs, resuming a
terminated map, concurrent identical calls, and the progress display."""

from __future__ import annotations

import gc
import glob
import itertools
import os
import re
import subprocess
import sys
import textwrap
import threading
import warnings

import pytest
from waiting import wait_for

import pypoolparty
from pypoolparty import local


def square(x):
    return x * x


def fails_on_odd(x):
    if x % 2:
        raise ValueError(f"{x} is odd")
    return x


def wait_for_file(path):
    """A task that runs until the test creates ``path``."""
    import time

    while not os.path.exists(path):
        time.sleep(0.02)
    return path


def write_pid_and_wait(directory):
    import time

    with open(os.path.join(directory, f"{os.getpid()}.pid"), "w"):
        pass
    while True:
        time.sleep(1)


def is_running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def pool(tmp_path):
    with local.Pool(2, work_dir=tmp_path / "work", polling_interval=0.05) as pool:
        yield pool


def test_imap_reads_an_endless_input_lazily_with_bounded_read_ahead(pool):
    read = itertools.count()
    counted = (next(read) for _ in itertools.count())
    results = pool.imap(square, counted, read_ahead=5)
    taken = [next(results) for _ in range(12)]
    assert taken == [x * x for x in range(12)]
    # The reader starts a window only while fewer than two wait to be
    # consumed, so it is never more than three windows ahead.
    assert next(read) <= 12 + 3 * 5


def test_imap_goes_on_after_a_failed_task_whatever_the_chunksize(pool):
    results = pool.imap(fails_on_odd, range(6), chunksize=3)
    seen = []
    for _ in range(6):
        try:
            seen.append(next(results))
        except ValueError as error:
            seen.append(str(error))
    assert seen == [0, "1 is odd", 2, "3 is odd", 4, "5 is odd"]
    with pytest.raises(StopIteration):
        next(results)


def test_leaving_the_with_block_cancels_the_jobs_still_running(tmp_path):
    pids = tmp_path / "pids"
    pids.mkdir()
    with local.Pool(2, work_dir=tmp_path / "work", polling_interval=0.05) as pool:
        result = pool.map_async(write_pid_and_wait, [str(pids)] * 2, chunksize=1)
        wait_for(lambda: len(os.listdir(pids)) == 2, 60)
    running = [int(name.split(".")[0]) for name in os.listdir(pids)]
    assert not [pid for pid in running if is_running(pid)]
    with pytest.raises(pypoolparty.Cancelled, match="work_dir"):
        result.get(timeout=60)


def test_a_terminated_map_continues_when_called_again(tmp_path):
    release = tmp_path / "release"
    tasks = [str(release)] * 3
    pool = local.Pool(1, work_dir=tmp_path / "work", polling_interval=0.05)
    result = pool.map_async(wait_for_file, tasks, chunksize=1)
    wait_for(lambda: glob.glob(str(tmp_path / "work" / "map-*" / "log.jsonl")), 60)
    pool.terminate()
    with pytest.raises(pypoolparty.Cancelled):
        result.get(timeout=60)
    assert glob.glob(str(tmp_path / "work" / "map-*")), "the work_dir is kept"
    with pytest.raises(ValueError, match="Pool not running"):
        pool.map(wait_for_file, tasks)
    release.touch()
    again = local.Pool(1, work_dir=tmp_path / "work", polling_interval=0.05)
    assert again.map(wait_for_file, tasks, chunksize=1) == tasks
    assert not glob.glob(str(tmp_path / "work" / "map-*"))


def test_the_same_call_twice_at_once_runs_twice(pool, tmp_path):
    release = tmp_path / "release"
    first = pool.apply_async(wait_for_file, (str(release),))
    second = pool.apply_async(wait_for_file, (str(release),))
    wait_for(lambda: len(glob.glob(str(tmp_path / "work" / "map-*"))) == 2, 60)
    release.touch()
    assert first.get(60) == second.get(60) == str(release)


def test_callbacks_run_in_a_pypoolparty_thread_before_get_returns(pool):
    threads = []
    result = pool.map_async(
        square, [3], callback=lambda value: threads.append(threading.current_thread().name)
    )
    assert result.get(60) == [9]
    assert threads and threads[0].startswith("pypoolparty-")


def test_verbose_map_prints_progress_lines_to_a_batch_log(tmp_path):
    script = textwrap.dedent(
        f"""
        from pypoolparty import local
        pool = local.Pool(2, work_dir={str(tmp_path / "work")!r}, verbose=True,
                          polling_interval=0.05)
        print(pool.map(abs, range(-6, 0), chunksize=2))
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() == "[6, 5, 4, 3, 2, 1]"
    lines = completed.stderr.splitlines()
    progress = [line for line in lines if "tasks done" in line]
    assert progress[-1].startswith("pypoolparty 6/6 tasks done")
    assert "\r" not in completed.stderr, "no live line when stderr is not a terminal"
    assert any(re.search(r"submitted \d+ job\(s\)", line) for line in lines)


def test_a_running_pool_dropped_unclosed_warns_as_multiprocessing_and_stops_its_maps(tmp_path):
    pool = local.Pool(2, work_dir=str(tmp_path / "work"))
    background = pool._background
    with pytest.warns(ResourceWarning, match="unclosed running pypoolparty pool"):
        del pool
        gc.collect()
    # the finalizer that cancels a dropped pool's maps still ran
    assert background.stop.is_set()


@pytest.mark.parametrize("end", ["close", "terminate", "with"])
def test_a_closed_or_terminated_pool_dropped_does_not_warn(end, tmp_path):
    pool = local.Pool(2, work_dir=str(tmp_path / "work"))
    if end == "with":
        with pool:
            pass
    else:
        getattr(pool, end)()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        del pool
        gc.collect()
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)]


def test_the_copies_of_an_executor_do_not_warn_only_the_users_pool(tmp_path):
    pool = local.Pool(2, work_dir=str(tmp_path / "work"))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ResourceWarning)
        with pool.executor() as executor:
            assert executor.submit(square, 3).result() == 9
        del executor
        gc.collect()
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)]
    pool.close()
