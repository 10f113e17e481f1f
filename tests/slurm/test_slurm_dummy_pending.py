"""Jobs that wait, on the dummy SLURM: reasons shown, blocked jobs warned about, pending_timeout.

The dummy keeps a job that asks for ``--nodes=2`` pending for good with
``PartitionNodeLimit``, as the real SLURM of one node does.
"""

from __future__ import annotations

import os
import stat

import pytest
from session_logs import session_events
from waiting import wait_for

import pypoolparty.slurm
import pypoolparty.slurm.array
from pypoolparty import cli
from pypoolparty.errors import Cancelled, PendingTimeout

POOLS = [pypoolparty.slurm.array.Pool, pypoolparty.slurm.Pool]
NEVER_STARTS = ["--nodes=2"]


def recording(tmp_path, dummy_slurm, command: str) -> tuple[str, str]:
    """A stand-in for the dummy's ``command`` that notes each call; (its path, the notes)."""
    notes = tmp_path / f"{command}.calls"
    script = tmp_path / f"recording-{command}"
    script.write_text(f'#!/bin/sh\necho "$@" >> {notes}\nexec {dummy_slurm.path(command)} "$@"\n')
    script.chmod(stat.S_IRWXU)
    return str(script), str(notes)


def calls(notes: str) -> list[str]:
    if not os.path.exists(notes):
        return []
    with open(notes) as file:
        return file.read().splitlines()


def make_pool(pool_class, dummy_slurm, tmp_path, **options):
    defaults = dict(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        command_timeout=5.0,
        missing_result_grace_period=0.5,
    )
    return pool_class(**{**defaults, **dummy_slurm.paths, **options})


def fails_on_first_run(marker_dir: str):
    def task(x):
        marker = os.path.join(marker_dir, f"ran-{x}")
        if x == 4 and not os.path.exists(marker):
            open(marker, "w").close()
            raise ValueError("first run")
        return x * 10

    return task


@pytest.mark.parametrize("pool_class", POOLS)
def test_pending_timeout_cancels_with_one_call_keeps_finished_work_and_the_map_continues(
    pool_class, dummy_slurm, tmp_path
):
    task = fails_on_first_run(str(tmp_path))
    with pytest.raises(ValueError, match="first run"):
        make_pool(pool_class, dummy_slurm, tmp_path).map(task, range(6), chunksize=2)

    scancel, notes = recording(tmp_path, dummy_slurm, "scancel")
    blocked = make_pool(
        pool_class,
        dummy_slurm,
        tmp_path,
        sbatch_arguments=NEVER_STARTS,
        pending_timeout=0,
        scancel_path=scancel,
    )
    with pytest.raises(PendingTimeout) as raised:
        blocked.map(task, range(6), chunksize=2)
    message = str(raised.value)
    # The last submission is the blocked one: chunk 2, the one with the failed task.
    [[jobid, ichunk, _, _]] = [
        e for e in session_events(tmp_path / "work") if e["event"] == "submitted"
    ][-1]["jobs"]
    assert ichunk == 2
    assert f"PartitionNodeLimit: 1 job(s), {jobid}" in message
    # Chunks 0 and 1, and task 5, which finished beside the failed task 4.
    assert "keeps the results of 5 of 6 tasks" in message
    assert "to continue it" in message
    # Ending the map took one scancel, for that job alone (an earlier one
    # cancelled the previous call's job of chunk 2 before it was resubmitted).
    assert calls(notes)[-1] == jobid.replace("_2", "_[2]")
    assert calls(notes).count(calls(notes)[-1]) == 1

    fixed = make_pool(pool_class, dummy_slurm, tmp_path)
    assert fixed.map(task, range(6), chunksize=2) == [x * 10 for x in range(6)]


def test_blocked_jobs_are_reported_once_and_status_lists_their_reason_and_ids(
    dummy_slurm, tmp_path, capsys
):
    squeue, notes = recording(tmp_path, dummy_slurm, "squeue")
    pool = make_pool(
        pypoolparty.slurm.array.Pool,
        dummy_slurm,
        tmp_path,
        sbatch_arguments=NEVER_STARTS,
        pending_warning_after=0,
        squeue_path=squeue,
        verbose=True,
    )
    result = pool.map_async(str, range(3), chunksize=1)
    wait_for(lambda: "have waited" in capsys.readouterr().err or None, timeout=60)
    polls = len(calls(notes))
    wait_for(lambda: len(calls(notes)) >= polls + 5)

    assert cli.main(["status", str(tmp_path / "work")]) == 0
    status = capsys.readouterr()
    array = dummy_slurm.jobs()[0]["array_job_id"]
    assert (
        f"waiting:  2 job(s) for PartitionNodeLimit (does not clear by itself): {array}_[0-1]"
        in status.out
    )
    assert f"job ids:  pending {array}_[0-1]" in status.out
    assert "squeue -j ID" in status.out
    assert "have waited" not in status.err  # said once only

    pool.terminate()
    with pytest.raises(Cancelled):
        result.get(timeout=60)
    # The third chunk has no job yet: it waits to be claimed.
    assert "3 pending (2 PartitionNodeLimit, 1 no job yet)" in capsys.readouterr().err


def test_a_start_time_is_shown_as_the_reason_and_never_warned_about(dummy_slurm, tmp_path, capsys):
    pool = make_pool(
        pypoolparty.slurm.Pool,
        dummy_slurm,
        tmp_path,
        sbatch_arguments=["--begin=now+2"],
        pending_warning_after=0,
        pending_timeout=0,
        keep_work_dir=True,
    )
    assert pool.map(str, range(2), chunksize=1) == ["0", "1"]
    seen = [
        (e["reason"], e.get("blocked", False))
        for e in session_events(tmp_path / "work")
        if e["event"] == "job_state" and e["state"] == "pending"
    ]
    assert ("BeginTime", False) in seen
    assert "have waited" not in capsys.readouterr().err
