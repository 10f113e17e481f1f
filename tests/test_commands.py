import os
import sys
import time

import pytest

from pypoolparty import commands

FAST = commands.RetryPolicy(timeout=5, max_outage=2, first_backoff=0.01, max_backoff=0.05)


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_run_returns_output_and_exit_code():
    completed = commands.run(python("import sys; print('out'); sys.exit(3)"), timeout=10)
    assert completed.returncode == 3
    assert completed.stdout == "out\n"


def test_run_kills_the_whole_process_group_on_timeout(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    code = (
        "import subprocess, sys, time;"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid));"
        "time.sleep(60)"
    )
    with pytest.raises(commands.CommandTimedOut):
        commands.run(python(code), timeout=1)
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(grandchild):
        time.sleep(0.05)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_missing_executable_is_reported_as_such():
    with pytest.raises(commands.CommandNotFound, match="no-such-sbatch"):
        commands.run(["/nonexistent/no-such-sbatch"], timeout=5)


def test_call_retries_transient_failures_until_success(tmp_path):
    counter = tmp_path / "calls"
    code = (
        f"import os, sys; p = {str(counter)!r};"
        "n = int(open(p).read()) if os.path.exists(p) else 0;"
        "open(p, 'w').write(str(n + 1));"
        "sys.exit(0 if n >= 2 else 1)"
    )
    completed = commands.call(python(code), commands.expect_success, FAST, sleep=lambda s: None)
    assert completed.returncode == 0
    assert counter.read_text() == "3"


def test_call_stops_at_once_on_a_permanent_error():
    calls = []

    def parse(completed):
        calls.append(completed)
        raise commands.PermanentError("rejected: Invalid partition name specified")

    with pytest.raises(commands.PermanentError, match="Invalid partition"):
        commands.call(python("pass"), parse, FAST)
    assert len(calls) == 1


def test_call_gives_up_after_the_outage_budget_naming_the_last_error():
    policy = commands.RetryPolicy(timeout=5, max_outage=0.3, first_backoff=0.05, max_backoff=0.05)
    with pytest.raises(commands.CommandFailed) as info:
        commands.call(
            python("import sys; sys.stderr.write('Socket timed out'); sys.exit(1)"),
            commands.expect_success,
            policy,
        )
    assert "Socket timed out" in str(info.value)
    assert info.value.attempts >= 2


def test_call_treats_a_hanging_command_as_transient():
    policy = commands.RetryPolicy(timeout=0.5, max_outage=0.1, first_backoff=0.01)
    with pytest.raises(commands.CommandFailed, match="did not answer"):
        commands.call(python("import time; time.sleep(30)"), commands.expect_success, policy)


def test_before_retry_can_return_what_a_timed_out_call_did():
    policy = commands.RetryPolicy(timeout=0.5, max_outage=30, first_backoff=0.01)
    found = commands.call(
        python("import time; time.sleep(30)"),
        commands.expect_success,
        policy,
        before_retry=lambda: "job 42 was submitted after all",
    )
    assert found == "job 42 was submitted after all"


def test_unparsable_output_is_retried():
    outputs = iter(["garbage", "17"])

    def parse(completed):
        return int(next(outputs))

    assert commands.call(python("pass"), parse, FAST, sleep=lambda s: None) == 17
    assert os.path.exists(sys.executable)


def test_ask_returns_the_answer_of_the_parser():
    assert commands.ask(python("print(17)"), lambda c: int(c.stdout), timeout=10) == 17


@pytest.mark.parametrize("error", [commands.TransientError, commands.PermanentError, ValueError])
def test_ask_gives_none_for_output_the_parser_rejects(error):
    def parse(completed):
        raise error("cannot read this")

    assert commands.ask(python("pass"), parse, timeout=10) is None


def test_ask_gives_none_for_a_missing_or_hanging_command():
    assert commands.ask(["/nonexistent/sinfo"], lambda c: 1, timeout=10) is None
    hanging = python("import time; time.sleep(30)")
    assert commands.ask(hanging, lambda c: 1, timeout=0.5) is None


def test_ask_lets_a_bug_of_the_parser_through():
    with pytest.raises(KeyError):
        commands.ask(python("pass"), lambda c: {}["missing"], timeout=10)


def test_what_a_scheduler_command_creates_is_private(tmp_path):
    # sbatch hands its umask to the job, which makes its output files with it
    # (issue 17, item 15: every file of the session directory is 0600).
    path = tmp_path / "made-by-the-command"
    completed = commands.run(["touch", str(path)], timeout=30)
    assert completed.returncode == 0
    assert os.stat(path).st_mode & 0o777 == 0o600
