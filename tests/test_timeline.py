"""``pypoolparty timeline`` on hand-built work_dirs: every task on its host and process slot."""

import json
import os

import hand_built_sessions

from pypoolparty import cli, work_dir, worker
from pypoolparty.shell_commands import ShellResult
from pypoolparty.tasklist.state import RunDir


def new_session(base, num_tasks, chunksize, function="square") -> work_dir.SessionDir:
    return hand_built_sessions.new_session(
        base, num_tasks, chunksize, function=function, scheduler="slurm"
    )


def write_outcome(session_dir, ichunk, host, pid, tasks, failing=(), result=None):
    """A chunk's outcome whose tasks ran one after the other: ``tasks`` is [(itask, start, end)]."""
    records = [
        hand_built_sessions.task_record(
            itask, start, end, itask in failing, result(itask) if result else itask
        )
        for itask, start, end in tasks
    ]
    outcome = {
        "format": worker.OUTCOME_FORMAT,
        "ichunk": ichunk,
        "host": host,
        "pid": pid,
        "start": tasks[0][1],
        "end": tasks[-1][2],
        "setup_error": None,
        "tasks": records,
    }
    worker.write_outcome(session_dir.path, ichunk, outcome)


def timeline(path, tmp_path, capsys) -> tuple[list[dict], str]:
    trace_path = tmp_path / "trace.json"
    assert cli.main(["timeline", str(path), "-o", str(trace_path)]) == 0
    return json.loads(trace_path.read_text())["traceEvents"], capsys.readouterr().err


def slices(events, category) -> dict[str, dict]:
    return {e["name"]: e for e in events if e["ph"] == "X" and e["cat"].startswith(category)}


def track(events, event) -> tuple[str, str]:
    """(host, slot name) of an event."""
    names = {(e["pid"], e["tid"], e["name"]): e["args"]["name"] for e in events if e["ph"] == "M"}
    return names[(event["pid"], 0, "process_name")], names[
        (event["pid"], event["tid"], "thread_name")
    ]


def test_a_worker_that_ran_several_chunks_keeps_one_slot_and_slots_are_reused(tmp_path, capsys):
    session_dir = new_session(str(tmp_path), num_tasks=10, chunksize=2)
    # node7: worker 42 claims chunk 0, then chunk 2 (load balancing); worker 43
    # runs chunk 1 meanwhile; worker 44 starts after 43 ended and reuses its slot.
    write_outcome(session_dir, 0, "node7", 42, [(0, 10, 14), (1, 14, 20)])
    write_outcome(session_dir, 2, "node7", 42, [(4, 20, 24), (5, 24, 30)], failing={5})
    write_outcome(session_dir, 1, "node7", 43, [(2, 11, 15), (3, 15, 25)])
    write_outcome(session_dir, 3, "node7", 44, [(6, 26, 28), (7, 28, 29)])
    write_outcome(session_dir, 4, "node8", 42, [(8, 11, 12), (9, 12, 13)])

    events, message = timeline(session_dir.path, tmp_path, capsys)
    assert "10 task(s) in 5 chunk run(s) on 2 host(s)" in message
    chunks, tasks = slices(events, "chunk"), slices(events, "task")
    assert track(events, chunks["chunk 0"]) == ("node7", "slot 0")
    assert track(events, chunks["chunk 2"]) == ("node7", "slot 0")
    assert track(events, chunks["chunk 1"]) == ("node7", "slot 1")
    assert track(events, chunks["chunk 3"]) == ("node7", "slot 1")
    assert track(events, chunks["chunk 4"]) == ("node8", "slot 0")
    # chunk 2 starts where chunk 0 ends: consecutive slices of one track
    assert chunks["chunk 2"]["ts"] == chunks["chunk 0"]["ts"] + chunks["chunk 0"]["dur"]
    assert sorted(tasks) == sorted([f"task {i}" for i in range(10) if i != 5] + ["task 5 FAILED"])
    assert tasks["task 5 FAILED"]["args"]["failure"] == "ValueError"
    for task in tasks.values():
        chunk = chunks[f"chunk {task['args']['ichunk']}"]
        assert (task["pid"], task["tid"]) == (chunk["pid"], chunk["tid"])
        assert chunk["ts"] <= task["ts"]
        assert task["ts"] + task["dur"] <= chunk["ts"] + chunk["dur"]
    assert chunks["chunk 0"]["ts"] == 0  # the earliest start, as nothing was logged


def test_the_map_of_a_task_list_names_its_tasks_by_line_and_marks_failed_commands(tmp_path, capsys):
    base = str(tmp_path / "work")
    run_dir, session_dir = hand_built_sessions.task_list_map(base)

    def result(itask):
        return ShellResult(f"command {itask}", 2 if itask == 1 else 0, b"", b"")

    write_outcome(
        session_dir, 0, "node7", 42, [(0, 10, 11), (1, 11, 12), (2, 12, 13)], result=result
    )

    events, message = timeline(base, tmp_path, capsys)
    assert "3 task(s) in 1 chunk run(s) on 1 host(s)" in message
    tasks = slices(events, "task")
    assert sorted(tasks) == ["line 2 (task 0)", "line 5 (task 1) FAILED", "line 9 (task 2)"]
    assert tasks["line 5 (task 1) FAILED"]["args"]["failure"] == "exit status 2"


def test_a_recorded_task_list_run_shows_each_task_on_its_worker_process(tmp_path, capsys):
    base = str(tmp_path / "work")
    os.makedirs(base, mode=0o700)
    run_dir = RunDir(base)
    run_dir.start_or_check("/lists/tasks.txt", "print", 4, "/data")

    def ran(command, returncode, host, pid, start, end, timed_out=False):
        return ShellResult(command, returncode, b"", b"", timed_out, 5.0, host, pid, start, end)

    run_dir.record(
        [
            (1, ran("true", 0, "node7", 42, 100, 101)),
            (2, ran("sleep 9", -15, "node7", 42, 101, 106, timed_out=True)),
            (3, ran("true", 0, "node7", 43, 100, 102)),
            (4, ran("false", 1, "node8", 50, 103, 104)),
        ]
    )
    # --retry-failed ran line 4 again later, when both slots of node7 were free again
    run_dir.record([(4, ran("false", 0, "node7", 77, 110, 111))])

    events, message = timeline(base, tmp_path, capsys)
    assert "5 task(s) on 2 host(s)" in message
    workers, tasks = slices(events, "worker"), slices(events, "task")
    assert sorted(tasks) == ["line 1", "line 2 FAILED", "line 3", "line 4", "line 4 FAILED"]
    assert tasks["line 2 FAILED"]["args"]["failure"] == "timed out"
    assert tasks["line 4"]["args"] == {"line": 4, "attempt": 2}
    assert track(events, tasks["line 1"]) == ("node7", "slot 0")
    assert track(events, tasks["line 2 FAILED"]) == ("node7", "slot 0")
    assert track(events, tasks["line 3"]) == ("node7", "slot 1")
    assert track(events, tasks["line 4"]) == ("node7", "slot 0")
    assert track(events, tasks["line 4 FAILED"]) == ("node8", "slot 0")
    pid_42 = workers["worker pid 42"]
    assert (pid_42["ts"], pid_42["dur"], pid_42["args"]["num_tasks"]) == (0, 6e6, 2)
    assert pid_42["cat"] == "worker,failed"
