"""``pypoolparty run TASKLIST`` on the local pool, run as a subprocess as a user would.

Side-effect files (each task appends to ``counts/<line>`` when it completes)
count how often every line ran, across failures, reruns and a killed runner.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
from waiting import wait_for

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ("--polling-interval", "0.05")


def environment() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_DIR, env.get("PYTHONPATH")) if p)
    return env


def pypoolparty(*args, cwd) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pypoolparty", *map(str, args)],
        capture_output=True,
        cwd=cwd,
        env=environment(),
        timeout=300,
    )


def start_run(*args, cwd) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pypoolparty", "run", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=environment(),
    )


def counted(command: str, line: int) -> str:
    """``command``, then one more line in counts/<line> if it got that far."""
    return f"{command} && echo ran >> counts/{line}"


def runs_per_line(directory) -> dict[int, int]:
    counts = directory / "counts"
    return {int(name): len((counts / name).read_text().splitlines()) for name in os.listdir(counts)}


@pytest.fixture
def here(tmp_path):
    (tmp_path / "counts").mkdir()
    return tmp_path


MIXED = [
    "# a comment, then an empty line",
    "",
    counted("echo 'héllo ✓' \"two  spaces\" '$HOME' `echo back`", 3),
    counted("echo to-stderr >&2; false", 4),
    counted("sleep 600", 5),
    "   ",
    counted("printf '%s|' \"a b\" c; echo", 7),
]


def test_a_mixed_task_list_runs_every_task_and_reports_each_outcome(here):
    (here / "tasks.txt").write_text("\n".join(MIXED) + "\n", encoding="utf-8")
    run = pypoolparty("run", "tasks.txt", "--timeout", "2", *FAST, cwd=here)
    out = run.stdout.decode()
    assert run.returncode == 1, run.stderr.decode()
    assert "4 task(s): 2 done, 2 failed, 0 not run" in out
    assert "failed: line 4 (exit status 1): echo to-stderr" in out
    assert "      to-stderr" in out  # the last lines of its stderr
    assert "failed: line 5 (timed out after 2 s): sleep 600" in out
    # Failed commands stopped nothing: the others ran, each once.
    assert runs_per_line(here) == {3: 1, 7: 1}
    listed = here / ".pypoolparty" / "tasklist"
    assert (listed / "finished.lines").read_text() == "3\n7\n"
    assert (listed / "failed.lines").read_text() == "4\n5\n"
    assert (listed / "failed.tasklist").read_text() == MIXED[3] + "\n" + MIXED[4] + "\n"
    # Each task's own output, by its line number.
    shown = pypoolparty("stdout", ".pypoolparty", 3, cwd=here)
    assert shown.returncode == 0
    assert shown.stdout.decode() == "héllo ✓ two  spaces $HOME back\n"
    assert pypoolparty("stdout", ".pypoolparty", 7, cwd=here).stdout == b"a b|c|\n"
    assert pypoolparty("stderr", ".pypoolparty", 4, cwd=here).stdout == b"to-stderr\n"
    status = pypoolparty("status", ".pypoolparty", cwd=here)
    assert status.returncode == 0
    assert "tasks:    4: 2 done, 2 failed, 0 not run" in status.stdout.decode()
    not_a_task = pypoolparty("stdout", ".pypoolparty", 2, cwd=here)
    assert not_a_task.returncode == 1
    assert b"line 2 of the task list" in not_a_task.stderr


def test_the_same_command_again_runs_nothing_and_retry_failed_only_the_failures(here):
    lines = [counted("true", 1), counted("test -e flag", 2), counted("true", 3)]
    (here / "tasks.txt").write_text("\n".join(lines) + "\n")
    first = pypoolparty("run", "tasks.txt", *FAST, cwd=here)
    assert first.returncode == 1
    again = pypoolparty("run", "tasks.txt", *FAST, cwd=here)
    assert again.returncode == 1
    assert "3 task(s): 2 done, 1 failed, 0 not run (0 in this call)" in again.stdout.decode()
    assert runs_per_line(here) == {1: 1, 3: 1}
    (here / "flag").write_text("")
    retried = pypoolparty("run", "tasks.txt", "--retry-failed", *FAST, cwd=here)
    assert retried.returncode == 0, retried.stdout.decode() + retried.stderr.decode()
    assert "3 task(s): 3 done, 0 failed, 0 not run (1 in this call)" in retried.stdout.decode()
    assert runs_per_line(here) == {1: 1, 2: 1, 3: 1}
    assert (here / ".pypoolparty" / "tasklist" / "failed.lines").read_text() == ""
    # The map directories are gone once their outcomes are recorded.
    assert os.listdir(here / ".pypoolparty") == ["tasklist"]


def test_an_edited_task_list_is_refused_never_mixed(here):
    (here / "tasks.txt").write_text(counted("true", 1) + "\n")
    assert pypoolparty("run", "tasks.txt", *FAST, cwd=here).returncode == 0
    (here / "tasks.txt").write_text(counted("true", 1) + "\n" + counted("true", 2) + "\n")
    refused = pypoolparty("run", "tasks.txt", *FAST, cwd=here)
    assert refused.returncode == 2
    message = refused.stderr.decode()
    assert "holds the run of another task list" in message
    assert "another --work-dir" in message and "--new" in message
    assert runs_per_line(here) == {1: 1}
    fresh = pypoolparty("run", "tasks.txt", "--new", *FAST, cwd=here)
    assert fresh.returncode == 0
    assert runs_per_line(here) == {1: 2, 2: 1}


@pytest.mark.parametrize(
    "content, options, message",
    [
        ("# only a comment\n\n", (), "holds no task"),
        (b"echo ok\necho \xff\n", (), "line 2 of 'tasks.txt' is not UTF-8"),
        ("true\n", ("--pool-option", "no_such_option=1"), "no_such_option"),
        ("true\n", ("--pool-option", "partition"), "is not NAME=VALUE"),
        ("true\n", ("--timeout", "0"), "--timeout must be a number of seconds > 0"),
        ("true\n", ("--tasks-per-job", "0"), "--tasks-per-job must be a whole number >= 1"),
    ],
)
def test_bad_input_is_an_error_before_anything_runs(here, content, options, message):
    path = here / "tasks.txt"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    run = pypoolparty("run", "tasks.txt", *options, *FAST, cwd=here)
    assert run.returncode == 2
    assert message in run.stderr.decode()
    assert not (here / ".pypoolparty").exists() or not [
        name for name in os.listdir(here / ".pypoolparty") if name.startswith("map-")
    ]


def test_tasks_per_job_runs_that_many_lines_at_once_in_one_job(here):
    (here / "barrier").mkdir()
    # Each line waits until all three have started: in one job at a time
    # (-j 1), one task at a time, they would run into --timeout and fail.
    wait = "until [ $(ls barrier | wc -l) -ge 3 ]; do sleep 0.05; done"
    lines = [counted(f"touch barrier/{line}; {wait}", line) for line in (1, 2, 3)]
    (here / "tasks.txt").write_text("\n".join(lines) + "\n")
    options = ("-j", "1", "--tasks-per-job", "3", "--chunksize", "1", "--timeout", "60")
    run = pypoolparty("run", "tasks.txt", *options, *FAST, cwd=here)
    assert run.returncode == 0, run.stdout.decode() + run.stderr.decode()
    assert runs_per_line(here) == {1: 1, 2: 1, 3: 1}


def slow_list(here, num_lines: int) -> None:
    lines = [counted("sleep 0.2", line) for line in range(1, num_lines + 1)]
    (here / "tasks.txt").write_text("\n".join(lines) + "\n")


def test_a_runner_killed_with_sigkill_continues_and_no_finished_line_runs_again(here):
    slow_list(here, 24)
    runner = start_run("tasks.txt", "--chunksize", "4", *FAST, cwd=here)
    wait_for(lambda: len(runs_per_line(here)) >= 6, timeout=120)
    runner.kill()
    runner.communicate()
    assert len(runs_per_line(here)) < 24, "the run ended before it was killed"
    again = pypoolparty("run", "tasks.txt", "--chunksize", "4", *FAST, cwd=here)
    assert again.returncode == 0, again.stdout.decode() + again.stderr.decode()
    assert "continuing the interrupted map" in again.stderr.decode()
    assert runs_per_line(here) == {line: 1 for line in range(1, 25)}


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGUSR1])
def test_ctrl_c_or_sigusr1_leaves_unfinished_tasks_for_the_next_run(here, signum):
    # One job at a time: when line 3 has started (and hangs until released),
    # lines 1 and 2 are finished and recorded, and line 3 is the one in flight.
    lines = [counted("true", 1), counted("true", 2)]
    lines.append(counted("test -e release || { echo $$ > started; sleep 600; }", 3))
    lines += [counted("true", line) for line in range(4, 9)]
    (here / "tasks.txt").write_text("\n".join(lines) + "\n")
    options = ("-j", "1", "--chunksize", "4", *FAST)
    runner = start_run("tasks.txt", *options, cwd=here)
    wait_for(lambda: (here / "started").exists() and (here / "started").read_text(), timeout=120)
    runner.send_signal(signum)
    out, _ = runner.communicate(timeout=120)
    assert runner.returncode == 130
    assert "interrupted; 8 task(s)" in out.decode()
    assert "run the same command again" in out.decode()
    # The hanging command went with its cancelled job.
    hanging = int((here / "started").read_text())
    wait_for(lambda: not os.path.exists(f"/proc/{hanging}") or dead(hanging), timeout=10)
    status = pypoolparty("status", ".pypoolparty", cwd=here).stdout.decode()
    assert "runner:   not running" in status
    assert "8 task(s), interrupted; the same 'pypoolparty run' continues it" in status
    assert runs_per_line(here) == {1: 1, 2: 1}
    (here / "release").write_text("")
    again = pypoolparty("run", "tasks.txt", *options, cwd=here)
    assert again.returncode == 0
    assert runs_per_line(here) == {line: 1 for line in range(1, 9)}


def dead(pid: int) -> bool:
    """A zombie (state Z) is dead for our purpose."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            return file.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except FileNotFoundError:
        return True


