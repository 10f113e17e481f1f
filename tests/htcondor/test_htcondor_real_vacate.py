"""A real HTCondor stops a job mid-chunk: vacated, or held at its time limit.

``condor_vacate_job``: the job gets SIGTERM, is evicted and goes back to
idle; the chunk then runs again from its first unfinished task, and the task
that checkpoints from its checkpoint, without counting as a resubmission.
``allowed_job_duration``: HTCondor holds the job when it has run that long;
the chunk's finished tasks are kept and its unfinished ones go on in pieces
(``pypoolparty.splitting``). Marks the tasks leave count how often each ran
(``killing_tasks.chunk_task``). The map runs as the ordinary job user
(``job_user.py``); the test vacates only the job its own map submitted,
found in the map's event log.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import job_user
import pytest
from killing_tasks import (
    chunk_results,
    counts,
    open_gate,
    session_job_ids,
    where_blocked,
)
from real_schedulers import REPO_DIR
from session_logs import session_events
from waiting import wait_for

pytestmark = pytest.mark.htcondor

NUM_TASKS = 4
CHECKPOINTING = 2
STEP = 1
TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MAP_SCRIPT = """
import json, sys
sys.path[:0] = [{tests_dir!r}]
import killing_tasks
import pypoolparty.htcondor

pool = pypoolparty.htcondor.Pool(**{options!r})
tasks = [({marks!r}, x, {checkpointing}, 4, {step}) for x in range({num_tasks})]
print(json.dumps(pool.starmap(killing_tasks.chunk_task, tasks, chunksize={num_tasks})))
"""


@pytest.fixture
def condor_user():
    return job_user.require_job_user()


@pytest.fixture
def shared_dir(condor_user):
    path = job_user.make_shared_dir(condor_user)
    yield path
    job_user.remove_shared_dir(path)


def start_map(condor_user, shared_dir, **options):
    """The map of :data:`MAP_SCRIPT` in a process of the job user; its marks and work_dir."""
    python = job_user.ensure_venv()
    marks = os.path.join(shared_dir, "marks")
    work_dir = os.path.join(shared_dir, "work")
    options = dict(
        work_dir=work_dir,
        polling_interval=0.5,
        keep_work_dir=True,
        max_num_resubmissions=0,
        **options,
    )
    script = os.path.join(shared_dir, "map.py")
    with open(script, "w") as file:
        file.write(
            MAP_SCRIPT.format(
                tests_dir=TESTS_DIR,
                options=options,
                marks=marks,
                checkpointing=CHECKPOINTING,
                step=STEP,
                num_tasks=NUM_TASKS,
            )
        )
    # The driver and its marks belong to the job user.
    subprocess.run(["runuser", "-u", condor_user.pw_name, "--", "mkdir", marks], check=True)
    # PYTHONPATH: this checkout first, whichever the shared venv's .pth names.
    process = subprocess.Popen(
        [python, script],
        env=dict(job_user.environment(condor_user), PYTHONPATH=REPO_DIR),
        cwd=shared_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **as_user(condor_user),
    )
    return process, marks, work_dir


def finish_map(process, marks, batch) -> tuple[str, str]:
    """Let the blocked task go on; the map's stdout and stderr once it ended."""
    try:
        open_gate(marks, STEP)
        return process.communicate(timeout=300)
    finally:
        open_gate(marks, STEP)
        if process.poll() is None:
            process.kill()
            process.wait()
            subprocess.run(["condor_rm", "-constraint", f'JobBatchName == "{batch}"'])


def assert_resumed_once(process, stdout, stderr, marks, work_dir):
    """Every task finished once; only the checkpointing task started twice, at its checkpoint."""
    assert process.returncode == 0, stderr
    assert json.loads(stdout.strip().splitlines()[-1]) == chunk_results(NUM_TASKS, CHECKPOINTING, 4)
    assert counts(marks, range(NUM_TASKS), "finished") == dict.fromkeys(range(NUM_TASKS), 1)
    started = {x: 2 if x == CHECKPOINTING else 1 for x in range(NUM_TASKS)}
    assert counts(marks, range(NUM_TASKS), "started") == started
    steps = [f"step{s}" for s in range(4)]
    assert counts(marks, steps, "done") == {"step0": 1, "step1": 2, "step2": 1, "step3": 1}
    events = [e["event"] for e in session_events(work_dir)]
    assert "job_failed" not in events


