"""Jobs that wait on a real SLURM (CI: ``sudo bash local_clusters/slurm/start.sh``).

A job asking for more nodes than the partition has waits for good with
``PartitionConfig`` or ``PartitionNodeLimit`` (SLURM's default
``EnforcePartLimits=NO`` accepts it);
one with ``--begin`` waits with ``BeginTime`` until then.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest
from real_schedulers import require_scheduler
from session_logs import session_events
from waiting import wait_for

import pypoolparty.slurm.array
from pypoolparty.errors import PendingTimeout

pytestmark = pytest.mark.slurm
MORE_NODES_THAN_ANY_TEST_CLUSTER = "--nodes=1000"


@pytest.fixture(autouse=True)
def real_slurm():
    require_scheduler("slurm")


@pytest.fixture
def prefix() -> str:
    return f"ppp{uuid.uuid4().hex[:8]}"


def live_jobs(prefix: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "--array", "-t", "PD,R,CG", "-o", "%i|%j"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [
        line.split("|")[0] for line in out.splitlines() if line.split("|")[1].startswith(prefix)
    ]


def test_a_map_whose_jobs_can_never_start_ends_at_its_pending_timeout(tmp_path, prefix, capsys):
    pool = pypoolparty.slurm.array.Pool(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.2,
        job_name_prefix=prefix,
        sbatch_arguments=[MORE_NODES_THAN_ANY_TEST_CLUSTER],
        pending_timeout=0,
    )
    with pytest.raises(PendingTimeout) as raised:
        pool.map(str, range(3), chunksize=1)
    [submitted] = [e for e in session_events(tmp_path / "work") if e["event"] == "submitted"]
    array = submitted["jobs"][0][0].split("_")[0]
    blocked = [
        e
        for e in session_events(tmp_path / "work")
        if e["event"] == "job_state" and e.get("blocked")
    ]
    [reason] = {e["reason"] for e in blocked}
    assert reason in ("PartitionConfig", "PartitionNodeLimit")
    # A job per slot (2); the third chunk waits to be claimed.
    assert f"{reason}: 2 job(s), {array}_[0-1]" in str(raised.value)
    wait_for(lambda: not live_jobs(prefix), timeout=30)


def test_jobs_waiting_for_their_start_time_are_not_blocked(tmp_path, prefix, capsys):
    pool = pypoolparty.slurm.array.Pool(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.2,
        job_name_prefix=prefix,
        sbatch_arguments=["--begin=now+3"],
        pending_warning_after=0,
        pending_timeout=0,
        keep_work_dir=True,
    )
    assert pool.map(str, range(2), chunksize=1) == ["0", "1"]
    pending = [
        (e["reason"], e.get("blocked", False))
        for e in session_events(tmp_path / "work")
        if e["event"] == "job_state" and e["state"] == "pending"
    ]
    assert ("BeginTime", False) in pending
    assert "have waited" not in capsys.readouterr().err
