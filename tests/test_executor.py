"""``pool.executor()`` against the behaviour of ``concurrent.futures``.

The checklist follows CPython's own ``Lib/test/test_concurrent_futures``
(executor, as_completed, wait, future, shutdown), run on the local pool and,
through the dummy queues, on every cluster pool.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import time

import pytest
from waiting import wait_for

import dummy_queues
import pypoolparty.executor
from dummy_queues import POOL_KINDS


def square(x):
    return x * x


def add(a, b, c=0):
    return a + b + c


def fails(x):
    raise ValueError(f"task {x} refuses")


def wait_for_file(path, value=None):
    """A task that runs until ``path`` exists: the test decides when it ends."""
    while not os.path.exists(path):
        time.sleep(0.02)
    return value


@pytest.fixture(params=POOL_KINDS)
def make_pool(request, dummy_queue, tmp_path):
    dummy_queue(request.param)
    pools = []

    def make(limit=2, **options):
        pool = dummy_queues.make_pool(
            request.param,
            limit,
            work_dir=tmp_path / "work",
            polling_interval=0.05,
            missing_result_grace_period=1.0,
            **options,
        )
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.terminate()


def submissions(tmp_path) -> int:
    """Scheduler submissions recorded by the kept session directories."""
    count = 0
    for log in (tmp_path / "work").glob("map-*/log.jsonl"):
        events = [json.loads(line) for line in log.read_text().splitlines()]
        count += sum(1 for e in events if e["event"] == "submitting")
    return count


# -- executor ------------------------------------------------------------------


def test_submit_map_and_keywords(make_pool):
    with make_pool().executor() as executor:
        future = executor.submit(add, 1, 2, c=3)
        assert isinstance(future, concurrent.futures.Future)
        assert future.result() == 6
        assert list(executor.map(square, range(7))) == [x * x for x in range(7)]
        assert list(executor.map(add, [1, 2], [10, 20, 30])) == [11, 22]
        assert list(executor.map(square, [])) == []


def test_many_submits_become_one_submission(make_pool, tmp_path, monkeypatch):
    # Calls count as made together while none is more than QUIET_PERIOD after
    # the last; a loaded machine can pause this loop longer than its 0.05 s.
    monkeypatch.setattr(pypoolparty.executor, "QUIET_PERIOD", 1.0)
    with make_pool(keep_work_dir=True).executor(batch_window=5.0) as executor:
        futures = [executor.submit(square, x) for x in range(50)]
        assert [f.result() for f in futures] == [x * x for x in range(50)]
        assert executor.num_maps == 1
    assert submissions(tmp_path) == 1


def test_map_raises_at_the_failed_position(make_pool):
    with make_pool().executor() as executor:
        results = executor.map(lambda x: 1 // (x - 2), range(4))
        assert next(results) == -1
        assert next(results) == -1
        with pytest.raises(ZeroDivisionError) as raised:
            next(results)
        assert "RemoteTraceback" in type(raised.value.__cause__).__name__
    with pytest.raises(ValueError, match="chunksize"):
        executor.map(square, [1], chunksize=0)


def test_map_timeout_and_chunksize(make_pool, tmp_path):
    release = str(tmp_path / "release")
    with make_pool().executor() as executor:
        assert list(executor.map(square, range(9), chunksize=4)) == [x * x for x in range(9)]
        results = executor.map(wait_for_file, [release], timeout=0.2)
        with pytest.raises(TimeoutError):
            next(results)
        open(release, "w").close()


# -- futures: result, exception, callbacks, as_completed, wait -----------------


def test_result_timeout_exception_and_callbacks(make_pool, tmp_path):
    release = str(tmp_path / "release")
    seen = []
    with make_pool().executor() as executor:
        slow = executor.submit(wait_for_file, release, "late")
        with pytest.raises(TimeoutError):
            slow.result(timeout=0.1)
        failed = executor.submit(fails, 3)
        failed.add_done_callback(seen.append)
        error = failed.exception()
        assert isinstance(error, ValueError) and "task 3 refuses" in str(error)
        with pytest.raises(ValueError):
            failed.result()
        open(release, "w").close()
        assert slow.result() == "late"
        assert seen == [failed]
        # A callback added to a finished Future runs at once.
        slow.add_done_callback(seen.append)
        assert seen == [failed, slow]


def test_as_completed_and_wait(make_pool):
    with make_pool().executor() as executor:
        futures = [executor.submit(square, x) for x in range(6)]
        assert sorted(f.result() for f in concurrent.futures.as_completed(futures)) == [
            x * x for x in range(6)
        ]
        failing = [executor.submit(fails, 1), executor.submit(square, 2)]
        done, _ = concurrent.futures.wait(failing, return_when=concurrent.futures.FIRST_EXCEPTION)
        assert failing[0] in done
        done, not_done = concurrent.futures.wait(failing)
        assert done == set(failing) and not not_done


# -- cancel and shutdown -------------------------------------------------------


def test_cancel_takes_a_waiting_job_out_of_the_queue(make_pool, tmp_path):
    release = str(tmp_path / "release")
    pool = make_pool(1, keep_work_dir=True)
    with pool.executor(batch_window=5.0) as executor:
        futures = [executor.submit(wait_for_file, release, i) for i in range(3)]
        wait_for(lambda: any(f.running() for f in futures))
        running = next(f for f in futures if f.running())
        waiting = [f for f in futures if f is not running]
        assert not running.cancel()
        assert all(f.cancel() for f in waiting)
        assert all(f.cancelled() for f in waiting)
        with pytest.raises(concurrent.futures.CancelledError):
            waiting[0].result()
        open(release, "w").close()
        assert running.result() == futures.index(running)
    withdrawn = []
    for log in (tmp_path / "work").glob("map-*/log.jsonl"):
        events = [json.loads(line) for line in log.read_text().splitlines()]
        withdrawn += [e for e in events if e["event"] == "chunks_withdrawn"]
    # Taken back before any job ran them: a job of their own waiting in the
    # queue is cancelled; chunks that only waited to be claimed need no call.
    assert sum(last - first + 1 for e in withdrawn for first, last in e["chunks"]) == 2


def test_shutdown(make_pool, tmp_path):
    release = str(tmp_path / "release")
    executor = make_pool(1).executor(batch_window=5.0)
    futures = [executor.submit(wait_for_file, release, i) for i in range(3)]
    wait_for(lambda: any(f.running() for f in futures))
    executor.shutdown(wait=False, cancel_futures=True)
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(square, 1)
    assert sum(f.cancelled() for f in futures) == 2
    open(release, "w").close()
    executor.shutdown(wait=True)
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures if not f.cancelled()] == [
        futures.index(next(f for f in futures if not f.cancelled()))
    ]


def test_with_block_waits_for_every_call(make_pool):
    with make_pool().executor() as executor:
        futures = [executor.submit(square, x) for x in range(4)]
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == [0, 1, 4, 9]
