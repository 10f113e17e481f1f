"""The pure readers of the local scheduler: /proc command lines, environments, exit codes."""

from __future__ import annotations

import signal

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


def test_exit_codes_and_signals_in_words():
    assert parsing.describe_exit(0) == "exit code 0"
    assert parsing.describe_exit(3) == "exit code 3"
    assert parsing.describe_exit(-signal.SIGKILL) == "killed by signal SIGKILL"
    assert parsing.describe_exit(-200) == "killed by signal 200"