def test_ten_thousand_lines_on_the_local_pool(here):
    lines = [f"echo task {line}" for line in range(1, 10_001)]
    (here / "tasks.txt").write_text("\n".join(lines) + "\n")
    run = pypoolparty("run", "tasks.txt", "--chunksize", "2500", *FAST, cwd=here)
    assert run.returncode == 0, run.stderr.decode()
    assert "10000 task(s): 10000 done, 0 failed, 0 not run" in run.stdout.decode()
    finished = (here / ".pypoolparty" / "tasklist" / "finished.lines").read_text().split()
    assert finished == [str(line) for line in range(1, 10_001)]
    shown = pypoolparty("stdout", ".pypoolparty", 9_999, cwd=here)
    assert shown.stdout == b"task 9999\n"


def test_a_second_runner_of_the_same_work_dir_is_refused_while_the_first_runs(here):
    lines = [counted("touch started", 1), counted("until test -e release; do sleep 0.05; done", 2)]
    (here / "tasks.txt").write_text("\n".join(lines) + "\n")
    first = start_run("tasks.txt", "-j", "1", "--chunksize", "2", *FAST, cwd=here)
    wait_for(lambda: (here / "started").exists(), timeout=120)
    second = pypoolparty("run", "tasks.txt", *FAST, cwd=here)
    assert second.returncode == 2
    assert f"another runner (pid {first.pid}" in second.stderr.decode()
    (here / "release").write_text("")
    first.communicate(timeout=120)
    assert first.returncode == 0
    assert runs_per_line(here) == {1: 1, 2: 1}


