"""The dummy Grid Engine answers as the real one did (``tests/sge/samples``)."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ElementTree

import pytest
from sge_helpers import DummySge
from waiting import wait_for

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")


def sample(name: str) -> str:
    with open(os.path.join(SAMPLES, name)) as file:
        return file.read()


@pytest.fixture
def dummy(dummy_queues_dir, tmp_path, monkeypatch):
    state_dir = tmp_path / "queue"
    state_dir.mkdir()
    monkeypatch.setenv("PYPOOLPARTY_DUMMY_QUEUE_DIR", str(state_dir))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.sh").write_text("sleep 30\n")
    sge = DummySge(dummy_queues_dir, str(state_dir))
    yield sge
    sge.clear()


@pytest.mark.parametrize(
    "arguments, name",
    [
        (["-q", "nosuch.q", "-N", "badq"], "qsub_unknown_queue.txt"),
        (["-l", "h_vmemx=2G", "-N", "badres"], "qsub_unknown_resource.txt"),
        (["-pe", "nosuchpe", "2", "-N", "badpe"], "qsub_unknown_pe.txt"),
    ],
)
def test_refusals_are_worded_as_by_qsub(dummy, arguments, name):
    completed = dummy.run("qsub", *arguments, "job.sh")
    assert completed.returncode == 1
    assert completed.stderr == sample(name)
    assert dummy.jobs() == {}


def test_submissions_are_acknowledged_as_by_qsub(dummy):
    terse = dummy.run("qsub", "-terse", "-cwd", "-t", "1-5", "-N", "arr", "job.sh").stdout
    plain = dummy.run("qsub", "-cwd", "-t", "1-3", "-N", "arr2", "job.sh").stdout
    assert re.fullmatch(r"\d+\.1-5:1\n", terse)
    assert re.sub(r"\d+\.", "N.", sample("qsub_array.txt")) == re.sub(r"\d+\.", "N.", plain)


def tag_layout(xml_text: str) -> set:
    """Per job_list kind: the child tags, in order."""
    root = ElementTree.fromstring(xml_text)
    return {
        (job_list.get("state"), tuple(child.tag for child in job_list))
        for job_list in root.iter("job_list")
    }


def test_qstat_xml_has_the_layout_of_the_real_one(dummy):
    dummy.set_faults(slots=1)
    dummy.run("qsub", "-cwd", "-t", "1-6", "-N", "arrpend", "job.sh")
    dummy.run("qsub", "-cwd", "-h", "-t", "1-2", "-N", "held", "job.sh")
    wait_for(lambda: "r" in dummy.task_states(), 10)
    text = dummy.run("qstat", "-xml").stdout
    real = sample("qstat_xml_array_eqw_held_suspended.xml")
    assert text.splitlines()[:2] == real.splitlines()[:2]
    assert tag_layout(text) == tag_layout(real)
    states = {
        (e.find("state").text, e.find("tasks").text)
        for e in ElementTree.fromstring(text).iter("job_list")
    }
    assert states == {("r", "1"), ("qw", "2-6:1"), ("hqw", "1,2")}


def test_qdel_of_an_unknown_job_is_denied_as_by_qdel(dummy):
    completed = dummy.run("qdel", "99999")
    assert completed.returncode == 1
    assert completed.stdout == sample("qdel_unknown.txt")
