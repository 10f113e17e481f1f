"""imap over an input that blocks, against a real SLURM.

The tasks the input gave run while it blocks, ``terminate()`` returns while
it still blocks, and what it gives afterwards is never submitted. CI starts
the scheduler with ``sudo bash local_clusters/slurm/start.sh``.
"""

from __future__ import annotations

import queue
import subprocess
import threading
import uuid

import pytest
from real_schedulers import require_scheduler

import pypoolparty
import pypoolparty.slurm.array

pytestmark = pytest.mark.slurm

GUARD = 120.0
"""Seconds after which a test that would otherwise hang fails (never reached when it passes)."""
END = object()


@pytest.fixture(autouse=True)
def real_slurm():
    require_scheduler("slurm")


def job_ids(prefix: str) -> set[str]:
    """Every job (any state) whose name starts with ``prefix``."""
    out = subprocess.run(
        ["squeue", "-h", "--array", "-t", "all", "-o", "%i|%j"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    fields = [line.split("|") for line in out.splitlines()]
    return {jobid for jobid, name in fields if name.startswith(prefix)}


def fed_by(tasks: queue.Queue, asked: queue.Queue):
    """Yield what the test puts on ``tasks``, telling ``asked`` before each wait."""
    while True:
        asked.put("next")
        item = tasks.get()
        if item is END:
            return
        yield item


def test_terminate_returns_while_the_input_blocks_and_nothing_is_submitted_after(tmp_path):
    prefix = f"ppp{uuid.uuid4().hex[:8]}"
    tasks, asked = queue.Queue(), queue.Queue()
    pool = pypoolparty.slurm.array.Pool(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.2,
        missing_result_grace_period=1.0,
        job_name_prefix=prefix,
    )
    readers_before = set(threading.enumerate())
    try:
        results = pool.imap(abs, fed_by(tasks, asked))
        for x in (-3, -4):
            asked.get(timeout=GUARD)
            tasks.put(x)
        # The results come while the input blocks in tasks.get().
        assert [results.next(GUARD), results.next(GUARD)] == [3, 4]
        asked.get(timeout=GUARD)
        terminating = threading.Thread(target=pool.terminate, daemon=True)
        terminating.start()
        terminating.join(GUARD)
        assert not terminating.is_alive(), "terminate() waits for the input"
        submitted = job_ids(prefix)
        assert submitted, "the two tasks ran as SLURM jobs"
        tasks.put(-5)
        tasks.put(END)
        for thread in set(threading.enumerate()) - readers_before:
            if thread.name.startswith("pypoolparty-imap-reader"):
                thread.join(GUARD)
                assert not thread.is_alive()
        assert job_ids(prefix) == submitted, "a task read after terminate() was submitted"
        with pytest.raises(pypoolparty.Cancelled):
            results.next(GUARD)
    finally:
        tasks.put(END)