def test_chdir_runs_the_commands_there_and_a_continuation_must_keep_it(here):
    (here / "sub").mkdir()
    (here / "tasks.txt").write_text("pwd\n")
    run = pypoolparty("run", "tasks.txt", "--chdir", "sub", *FAST, cwd=here)
    assert run.returncode == 0
    assert pypoolparty("stdout", ".pypoolparty", 1, cwd=here).stdout.decode() == f"{here / 'sub'}\n"
    elsewhere = pypoolparty("run", "tasks.txt", *FAST, cwd=here)
    assert elsewhere.returncode == 2
    assert f"runs its commands in '{here / 'sub'}'" in elsewhere.stderr.decode()
    assert "pass --chdir" in elsewhere.stderr.decode()


def test_a_running_tasks_output_so_far_then_its_record_and_a_timeline_per_task(here):
    # Line 2 writes a line to each stream, then waits to be released.
    lines = [
        "echo one",
        "echo started; echo progress >&2; while [ ! -e release ]; do sleep 0.05; done; echo done",
        "exit 3",
    ]
    (here / "tasks.txt").write_text("\n".join(lines) + "\n")
    runner = start_run("tasks.txt", "-j", "2", "--chunksize", "1", *FAST, cwd=here)
    try:
        running = wait_for(
            lambda: (c := pypoolparty("stdout", ".pypoolparty", 2, cwd=here)).stdout and c,
            timeout=120,
        )
        assert running.stdout == b"started\n"
        assert b"is still running; its stdout so far" in running.stderr
        assert b"running_output" in running.stderr  # where the file is
        stderr = pypoolparty("stderr", ".pypoolparty", 2, cwd=here)
        assert stderr.stdout == b"progress\n"
        (here / "release").write_text("")
        out, err = runner.communicate(timeout=120)
    finally:
        runner.kill()
        runner.communicate()
    assert runner.returncode == 1, out.decode() + err.decode()
    finished = pypoolparty("stdout", ".pypoolparty", 2, cwd=here)
    assert finished.stdout == b"started\ndone\n"
    assert b"stdout of line 2 (attempt 1, ok):" in finished.stderr

    # The map's directory is gone; the record keeps where and when each line ran.
    timeline = pypoolparty("timeline", ".pypoolparty", "-o", "trace.json", cwd=here)
    assert timeline.returncode == 0, timeline.stderr.decode()
    events = json.loads((here / "trace.json").read_text())["traceEvents"]
    tasks = {e["name"]: e for e in events if e["ph"] == "X" and e["cat"].startswith("task")}
    assert sorted(tasks) == ["line 1", "line 2", "line 3 FAILED"]
    assert tasks["line 3 FAILED"]["args"]["failure"] == "exit status 3"
    hosts = {e["args"]["name"] for e in events if e["name"] == "process_name"}
    assert hosts == {socket.gethostname()}
    workers = [e for e in events if e["ph"] == "X" and e["cat"].startswith("worker")]
    # -j 2: two jobs, hence two worker processes; the one that ran line 1
    # then claimed line 3 (line 2's still ran).
    assert len(workers) == 2
    # lines 1 and 2 ran at once (-j 2): on two slots
    assert tasks["line 1"]["tid"] != tasks["line 2"]["tid"] or (
        tasks["line 1"]["ts"] + tasks["line 1"]["dur"] <= tasks["line 2"]["ts"]
    )
