"""pypoolparty.shell and Pool.run_commands: shell commands as tasks, on the local pool."""

from __future__ import annotations

import concurrent.futures
import functools
import os
import shlex
import socket
import subprocess
import sys

import pytest
from waiting import wait_for

import pypoolparty
from pypoolparty import shell_commands


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purpose; /proc says so.
    with open(f"/proc/{pid}/stat") as file:
        return file.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def pool(tmp_path):
    with pypoolparty.local.Pool(2, work_dir=str(tmp_path / "work"), polling_interval=0.05) as pool:
        yield pool


def test_each_command_gives_its_exit_status_and_outputs_and_a_failure_stops_nothing(pool, tmp_path):
    commands = [
        "echo out; echo err >&2",
        "echo 'it'\"'\"'s  two  spaces' \"$((6 * 7))\" | tr a-z A-Z; exit 3",
        "printf '%s\\n' 'héllo ✓ 東京'",
        "pwd",
    ]
    results = pool.run_commands(commands)
    assert [r.command for r in results] == commands
    assert [r.returncode for r in results] == [0, 3, 0, 0]
    assert [r.ok for r in results] == [True, False, True, True]
    assert (results[0].stdout, results[0].stderr) == (b"out\n", b"err\n")
    assert results[1].stdout == b"IT'S  TWO  SPACES 42\n"
    assert results[2].text() == "héllo ✓ 東京\n"
    # The submitting directory, as for a map's tasks.
    assert results[3].text().strip() == os.getcwd()
    assert results[1].describe() == "exit status 3"


def test_cwd_and_a_plain_map_of_shell(pool, tmp_path):
    (tmp_path / "here").mkdir()
    (tmp_path / "here" / "marker").write_text("x")
    (result,) = pool.run_commands(["ls"], cwd=tmp_path / "here")
    assert result.stdout == b"marker\n"
    call = functools.partial(pypoolparty.shell, cwd=str(tmp_path / "here"))
    assert [r.stdout for r in pool.map(call, ["cat marker", "exit 1"])] == [b"x", b""]


def test_a_timeout_kills_the_whole_process_group_and_says_so(tmp_path):
    pid_file = tmp_path / "pid"
    result = pypoolparty.shell(
        f"sleep 1000 & echo $! > {pid_file}; echo started; wait", timeout=0.5
    )
    assert result.timed_out and not result.ok
    assert result.stdout == b"started\n"
    assert result.describe() == "timed out after 0.5 s"
    # The background grandchild went with the group: no command outlives its task.
    wait_for(lambda: not alive(int(pid_file.read_text())), timeout=10)
    with pytest.raises(subprocess.TimeoutExpired):
        result.check_returncode()


def test_check_raises_the_first_failure_with_its_task(pool):
    with pytest.raises(subprocess.CalledProcessError) as raised:
        pool.run_commands(["true", "echo no >&2; exit 4"], check=True)
    assert raised.value.returncode == 4
    assert raised.value.stderr == b"no\n"
    assert "Task 1 failed" in str(raised.value.__cause__)


def test_a_command_killed_by_a_signal_says_which():
    result = pypoolparty.shell("kill -SEGV $$")
    assert result.returncode == -11
    assert result.describe() == "killed by SIGSEGV"


def test_bad_input_is_refused_before_anything_runs(pool, tmp_path):
    with pytest.raises(TypeError, match=r"command 1 must be a str, not list"):
        pool.run_commands(["true", ["ls", "-l"]])
    with pytest.raises(ValueError, match="timeout must be a number of seconds > 0"):
        pool.run_commands(["true"], timeout=0)
    assert not (tmp_path / "work").exists() or not [
        n for n in os.listdir(tmp_path / "work") if n.startswith("map-")
    ]


def test_terminating_the_pool_kills_a_running_command(tmp_path):
    pid_file = tmp_path / "pid"
    pool = pypoolparty.local.Pool(1, work_dir=str(tmp_path / "work"), polling_interval=0.05)
    pool.map_async(pypoolparty.shell, [f"echo $$ > {pid_file}; sleep 1000"])
    pid = wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=60)
    pool.terminate()
    # The command has a process group of its own; the cancel reaches it all the same.
    wait_for(lambda: not alive(int(pid)), timeout=10)


def test_a_command_that_cannot_start_is_a_failed_command_that_says_why(tmp_path):
    missing = tmp_path / "not-there"
    result = pypoolparty.shell("true", cwd=missing)
    assert result.returncode == 127 and not result.ok
    assert f"cannot run /bin/bash in {missing}" in result.text("stderr")
    with pytest.raises(subprocess.CalledProcessError):
        pypoolparty.shell("true", cwd=missing, check=True)


@pytest.fixture
def running_task(tmp_path, monkeypatch):
    """As the worker sets it around task 3 of a map whose session directory is tmp_path."""
    import types

    module = types.ModuleType(shell_commands.RUNNING_TASK_MODULE)
    module.session_dir, module.itask = str(tmp_path), 3
    monkeypatch.setitem(sys.modules, shell_commands.RUNNING_TASK_MODULE, module)
    return tmp_path


def test_a_running_commands_output_is_in_a_file_of_its_task_until_it_ends(running_task):
    live = shell_commands.running_output_path(str(running_task), 3, "stdout")
    result = pypoolparty.shell(f"echo so far; cat {shlex.quote(live)} >&2")
    assert (result.stdout, result.stderr) == (b"so far\n", b"so far\n")
    assert oct(os.stat(os.path.dirname(live)).st_mode & 0o777) == "0o700"
    assert not os.path.exists(live)  # in the result now
    assert (result.host, result.pid) == (socket.gethostname(), os.getpid())
    assert result.start <= result.end


def test_commands_a_task_runs_at_once_keep_their_outputs_apart(running_task):
    commands = [f"for i in 1 2 3; do echo {name}; done" for name in ("a", "b", "c", "d")]
    with concurrent.futures.ThreadPoolExecutor(4) as threads:
        results = list(threads.map(pypoolparty.shell, commands))
    assert [r.stdout for r in results] == [f"{n}\n{n}\n{n}\n".encode() for n in "abcd"]
