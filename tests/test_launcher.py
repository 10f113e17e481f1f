"""The job's launcher, run by bash as a scheduler runs it (pypoolparty/launcher.py).

Full maps on every pool: tests/test_job_environment.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from waiting import wait_for

from pypoolparty import launcher, work_dir

PRINT_ENVIRONMENT = "import json, os, sys; print(json.dumps(dict(os.environ)))"


def session(tmp_path, variables=None, setup=()) -> work_dir.SessionDir:
    directory = work_dir.SessionDir(str(tmp_path / "session"))
    directory.create()
    launcher.write_files(directory, variables or {}, setup)
    return directory


def launch(directory, *options, env=None, **kwargs) -> subprocess.CompletedProcess:
    """The job's command with a stand-in worker that prints its environment as JSON."""
    stand_in = os.path.join(directory.path, "stand_in.py")
    with open(stand_in, "w") as file:
        file.write(PRINT_ENVIRONMENT)
    command = launcher.job_command(
        launcher.launcher_path(directory), [sys.executable, stand_in, directory.path, *options]
    )
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
        timeout=60,
        **kwargs,
    )


def test_the_worker_starts_with_the_exported_values_exactly(tmp_path):
    odd = {
        "PPP_QUOTES": 'it\'s "quoted" \\ and $(not run) `nor this`',
        "PPP_LINES": "two\nlines\n",
        "PPP_EMPTY": "",
        "PPP_SPACES": "  a  b  ",
    }
    directory = session(tmp_path, odd)
    completed = launch(directory, "--ichunk", "0")
    assert completed.returncode == 0, completed.stderr
    seen = json.loads(completed.stdout)
    assert {name: seen.get(name) for name in odd} == odd


def test_the_jobs_own_variables_are_never_overwritten(tmp_path):
    exported = {"SLURM_JOB_ID": "from the submit host", "TMPDIR": "/submit/tmp", "MINE": "1"}
    directory = session(tmp_path, exported)
    completed = launch(directory, "--ichunk", "0", env={"SLURM_JOB_ID": "77", "TMPDIR": "/node"})
    seen = json.loads(completed.stdout)
    assert (seen["SLURM_JOB_ID"], seen["TMPDIR"], seen["MINE"]) == ("77", "/node", "1")


def test_an_exported_bash_function_can_be_called_by_setup_lines(tmp_path):
    """How Lmod's ``module`` reaches a job: as BASH_FUNC_module%%."""
    function = {"BASH_FUNC_module%%": '() {  export PPP_LOADED="$1"\n}'}
    directory = session(tmp_path, function, setup=["module gcc/12"])
    completed = launch(directory, "--ichunk", "0")
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["PPP_LOADED"] == "gcc/12"


def test_variables_bash_cannot_set_are_named_and_left_out():
    text, left_out = launcher.environment_script(
        {"GOOD": "1", "not.a.name": "2", "SHELLOPTS": "braceexpand", "UID": "0"}
    )
    assert sorted(left_out) == ["SHELLOPTS", "UID", "not.a.name"]
    assert "export GOOD=1" in text and "not.a.name" not in text


@pytest.mark.parametrize(
    "options, environ, ichunk",
    [
        (["--ichunk", "4"], {}, 4),
        (["--ichunk-from-env", "SLURM_ARRAY_TASK_ID"], {"SLURM_ARRAY_TASK_ID": "6"}, 6),
        (["--ichunk-from-env", "SGE_TASK_ID", "--chunk-list", "LIST"], {"SGE_TASK_ID": "2"}, 9),
    ],
)
def test_a_failed_setup_line_is_recorded_for_the_jobs_chunk(tmp_path, options, environ, ichunk):
    directory = session(tmp_path, setup=["true", "echo broken >&2; exit 5", "true"])
    chunk_list = tmp_path / "chunks"
    chunk_list.write_text("3\n9\n")
    options = [str(chunk_list) if o == "LIST" else o for o in options]
    completed = launch(directory, *options, env=environ)
    assert completed.returncode == launcher.SETUP_FAILED_EXIT_STATUS
    assert completed.stdout == ""  # the worker did not start
    assert "broken" in completed.stderr and "setup line 2 of 3" in completed.stderr
    failure = launcher.read_setup_failure(directory, ichunk)
    assert (failure.line, failure.status) == (2, 5)
    assert os.listdir(directory.outcomes_dir) == [f"{ichunk}.setup-failed"]


