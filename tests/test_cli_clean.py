"""``pypoolparty clean``: removes the directories of maps that are over, never
one a live process holds, and with ``--dry-run`` only says what would go."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest
from waiting import wait_for

import pypoolparty
from pypoolparty import cleaning, inspection
from pypoolparty.work_dir import LockHolder, SessionDir

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_clean(*args, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO_DIR, env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, "-m", "pypoolparty", "clean", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def fail_on_zero(x):
    return 1 / x


def wait_for_release(x):
    open(os.path.join(os.environ["CLEAN_TEST_MARKS"], str(x)), "w").close()
    wait_for(lambda: os.path.exists(os.environ["CLEAN_TEST_RELEASE"]), timeout=300)
    return x


def session_dirs(work_dir) -> set[str]:
    return {os.path.join(work_dir, n) for n in os.listdir(work_dir) if n.startswith("map-")}


def line_of(output: str, path: str) -> str:
    (line,) = [line for line in output.splitlines() if f"{path} (" in line]
    return line


@pytest.fixture
def maps(tmp_path):
    """A work_dir with a finished map and one whose task raised; their directories."""
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
    assert pool.map(abs, [-1, -2]) == [1, 2]
    (finished,) = session_dirs(work_dir)
    with pytest.raises(ZeroDivisionError):
        pool.map(fail_on_zero, [0, 1])
    (unfinished,) = session_dirs(work_dir) - {finished}
    return work_dir, finished, unfinished


def test_dry_run_lists_what_would_go_and_its_size_and_removes_nothing(maps):
    work_dir, finished, unfinished = maps
    size = cleaning.format_size(cleaning.disk_usage(finished))
    completed = run_clean(work_dir, "--dry-run")
    assert completed.returncode == 0, completed.stderr
    out = completed.stdout
    assert line_of(out, finished).startswith(f"would remove  {finished} (finished; {size}): abs")
    kept = line_of(out, unfinished)
    assert kept.startswith(f"kept          {unfinished} (unfinished: a task raised;")
    assert "--unfinished removes it" in kept
    assert out.splitlines()[-1] == f"would remove 1 map directory, {size}"
    assert session_dirs(work_dir) == {finished, unfinished}


def test_clean_removes_finished_maps_and_unfinished_ones_only_when_asked(maps):
    work_dir, finished, unfinished = maps
    completed = run_clean(work_dir)
    assert completed.returncode == 0, completed.stderr
    assert line_of(completed.stdout, finished).startswith("removed ")
    assert session_dirs(work_dir) == {unfinished}
    completed = run_clean(work_dir, "--unfinished")
    assert completed.returncode == 0, completed.stderr
    assert line_of(completed.stdout, unfinished).startswith("removed ")
    assert os.listdir(work_dir) == []


def test_a_map_a_live_process_runs_is_never_removed(tmp_path, monkeypatch):
    marks = tmp_path / "marks"
    marks.mkdir()
    release = tmp_path / "release"
    monkeypatch.setenv("CLEAN_TEST_MARKS", str(marks))
    monkeypatch.setenv("CLEAN_TEST_RELEASE", str(release))
    work_dir = str(tmp_path / "work")
    pool = pypoolparty.local.Pool(2, work_dir=work_dir, polling_interval=0.02)
    outcome = {}
    thread = threading.Thread(
        target=lambda: outcome.update(results=pool.map(wait_for_release, range(2), chunksize=1))
    )
    thread.start()
    try:
        wait_for(lambda: len(os.listdir(marks)) == 2)
        (running,) = session_dirs(work_dir)
        for options in ([], ["--unfinished"]):
            completed = run_clean(work_dir, *options)
            assert completed.returncode == 0, completed.stderr
            line = line_of(completed.stdout, running)
            assert line.startswith(f"kept          {running} (running: pid {os.getpid()} on ")
            assert completed.stdout.splitlines()[-1] == "removed 0 map directories, 0 B"
        assert session_dirs(work_dir) == {running}
    finally:
        release.touch()
        thread.join(timeout=120)
    assert outcome["results"] == [0, 1]


def test_clean_without_a_work_dir_cleans_the_pools_default_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pypoolparty.local.Pool(2, keep_work_dir=True).map(abs, [-1])
    completed = run_clean(cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert "removed 1 map directory" in completed.stdout
    # The default directory goes when it is left empty, as after a map.
    assert not (tmp_path / ".pypoolparty").exists()
    again = run_clean(cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "no maps in" in again.stderr


def test_a_directory_without_maps_is_left_alone_and_a_file_is_a_usage_error(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("")
    completed = run_clean(tmp_path / "notes")
    assert completed.returncode == 0, completed.stderr
    assert "no maps in" in completed.stderr
    assert os.listdir(tmp_path / "notes") == ["todo.txt"]
    completed = run_clean(tmp_path / "notes" / "todo.txt")
    assert completed.returncode == 2
    assert "is not a directory" in completed.stderr
    assert (tmp_path / "notes" / "todo.txt").exists()


def test_a_map_started_again_after_its_directory_was_judged_is_not_removed(maps):
    work_dir, finished, _ = maps
    (verdict,) = [
        v
        for v in cleaning.survey(inspection.find_sessions(work_dir), False)
        if v.session.path == finished
    ]
    # Before it is removed, the map runs again in it (reuse_results) and holds its lock.
    session_dir = SessionDir(finished)
    with open(session_dir.lock_path, "w") as file:
        file.write(LockHolder("elsewhere.invalid", 1).to_json())
    assert cleaning.remove(verdict) is False
    assert os.path.isdir(finished)
