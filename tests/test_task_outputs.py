"""pypoolparty.output_dir(): files a task writes come back per task, finished apart from failed.

Without a shared file system they travel back with the job's outcome: see
``tests/htcondor/test_htcondor_real_transfer.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys

import cloudpickle
import pytest

import pypoolparty


def write_output(x):
    path = os.path.join(pypoolparty.output_dir(), f"out-{x}.txt")
    with open(path, "w") as file:
        file.write(f"output of task {x}")
    if x == 2:
        raise ValueError("task 2 fails after writing")
    return x


def outputs_of(directory):
    found = {}
    for root, _dirs, names in os.walk(directory):
        for name in names:
            with open(os.path.join(root, name)) as file:
                found[os.path.relpath(os.path.join(root, name), directory)] = file.read()
    return found


def test_outputs_are_kept_under_the_work_dir_when_the_session_directory_goes(tmp_path, capfd):
    work = tmp_path / "work"
    pool = pypoolparty.local.Pool(work_dir=work, polling_interval=0.05)
    assert pool.map(write_output, [0, 1, 3], chunksize=2) == [0, 1, 3]
    (kept,) = os.listdir(work / "outputs")
    assert not any(name.startswith("map-") for name in os.listdir(work))  # removed
    assert outputs_of(work / "outputs" / kept) == {
        f"done/{i}/out-{x}.txt": f"output of task {x}" for i, x in enumerate([0, 1, 3])
    }
    assert f"output files are in {work / 'outputs' / kept}" in capfd.readouterr().err


def test_the_outputs_of_a_failed_task_are_apart_from_the_finished_ones(tmp_path):
    work = tmp_path / "work"
    pool = pypoolparty.local.Pool(work_dir=work, polling_interval=0.05)
    with pytest.raises(ValueError, match="task 2 fails"):
        pool.map(write_output, [0, 1, 2, 3], chunksize=2)
    (session,) = [name for name in os.listdir(work) if name.startswith("map-")]
    assert outputs_of(work / session / "outputs") == {
        "done/0/out-0.txt": "output of task 0",
        "done/1/out-1.txt": "output of task 1",
        "failed/2/out-2.txt": "output of task 2",
        "done/3/out-3.txt": "output of task 3",
    }


def test_outside_a_map_a_task_gets_a_directory_of_its_own():
    first, second = pypoolparty.output_dir(), pypoolparty.output_dir()
    assert os.path.isdir(first) and first != second
    os.rmdir(first)
    os.rmdir(second)


def test_a_task_that_calls_output_dir_needs_no_pypoolparty_where_it_runs(tmp_path):
    (tmp_path / "output_dir.pickle").write_bytes(cloudpickle.dumps(pypoolparty.output_dir))
    script = (
        "import os, pickle, sys\n"
        "sys.modules['pypoolparty'] = None  # importing it would fail\n"
        "output_dir = pickle.load(open(sys.argv[1], 'rb'))\n"
        "path = output_dir()\n"
        "print(os.path.isdir(path))\n"
        "os.rmdir(path)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "output_dir.pickle")],
        capture_output=True,
        text=True,
    )
    assert completed.stdout.strip() == "True", completed.stderr


def write_output_and_checkpoint_in_a_forked_child(x):
    """The task's own process never calls either: only a child it forks does."""
    import multiprocessing

    def child():
        pypoolparty.checkpoint.save({"step": x})
        with open(os.path.join(pypoolparty.output_dir(), "from-child.txt"), "w") as file:
            file.write(f"child of task {x}")

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join()
    if x == 1:
        raise ValueError("task 1 fails after its child wrote")
    return x


