"""The submit file the adapter writes."""

from __future__ import annotations

import pytest

from dummy_queues import DummyHTCondor
from pypoolparty.htcondor import submitfile
from pypoolparty.htcondor.options import ClusterOptions, validate_memory
from pypoolparty.scheduler import Submission, WorkerCall

dummy_submit_file = DummyHTCondor.module("submit_file")


@pytest.mark.parametrize(
    "arguments",
    [
        ["/data/worker.py", "--ichunk", "$(ichunk)"],
        ["/work dir/with space", "it's", 'say "hi"', "''", "tab\there"],
    ],
)
def test_arguments_survive_the_new_quoting_syntax(arguments):
    assert dummy_submit_file.split_arguments(submitfile.quote_arguments(arguments)) == arguments


def test_a_newline_cannot_be_an_argument():
    with pytest.raises(ValueError, match="newline"):
        submitfile.quote_arguments(["a\nqueue 1000"])


def render(**options):
    worker = WorkerCall("/usr/bin/python3", "/w/worker.py", "/w")
    submission = Submission([4, 2, 9], "ppp-abc-1", worker, "/w/scheduler/ppp-abc-1", 3)
    return submitfile.render(submission, ClusterOptions(**options))


def test_one_cluster_with_one_proc_per_chunk_in_order():
    description = dummy_submit_file.parse(render())
    assert description["queue_var"] == "ichunk"
    assert description["items"] == ["4", "2", "9"]
    commands = description["commands"]
    assert commands["executable"] == "/usr/bin/python3"
    assert commands["getenv"] == "False"
    assert commands["max_materialize"] == "3"
    assert commands["log"] == "/w/scheduler/ppp-abc-1/events.log"
    assert description["attributes"]["PypoolpartyJobName"] == '"ppp-abc-1"'


def test_directives_come_last_before_queue():
    lines = render(submit_directives={"requirements": 'Arch == "X86_64"'}).splitlines()
    assert lines[-2] == 'requirements = Arch == "X86_64"'
    assert lines[-1] == "queue ichunk in (4 2 9)"


@pytest.mark.parametrize("value", [512, "512", "512MB", "2 GB", "1.5G", "100k", "3TB"])
def test_memory_amounts_that_condor_understands(value):
    assert validate_memory("request_memory", value) == str(value).strip()


@pytest.mark.parametrize("value", ["lots", "", "2 GB please", 0, -5, True, 1.5, "MB", "2GiB"])
def test_memory_amounts_condor_would_accept_and_never_run_or_refuse(value):
    # condor_submit 23.9.6 answers "2GiB" with "Parse error in expression".
    with pytest.raises(ValueError, match="request_memory"):
        validate_memory("request_memory", value)