@pytest.mark.parametrize(
    "line",
    [
        "[ -f /nonexistent/site.sh ] && source /nonexistent/site.sh",
        "false && true",
        "true && false",
        "false || false",
        "false || true",
        "! true",
        "if false; then :; fi",
        "(exit 3)",
        "false; true",
    ],
)
def test_a_setup_line_ends_the_job_exactly_when_it_would_end_a_set_e_script(tmp_path, line):
    script = subprocess.run(
        [launcher.LAUNCHER_SHELL, "-c", f"set -e\n{line}\necho reached"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    directory = session(tmp_path, setup=[line])
    completed = launch(directory, "--ichunk", "1")
    worker_started = completed.returncode == 0 and completed.stdout.startswith("{")
    assert worker_started == ("reached" in script.stdout)
    failure = launcher.read_setup_failure(directory, 1)
    if worker_started:
        assert failure is None
    else:  # named, with the status the script ended with
        assert (failure.line, failure.status) == (1, script.returncode)


def test_a_job_stopped_during_setup_records_no_setup_failure(tmp_path):
    started = tmp_path / "started"
    directory = session(tmp_path, setup=[f"touch '{started}'", "sleep 600"])
    job = subprocess.Popen(
        launcher.job_command(
            launcher.launcher_path(directory),
            [sys.executable, os.devnull, directory.path, "--ichunk", "0"],
        ),
        start_new_session=True,
    )
    try:
        wait_for(started.exists, timeout=60)
        # As schedulers stop a job: SIGTERM to all of its processes.
        os.killpg(job.pid, signal.SIGTERM)
        assert job.wait(timeout=60) != 0
    finally:
        job.kill()
    assert launcher.read_setup_failure(directory, 0) is None
    assert os.listdir(directory.outcomes_dir) == []


def launch_in_scratch(directory) -> subprocess.CompletedProcess:
    """As a job without a shared file system starts: in its copy of the
    session directory, with relative paths only."""
    with open(os.path.join(directory.path, "stand_in.py"), "w") as file:
        file.write(PRINT_ENVIRONMENT)
    command = launcher.job_command(
        launcher.LAUNCHER_NAME, [sys.executable, "stand_in.py", ".", "--ichunk", "0"]
    )
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        cwd=directory.path,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )


def test_a_setup_line_that_changes_directory_leaves_the_worker_where_the_job_started(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    directory = session(tmp_path, setup=[f"cd '{elsewhere}'", "export PPP_WAS_IN=$PWD"])
    completed = launch_in_scratch(directory)
    assert completed.returncode == 0, completed.stderr
    seen = json.loads(completed.stdout)
    assert seen["PPP_WAS_IN"] == str(elsewhere)  # the setup lines ran there


def test_a_setup_line_failing_after_a_cd_is_recorded_for_the_jobs_chunk(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    directory = session(tmp_path, setup=[f"cd '{elsewhere}'", "false"])
    completed = launch_in_scratch(directory)
    assert completed.returncode == launcher.SETUP_FAILED_EXIT_STATUS, completed.stderr
    failure = launcher.read_setup_failure(directory, 0)
    assert (failure.line, failure.status) == (2, 1)
    assert not (elsewhere / "outcomes").exists()


def test_setup_failures_of_resubmitted_chunks_are_removed(tmp_path):
    directory = session(tmp_path)
    for ichunk in (1, 2, 3):
        with open(os.path.join(directory.outcomes_dir, f"{ichunk}.setup-failed"), "w") as file:
            file.write("line 1\nstatus 1\nhost node7\n")
    launcher.remove_setup_failures(directory, [1, 3])
    assert os.listdir(directory.outcomes_dir) == ["2.setup-failed"]
    assert launcher.read_setup_failure(directory, 2) == launcher.SetupFailure(1, 1, "node7")


def test_the_session_files_are_private(tmp_path):
    directory = session(tmp_path, {"A": "1"}, ["true"])
    for name in (launcher.LAUNCHER_NAME, launcher.ENVIRONMENT_NAME, launcher.SETUP_NAME):
        assert os.stat(directory.join(name)).st_mode & 0o777 == 0o600


@pytest.mark.parametrize("inside", [True, False])
def test_the_jobs_output_files_in_the_session_directory_become_private(tmp_path, inside):
    # Issue 17, item 15: Grid Engine makes the files of qsub -o/-e 0644,
    # whatever qsub's umask; the launcher makes them private before the
    # setup lines and the worker write to them, and leaves other files alone.
    directory = session(tmp_path)
    where = directory.path if inside else str(tmp_path)
    paths = [os.path.join(where, f"job.{stream}") for stream in ("out", "err")]
    files = []
    for path in paths:
        files.append(open(path, "w"))
        os.chmod(path, 0o644)
    try:
        stand_in = os.path.join(directory.path, "stand_in.py")
        with open(stand_in, "w") as file:
            file.write("print('the worker ran')")
        command = launcher.job_command(
            launcher.launcher_path(directory), [sys.executable, stand_in, directory.path]
        )
        completed = subprocess.run(command, stdout=files[0], stderr=files[1], timeout=60)
    finally:
        for file in files:
            file.close()
    assert completed.returncode == 0
    with open(paths[0]) as file:
        assert file.read() == "the worker ran\n"
    modes = [os.stat(path).st_mode & 0o777 for path in paths]
    assert modes == ([0o600, 0o600] if inside else [0o644, 0o644])
