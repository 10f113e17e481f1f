"""The pure readers of the local scheduler: /proc command lines, environments, exit codes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from pypoolparty.local import parsing


def test_the_chunk_of_a_worker_is_read_from_its_command_line():
    cmdline = b"/usr/bin/python3\0/s/worker.py\0/s\0--ichunk\x0012\0"
    assert parsing.worker_chunk(cmdline) == 12


def test_processes_that_are_not_workers_have_no_chunk():
    assert parsing.worker_chunk(b"bash\0-c\0sleep 1\0") is None
    assert parsing.worker_chunk(b"python\0worker.py\0--ichunk\0") is None
    assert parsing.worker_chunk(b"python\0worker.py\0--ichunk\0$(ichunk)\0") is None


def test_the_job_name_is_read_from_the_environment():
    environ = b"PATH=/bin\0PYPOOLPARTY_JOB_NAME=ppp-1a2b3c4d-2\0HOME=/h\0"
    assert parsing.job_name(environ) == "ppp-1a2b3c4d-2"
    assert parsing.job_name(b"PATH=/bin\0") is None


def test_the_job_name_of_a_running_process_is_found_in_proc():
    environment = {parsing.JOB_NAME_VARIABLE: "ppp-test-1"}
    code = "import sys; print('started', flush=True); sys.stdin.read()"
    args = [sys.executable, "-c", code, "--ichunk", "3"]
    with subprocess.Popen(
        args, env=environment, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as process:
        # Until the interpreter runs, /proc shows the command line of the fork.
        assert process.stdout.readline() == b"started\n"
        with open(f"/proc/{process.pid}/cmdline", "rb") as file:
            assert parsing.worker_chunk(file.read()) == 3
        with open(f"/proc/{process.pid}/environ", "rb") as file:
            assert parsing.job_name(file.read()) == "ppp-test-1"
        process.communicate(b"")


def test_exit_codes_and_signals_in_words():
    assert parsing.describe_exit(0) == "exit code 0"
    assert parsing.describe_exit(3) == "exit code 3"
    assert parsing.describe_exit(-signal.SIGKILL) == "killed by signal SIGKILL"
    assert parsing.describe_exit(-200) == "killed by signal 200"


STAT = (
    b"19818 (cat) R 19770 19771 29022 0 -1 4194304 99 0 0 0 0 0 0 0 20 0 1 0 2211457 "
    b"3133440 394 18446744073709551615 93977330499584 93977330519465 140732074617568 0 0 0"
)
"""A real /proc/<pid>/stat (captured), its process group changed to tell it from its parent."""


def test_the_session_and_process_group_are_read_from_proc_stat():
    assert parsing.session_id(STAT) == 29022
    assert parsing.process_group(STAT) == 19771
    # A command name may hold blanks and parentheses: fields count from its last ')'.
    odd = STAT.replace(b"(cat)", b"(a) (b c)")
    assert (parsing.session_id(odd), parsing.process_group(odd)) == (29022, 19771)
    assert parsing.session_id(b"garbage") is None


def test_a_process_of_our_own_has_our_session_in_proc():
    with open("/proc/self/stat", "rb") as file:
        stat = file.read()
    assert parsing.session_id(stat) == os.getsid(0)
    assert parsing.process_group(stat) == os.getpgid(0)
