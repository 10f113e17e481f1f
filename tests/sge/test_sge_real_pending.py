"""Why jobs wait, on a real Grid Engine (start one with ``local_clusters/sge/start.sh``)."""

from __future__ import annotations

import time

import pytest
from real_schedulers import require_scheduler
from session_logs import session_events

import pypoolparty.sun_grid_engine

pytestmark = pytest.mark.sge


@pytest.fixture(autouse=True)
def real_sge():
    require_scheduler("sge")


def test_a_job_waiting_for_its_start_time_shows_the_reason_and_is_not_blocked(tmp_path, capsys):
    start = time.strftime("%Y%m%d%H%M.%S", time.localtime(time.time() + 5))
    pool = pypoolparty.sun_grid_engine.Pool(
        work_dir=str(tmp_path / "work"),
        polling_interval=0.5,
        qsub_arguments=["-a", start],
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
    # From qstat -j (schedd_job_info true: the default of Debian's gridengine).
    assert ("execution time not reached", False) in pending
    assert "have waited" not in capsys.readouterr().err
