"""The dummy SLURM's ``requeue_probability`` (faults.json), as the chaos scenarios use it."""

from __future__ import annotations

from waiting import wait_for

SCRIPT = 'echo "run ${SLURM_RESTART_COUNT:-0}" >> runs; [ -n "$SLURM_RESTART_COUNT" ] || sleep 30'
"""The first run waits to be requeued; the next one ends at once."""


def test_a_drawn_requeue_stops_the_running_job_which_runs_again_under_its_id(dummy_slurm, tmp_path):
    # Pending for a minute after the requeue, unless told to start: the test
    # turns the requeues off before the second run.
    dummy_slurm.set_faults(seed=3, requeue_probability=1.0, requeue_delay=60, kill_wait=0.5)
    submitted = dummy_slurm.run(
        "sbatch", "--parsable", f"--chdir={tmp_path}", "--output=out", "--wrap", SCRIPT
    )
    assert submitted.returncode == 0, submitted.stderr
    jobid = submitted.stdout.strip()

    (job,) = wait_for(
        lambda: [j for j in dummy_slurm.jobs() if j["state"] == "PENDING" and j.get("restarts")],
        timeout=30,
    )
    assert (job["reason"], job["restarts"]) == ("BeginTime", 1)
    assert (tmp_path / "runs").read_text() == "run 0\n"

    dummy_slurm.set_faults(seed=3)
    dummy_slurm.run("scontrol", "update", f"jobid={jobid}", "StartTime=now")
    wait_for(lambda: dummy_slurm.jobs()[0]["state"] == "COMPLETED", timeout=30)
    assert (tmp_path / "runs").read_text() == "run 0\nrun 1\n"
    assert str(dummy_slurm.jobs()[0]["array_job_id"]) == jobid