def test_what_a_tasks_forked_child_leaves_is_settled_when_the_chunk_ends(tmp_path):
    # The worker tidies after each task only where the task's own process
    # asked for a checkpoint or an output directory; a child's requests it
    # cannot see are found when the chunk ends.
    work = tmp_path / "work"
    pool = pypoolparty.local.Pool(work_dir=work, polling_interval=0.05)
    with pytest.raises(ValueError, match="task 1 fails"):
        pool.map(write_output_and_checkpoint_in_a_forked_child, [0, 1, 2], chunksize=3)
    (session,) = [name for name in os.listdir(work) if name.startswith("map-")]
    assert outputs_of(work / session / "outputs") == {
        "done/0/from-child.txt": "child of task 0",
        "failed/1/from-child.txt": "child of task 1",
        "done/2/from-child.txt": "child of task 2",
    }
    assert os.listdir(work / session / "checkpoints") == []


@pytest.mark.parametrize("verbose", [False, True])
def test_the_line_naming_where_the_outputs_are_is_printed_once_verbose_or_not(
    tmp_path, capfd, verbose
):
    work = tmp_path / "work"
    pool = pypoolparty.local.Pool(work_dir=work, polling_interval=0.05, verbose=verbose)
    assert pool.map(write_output, [0, 1], chunksize=1) == [0, 1]
    (kept,) = os.listdir(work / "outputs")
    err = capfd.readouterr().err
    assert err.count(f"the tasks' output files are in {work / 'outputs' / kept}\n") == 1


def write_labelled_output(task):
    """Writes the run's label (read from ``label_path``) and fails in the run labelled "run 1"."""
    x, label_path = task
    with open(label_path) as file:
        label = file.read()
    with open(os.path.join(pypoolparty.output_dir(), "out.txt"), "w") as file:
        file.write(f"{label}: task {x}")
    if x == 2 and label == "run 1":
        raise ValueError("task 2 fails in run 1")
    return x


def test_each_finished_run_of_a_map_keeps_its_outputs_apart_without_earlier_failed_runs(
    tmp_path, capfd
):
    work = tmp_path / "work"
    label = tmp_path / "label"
    tasks = [(x, str(label)) for x in range(4)]
    pool = pypoolparty.local.Pool(work_dir=work, polling_interval=0.05)
    label.write_text("run 1")
    with pytest.raises(ValueError, match="task 2 fails in run 1"):
        pool.map(write_labelled_output, tasks, chunksize=2)
    label.write_text("run 2")  # the fix: this call continues the map
    assert pool.map(write_labelled_output, tasks, chunksize=2) == [0, 1, 2, 3]
    (first,) = os.listdir(work / "outputs")
    assert f"output files are in {work / 'outputs' / first}\n" in capfd.readouterr().err
    label.write_text("run 3")  # the same map again, afresh
    assert pool.map(write_labelled_output, tasks, chunksize=2) == [0, 1, 2, 3]
    second = f"{first}-2"
    assert f"output files are in {work / 'outputs' / second}\n" in capfd.readouterr().err
    assert sorted(os.listdir(work / "outputs")) == [first, second]
    # The failed run of task 2 in run 1 is not kept beside its run 2.
    assert outputs_of(work / "outputs" / first) == {
        "done/0/out.txt": "run 1: task 0",
        "done/1/out.txt": "run 1: task 1",
        "done/2/out.txt": "run 2: task 2",
        "done/3/out.txt": "run 1: task 3",
    }
    assert outputs_of(work / "outputs" / second) == {
        f"done/{x}/out.txt": f"run 3: task {x}" for x in range(4)
    }
    assert os.stat(work / "outputs" / second).st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    "session_name, run, kept",
    [
        ("map-0123456789012345", 1, "map-0123456789012345"),  # an all-digit fingerprint
        ("map-0123456789012345-3", 1, "map-0123456789012345"),  # a numbered session
        ("map-0123456789abcdef", 2, "map-0123456789abcdef-2"),
    ],
)
def test_the_kept_outputs_are_named_after_the_map_and_the_run(session_name, run, kept, tmp_path):
    from pypoolparty.task_outputs import kept_path

    assert kept_path(str(tmp_path / session_name), run) == str(tmp_path / "outputs" / kept)
