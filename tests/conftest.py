"""Fixtures shared by all tests: the dummy schedulers of ``dummy_queues/``."""

from __future__ import annotations

import pytest

from dummy_queues import QUEUE_DIR_VARIABLE, DummyHTCondor, DummySge, DummySlurm, dummy_of


@pytest.fixture
def dummy_queue(tmp_path, monkeypatch):
    """Make a dummy scheduler: ``dummy_queue("slurm")``, ``"sge"`` or ``"htcondor"``.

    A pool kind names the dummy its pools run on: ``dummy_queue("slurm_array")``
    is the dummy SLURM, ``dummy_queue("local")`` is None.

    Its state lives in the test's own directory, which
    ``PYPOOLPARTY_DUMMY_QUEUE_DIR`` names for the whole test (pools started by
    the test find it there). After the test, nothing is left queued.
    """
    state_dir = tmp_path / "dummy-queue"
    state_dir.mkdir()
    monkeypatch.setenv(QUEUE_DIR_VARIABLE, str(state_dir))
    made = []

    def make(kind: str):
        dummy = dummy_of(kind, str(state_dir))
        if dummy is not None:
            made.append(dummy)
        return dummy

    yield make
    for dummy in made:
        dummy.close()


@pytest.fixture
def dummy_slurm(dummy_queue) -> DummySlurm:
    return dummy_queue("slurm")


@pytest.fixture
def dummy_sge(dummy_queue) -> DummySge:
    return dummy_queue("sge")


@pytest.fixture
def dummy_htcondor(dummy_queue) -> DummyHTCondor:
    return dummy_queue("htcondor")
