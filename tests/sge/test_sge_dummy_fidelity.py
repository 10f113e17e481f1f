"""The dummy Grid Engine answers as the real one did (``tests/sge/samples``)."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ElementTree

import pytest
from waiting import wait_for

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")


def sample(name: str) -> str:
    with open(os.path.join(SAMPLES, name)) as file:
        return file.read()


@pytest.fixture(autouse=True)
def job_script(tmp_path, monkeypatch):
    """Every test submits ``job.sh`` from its own directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "job.sh").write_text("sleep 30\n")


@pytest.mark.parametrize(
    "arguments, name",
    [
        (["-q", "nosuch.q", "-N", "badq"], "qsub_unknown_queue.txt"),
        (["-l", "h_vmemx=2G", "-N", "badres"], "qsub_unknown_resource.txt"),
        (["-pe", "nosuchpe", "2", "-N", "badpe"], "qsub_unknown_pe.txt"),
    ],
)
def test_refusals_are_worded_as_by_qsub(dummy_sge, arguments, name):
    completed = dummy_sge.run("qsub", *arguments, "job.sh")
    assert completed.returncode == 1
    assert completed.stderr == sample(name)
    assert dummy_sge.jobs() == {}


def test_submissions_are_acknowledged_as_by_qsub(dummy_sge):
    terse = dummy_sge.run("qsub", "-terse", "-cwd", "-t", "1-5", "-N", "arr", "job.sh").stdout
    plain = dummy_sge.run("qsub", "-cwd", "-t", "1-3", "-N", "arr2", "job.sh").stdout
    assert re.fullmatch(r"\d+\.1-5:1\n", terse)
    assert re.sub(r"\d+\.", "N.", sample("qsub_array.txt")) == re.sub(r"\d+\.", "N.", plain)


def tag_layout(xml_text: str) -> set:
    """Per job_list kind: the child tags, in order."""
    root = ElementTree.fromstring(xml_text)
    return {
        (job_list.get("state"), tuple(child.tag for child in job_list))
        for job_list in root.iter("job_list")
    }


def test_qstat_xml_has_the_layout_of_the_real_one(dummy_sge):
    dummy_sge.set_faults(slots=1)
    dummy_sge.run("qsub", "-cwd", "-t", "1-6", "-N", "arrpend", "job.sh")
    dummy_sge.run("qsub", "-cwd", "-h", "-t", "1-2", "-N", "held", "job.sh")
    wait_for(lambda: "r" in dummy_sge.task_states(), 10)
    text = dummy_sge.run("qstat", "-xml").stdout
    real = sample("qstat_xml_array_eqw_held_suspended.xml")
    assert text.splitlines()[:2] == real.splitlines()[:2]
    assert tag_layout(text) == tag_layout(real)
    states = {
        (e.find("state").text, e.find("tasks").text)
        for e in ElementTree.fromstring(text).iter("job_list")
    }
    assert states == {("r", "1"), ("qw", "2-6:1"), ("hqw", "1,2")}


def test_qdel_of_an_unknown_job_is_denied_as_by_qdel(dummy_sge):
    completed = dummy_sge.run("qdel", "99999")
    assert completed.returncode == 1
    assert completed.stdout == sample("qdel_unknown.txt")
