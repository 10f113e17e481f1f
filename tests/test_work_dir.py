import os
import subprocess
import sys

import pytest

import pypoolparty
from pypoolparty import event_log, work_dir
from pypoolparty.errors import WorkDirError


def test_a_live_process_holding_the_lock_keeps_others_out(tmp_path):
    session_dir = work_dir.SessionDir(str(tmp_path / "map-1"))
    session_dir.create()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with open(session_dir.lock_path, "w") as file:
            file.write(f'{{"host": "{os.uname().nodename}", "pid": {holder.pid}}}')
        with pytest.raises(WorkDirError, match=f"pid {holder.pid}"):
            session_dir.acquire_lock()
    finally:
        holder.kill()
        holder.wait()
    session_dir.acquire_lock()  # the holder is gone: its lock is stale
    session_dir.release_lock()
    assert not os.path.exists(session_dir.lock_path)


def test_the_event_log_survives_a_line_torn_by_a_kill(tmp_path):
    path = str(tmp_path / "log.jsonl")
    log = event_log.EventLog(path)
    log.write("submitted", jobs=[["1_0", 0]])
    log.close()
    with open(path, "a") as file:
        file.write('{"time": 1, "event": "chunk_do')
    log = event_log.EventLog(path)
    log.write("chunk_done", ichunk=0)
    log.close()
    events = [e["event"] for e in event_log.read(path)]
    assert events == ["submitted", "chunk_done"]


def test_write_private_is_atomic_and_private(tmp_path):
    path = str(tmp_path / "f.json")
    work_dir.write_json(path, {"a": 1})
    assert work_dir.read_json(path) == {"a": 1}
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert os.listdir(tmp_path) == ["f.json"]


def test_a_shared_sticky_directory_is_refused_with_advice_to_use_ones_own(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)  # like /tmp
    with pytest.raises(pypoolparty.WorkDirError) as raised:
        pypoolparty.local.Pool(1, work_dir=shared).map(abs, [1])
    message = str(raised.value)
    assert "shared directory" in message and "directory of your own" in message
    assert "chmod" not in message  # a shared directory must stay writable by all
    assert os.listdir(shared) == []  # nothing was prepared


@pytest.mark.parametrize("below", ["", "sub/deeper"])
def test_a_work_dir_that_is_a_file_or_inside_one_names_the_file(tmp_path, below):
    path = tmp_path / "results.txt"
    path.write_text("not a directory")
    with pytest.raises(pypoolparty.WorkDirError) as raised:
        pypoolparty.local.Pool(1, work_dir=path / below).map(abs, [1])
    assert f"{str(path)!r} is a file, not a directory" in str(raised.value)
    assert path.read_text() == "not a directory"