def test_a_vacated_job_resumes_at_its_first_unfinished_task(condor_user, shared_dir):
    batch = f"ppp-test-{uuid.uuid4().hex[:8]}"
    process, marks, work_dir = start_map(condor_user, shared_dir, batch_name=batch)
    try:
        first = where_blocked(marks, STEP, timeout=180)
        (jobid,) = session_job_ids(work_dir)
        # The gate and the marks' files are the job user's to write.
        os.remove(os.path.join(marks, f"waiting-{STEP}"))
        vacated = subprocess.run(["condor_vacate_job", jobid], capture_output=True, text=True)
        assert vacated.returncode == 0, vacated.stderr
        again = where_blocked(marks, STEP, timeout=180)
        assert again["pid"] != first["pid"]
    finally:
        stdout, stderr = finish_map(process, marks, batch)
    assert_resumed_once(process, stdout, stderr, marks, work_dir)
    wait_for(lambda: not _in_queue(batch), timeout=60)


def test_a_job_the_user_holds_waits_for_its_release_then_resumes(condor_user, shared_dir):
    """The user's own condor_hold of a running job stops it (SIGTERM) and holds
    it: the map says it waits for the release, and that alone (no "requeued"),
    and the released job goes on from its first unfinished task."""
    batch = f"ppp-test-{uuid.uuid4().hex[:8]}"
    process, marks, work_dir = start_map(condor_user, shared_dir, batch_name=batch)
    try:
        first = where_blocked(marks, STEP, timeout=180)
        (jobid,) = session_job_ids(work_dir)
        os.remove(os.path.join(marks, f"waiting-{STEP}"))
        as_job_user = ["runuser", "-u", condor_user.pw_name, "--"]
        held = subprocess.run([*as_job_user, "condor_hold", jobid], capture_output=True, text=True)
        assert held.returncode == 0, held.stderr
        wait_for(lambda: stops_of(work_dir), timeout=120)
        released = subprocess.run(
            [*as_job_user, "condor_release", jobid], capture_output=True, text=True
        )
        assert released.returncode == 0, released.stderr
        again = where_blocked(marks, STEP, timeout=180)
        assert again["pid"] != first["pid"]
    finally:
        stdout, stderr = finish_map(process, marks, batch)
    assert_resumed_once(process, stdout, stderr, marks, work_dir)
    (stop,) = stops_of(work_dir)
    assert stop["cause"] == "held", stop
    assert "leaves it alone and waits until it is released" in stderr
    assert "requeued" not in stderr
    wait_for(lambda: not _in_queue(batch), timeout=60)


def stops_of(work_dir):
    """The map's job_interrupted events so far."""
    try:
        events = session_events(work_dir)
    except ValueError:  # a line being written
        return []
    return [e for e in events if e["event"] == "job_interrupted"]


def test_a_job_held_at_its_allowed_job_duration_goes_on_in_pieces(condor_user, shared_dir):
    """Tasks 0 and 1 finish, task 2 blocks until HTCondor holds the job at its
    allowed_job_duration: the chunk keeps tasks 0..1 and tasks 2..3 go on in
    pieces of one task (half the two the job finished), task 2 from its
    checkpoint."""
    batch = f"ppp-test-{uuid.uuid4().hex[:8]}"
    directives = {"allowed_job_duration": "15"}
    process, marks, work_dir = start_map(
        condor_user, shared_dir, batch_name=batch, submit_directives=directives
    )
    try:
        first = where_blocked(marks, STEP, timeout=180)
        os.remove(os.path.join(marks, f"waiting-{STEP}"))
        # Blocked until HTCondor holds the job; then a piece's job runs task 2 again.
        again = where_blocked(marks, STEP, timeout=180)
        assert again["pid"] != first["pid"]
    finally:
        stdout, stderr = finish_map(process, marks, batch)
    assert_resumed_once(process, stdout, stderr, marks, work_dir)
    events = session_events(work_dir)
    (stop,) = [e for e in events if e["event"] == "job_interrupted"]
    assert stop["cause"] == "time_limit", stop
    (split,) = [e for e in events if e["event"] == "chunk_split"]
    assert (split["ichunk"], split["tasks"], split["done"]) == (0, [0, 1], True)
    assert split["pieces"] == [[1, 2, 2], [2, 3, 3]]
    wait_for(lambda: not _in_queue(batch), timeout=60)


def as_user(entry) -> dict:
    if os.getuid() == entry.pw_uid:
        return {}
    return dict(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])


def _in_queue(batch: str) -> list[str]:
    completed = subprocess.run(
        ["condor_q", "-constraint", f'JobBatchName == "{batch}"', "-af:j", "JobStatus"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [line for line in completed.stdout.splitlines() if line.strip()]
