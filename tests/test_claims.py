"""Claims on chunks (pypoolparty/claims.py), as the worker makes them and the map reads them."""

from __future__ import annotations

import os

import pytest

from pypoolparty import claims, worker


def worker_claims(session_dir, home, submission="ppp-1a2b3c4d-1", num_chunks=6):
    config = {"claiming_chunks": num_chunks}
    return worker.Claims.of(str(session_dir), config, home, submission)


def test_a_job_takes_its_own_chunk_then_the_lowest_unclaimed(tmp_path):
    first = worker_claims(tmp_path, home=0)
    second = worker_claims(tmp_path, home=1)
    assert first.take(0) and second.take(1)
    assert first.next() == 2
    assert second.next() == 3
    assert first.next() == 4
    assert second.next() == 5
    assert first.next() is None and second.next() is None
    found = claims.read(str(tmp_path))
    assert {ichunk: claim.home for ichunk, claim in found.items()} == {
        0: 0,
        1: 1,
        2: 0,
        3: 1,
        4: 0,
        5: 1,
    }
    assert {claim.job_key for claim in found.values()} == {
        ("ppp-1a2b3c4d-1", 0),
        ("ppp-1a2b3c4d-1", 1),
    }


def test_a_job_whose_chunk_another_claimed_runs_others_or_nothing(tmp_path):
    early = worker_claims(tmp_path, home=0, num_chunks=2)
    assert early.take(0) and early.next() == 1
    late = worker_claims(tmp_path, home=1, num_chunks=2)
    assert not late.take(1)
    assert late.next() is None


def test_a_requeued_job_continues_its_unfinished_claims_but_not_its_finished_ones(tmp_path):
    run = worker_claims(tmp_path, home=0, num_chunks=3)
    assert run.take(0) and run.next() == 1
    run.mark_done(0)
    # The scheduler requeues the job: a new process of the same job.
    again = worker_claims(tmp_path, home=0, num_chunks=3)
    assert not again.take(0)  # done
    assert again.take(1)  # claimed by its earlier run, unfinished
    # Another job of the same map (another submission) does not get them.
    other = worker_claims(tmp_path, home=0, submission="ppp-1a2b3c4d-2", num_chunks=3)
    assert not other.take(1)


def test_processes_of_one_job_run_never_share_a_claim(tmp_path):
    parent = worker_claims(tmp_path, home=0, num_chunks=3)
    assert parent.take(0)
    # A process forked from it: the same job, the same run.
    sibling = worker_claims(tmp_path, home=0, num_chunks=3)
    sibling.run = parent.run
    assert not sibling.take(0)
    assert sibling.next() == 1


def test_a_claim_taken_back_is_claimed_again_by_a_job_looking_for_work(tmp_path):
    first = worker_claims(tmp_path, home=0, num_chunks=4)
    assert first.take(0)
    assert [first.next(), first.next(), first.next(), first.next()] == [1, 2, 3, None]
    claims.release(str(tmp_path), [2])  # the job died in chunk 2; the map continues
    later = worker_claims(tmp_path, home=3, submission="ppp-1a2b3c4d-2", num_chunks=4)
    assert later.next() == 2


def test_the_map_takes_back_a_claim_and_withdraws_a_chunk_no_job_claimed(tmp_path):
    job = worker_claims(tmp_path, home=0, num_chunks=3)
    assert job.take(0)
    claims.release(str(tmp_path), [0])
    assert worker_claims(tmp_path, home=0, submission="ppp-1a2b3c4d-2").take(0)
    assert claims.withdraw(str(tmp_path), 2, call="call-1")
    assert claims.withdraw(str(tmp_path), 2, call="call-1")  # again: still this call's
    assert not claims.withdraw(str(tmp_path), 2, call="call-2")
    assert not claims.withdraw(str(tmp_path), 0, call="call-1")  # a job has it
    assert job.next() == 1  # the withdrawn chunk is nobody's to run
    assert job.next() is None
    assert claims.read(str(tmp_path))[2].state == claims.WITHDRAWN


def test_claims_are_links_in_a_private_directory(tmp_path):
    assert worker_claims(tmp_path, home=0).take(0)
    directory = os.path.join(str(tmp_path), claims.DIRECTORY)
    assert os.stat(directory).st_mode & 0o777 == 0o700
    assert os.path.islink(os.path.join(directory, "0"))


@pytest.mark.parametrize("text", ["", "running", "running:x:run:sub", "finished:1:run:sub"])
def test_a_link_that_says_no_claim_is_none(text):
    assert claims.parse(text) is None
