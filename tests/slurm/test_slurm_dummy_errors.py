"""Scheduler errors that end a map are pypoolparty.PoolError subclasses (dummy SLURM)."""

from __future__ import annotations

import glob
import json
import os
import stat
import threading

import pytest

import pypoolparty
import pypoolparty.slurm
import pypoolparty.slurm.array
from pypoolparty import event_log

POOLS = [pypoolparty.slurm.array.Pool, pypoolparty.slurm.Pool]
SLURM_COMMANDS = ("sbatch", "squeue", "scancel", "scontrol", "sinfo")


def make_pool(pool_class, paths, tmp_path, **options):
    return pool_class(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        command_timeout=2.0,
        outage_timeout=120.0,
        **paths,
        **options,
    )


def write_script(path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def squeue_gone_after_sbatch(dummy_slurm, bin_dir) -> dict[str, str]:
    """Paths of the dummy SLURM's commands, through wrappers whose ``squeue``
    is removed by the first ``sbatch``: a command that vanishes mid-map."""
    bin_dir.mkdir()
    for name in SLURM_COMMANDS:
        write_script(bin_dir / name, f'#!/bin/sh\nexec "{dummy_slurm.bin}/{name}" "$@"\n')
    write_script(
        bin_dir / "sbatch",
        f'#!/bin/sh\n"{dummy_slurm.bin}/sbatch" "$@"\nstatus=$?\n'
        f'rm -f "{bin_dir}/squeue"\nexit $status\n',
    )
    return {f"{name}_path": str(bin_dir / name) for name in ("sbatch", "squeue", "scancel")}


@pytest.mark.parametrize("pool_class", POOLS)
def test_a_rejected_submission_is_a_pool_error_that_does_not_advise_calling_again(
    pool_class, dummy_slurm, tmp_path
):
    pool = make_pool(pool_class, dummy_slurm.paths, tmp_path, partition="gpu-nonexistent")
    with pytest.raises(pypoolparty.SubmissionRejected) as raised:
        pool.map(abs, range(3))
    assert isinstance(raised.value, pypoolparty.PoolError)
    assert isinstance(raised.value, pypoolparty.SchedulerError)
    message = str(raised.value)
    assert "Invalid partition name specified" in message
    assert str(tmp_path / "work") in message  # where the kept session directory is
    assert "call the same map" not in message
    assert "call the same map" not in "".join(getattr(raised.value, "__notes__", []))


@pytest.mark.parametrize("pool_class", POOLS)
def test_a_command_that_vanishes_mid_map_is_a_pool_error_and_the_jobs_are_cancelled(
    pool_class, dummy_slurm, tmp_path
):
    paths = squeue_gone_after_sbatch(dummy_slurm, tmp_path / "bin")
    pool = make_pool(pool_class, paths, tmp_path)
    with pytest.raises(pypoolparty.SchedulerError) as raised:
        # Tasks that only end when cancelled: the map cannot finish before
        # its first squeue.
        pool.map(lambda x: threading.Event().wait(), range(3), chunksize=1)
    assert isinstance(raised.value, pypoolparty.PoolError)
    message = str(raised.value)
    assert paths["squeue_path"] in message
    # A job per slot of the dummy (2): the third chunk waited to be claimed.
    assert "Cancelled 2 job(s)" in message and "keeps the results of 0 of 3 tasks" in message
    assert f"work_dir={str(tmp_path / 'work')!r}" in message  # continuing can succeed
    assert not os.path.exists(paths["squeue_path"])
    # The map had submitted before squeue vanished (a cancelled array task that
    # never started leaves no record in SLURM); none of its jobs is left.
    (log,) = glob.glob(str(tmp_path / "work" / "map-*" / "log.jsonl"))
    assert [e for e in event_log.read(log) if e["event"] == "submitted"]
    assert not [job for job in dummy_slurm.jobs() if job["state"] in ("PENDING", "RUNNING")]


def sbatch_that_queues_then_refuses(dummy_slurm, bin_dir) -> dict[str, str]:
    """Paths whose sbatch leaves a job record but reports a refusal, as real
    SLURM does for "Requested node configuration is not available"."""
    bin_dir.mkdir()
    for name in SLURM_COMMANDS:
        write_script(bin_dir / name, f'#!/bin/sh\nexec "{dummy_slurm.bin}/{name}" "$@"\n')
    write_script(
        bin_dir / "sbatch",
        f'#!/bin/sh\n"{dummy_slurm.bin}/sbatch" "$@" >/dev/null\n'
        'echo "sbatch: error: Batch job submission failed: Requested node configuration '
        'is not available" >&2\nexit 1\n',
    )
    return {f"{name}_path": str(bin_dir / name) for name in ("sbatch", "squeue", "scancel")}


def test_a_refused_submission_is_never_cancelled_or_adopted_later(dummy_slurm, tmp_path):
    refusing = sbatch_that_queues_then_refuses(dummy_slurm, tmp_path / "bin")
    pool = make_pool(pypoolparty.slurm.array.Pool, refusing, tmp_path, max_num_resubmissions=0)
    with pytest.raises(pypoolparty.SubmissionRejected) as raised:
        pool.map(abs, range(-3, 0), chunksize=1)
    assert "cancelled" not in str(raised.value).lower()  # nothing of it was looked up
    assert dummy_slurm.jobs(), "the wrapper left a record under the refused submission's name"

    pool = make_pool(pypoolparty.slurm.array.Pool, dummy_slurm.paths, tmp_path, keep_work_dir=True)
    assert pool.map(abs, range(-3, 0), chunksize=1) == [3, 2, 1]
    (log,) = (tmp_path / "work").glob("map-*/log.jsonl")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["submission"] for e in events if e["event"] == "submission_rejected"]
    (resumed,) = [e for e in events if e["event"] == "session_resumed"]
    assert resumed["adopted_jobs"] == 0
