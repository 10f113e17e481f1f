"""What a stopped job got done: the records and checkpoints the session compares.

A time limit that stops a job which finished no task and saved no checkpoint
ends the map (``pypoolparty.stops``); these tests build the session
directory's ``partial/`` and ``checkpoints/`` as the worker and
``pypoolparty.checkpoint`` leave them.
"""

from __future__ import annotations

import os
import pickle

from pypoolparty import checkpoint, stops, task_records

BOUNDS = [(0, 3), (3, 6), (6, 9)]


def record(session_dir, ichunk, run, *itasks):
    directory = task_records.directory(str(session_dir))
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, f"{ichunk}.{run}.records"), "ab") as file:
        for itask in itasks:
            file.write(task_records.encode(itask, pickle.dumps({"itask": itask})))


def save_checkpoint(session_dir, itask, state):
    path = checkpoint.path_of(str(session_dir), itask)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".part", "wb") as file:
        pickle.dump(state, file)
    os.replace(path + ".part", path)  # as a save does: a new file each time


def test_a_fresh_session_has_got_nothing_done(tmp_path):
    progress = stops.progress_of(str(tmp_path), BOUNDS, [0, 1, 2])
    assert progress == dict.fromkeys([0, 1, 2], stops.NO_PROGRESS)


def test_a_finished_task_is_progress_of_its_chunk_only(tmp_path):
    before = stops.progress_of(str(tmp_path), BOUNDS, [0, 1])
    record(tmp_path, 1, "vm.7.ab", 3)
    after = stops.progress_of(str(tmp_path), BOUNDS, [0, 1])
    assert after[1].finished_tasks == {3} and after[1].advanced_since(before[1])
    assert not after[0].advanced_since(before[0])
    assert stops.first_unfinished_task(after[1], BOUNDS[1]) == 4


def test_a_new_checkpoint_is_progress_and_an_unchanged_one_is_not(tmp_path):
    save_checkpoint(tmp_path, 7, (1, 1.0))
    before = stops.progress_of(str(tmp_path), BOUNDS, [2])
    assert not stops.progress_of(str(tmp_path), BOUNDS, [2])[2].advanced_since(before[2])
    save_checkpoint(tmp_path, 7, (2, 5.0))
    after = stops.progress_of(str(tmp_path), BOUNDS, [2])
    assert after[2].advanced_since(before[2])
    # A save being written, under its temporary name, is no checkpoint yet.
    assert set(checkpoint.saved_versions(str(tmp_path))) == {7}


def test_a_job_not_submitted_by_this_call_counts_as_having_got_something_done(tmp_path):
    # Its progress at submission is unknown (an adopted job): never judged.
    assert stops.NO_PROGRESS.advanced_since(None)


def test_the_message_names_the_task_the_limit_how_long_it_ran_and_no_plain_retry():
    outcome = {"start": 100.0, "end": 142.0}
    message = stops.time_limit_message(
        4,
        1,
        "17_1",
        "time='1' (the pool's 'time' option)",
        "SIGUSR1; SLURM's warning before the time limit",
        stops.ran_for(outcome, None),
        3,
    )
    assert message.startswith("task 4 (chunk 1, job 17_1) needs more time than")
    assert "time='1'" in message and "ran for 42 s" in message and "SIGUSR1" in message
    assert "Raise that limit" in message and "keeping the 3 task(s)" in message
    assert stops.ran_for(None, 9.2).startswith("for about 9 s")
