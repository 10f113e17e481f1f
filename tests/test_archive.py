import os
import stat
import zipfile

from pypoolparty import archive


def test_append_creates_a_private_archive_and_adds_members(tmp_path):
    path = str(tmp_path / "results.zip")
    archive.append(path, {"0.pickle": b"zero"})
    archive.append(path, {"1.pickle": b"one", "0.pickle": b"not again"})
    assert sorted(archive.names(path)) == ["0.pickle", "1.pickle"]
    assert archive.read(path, "0.pickle") == b"zero"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_an_append_cut_off_by_a_kill_loses_nothing_that_was_complete(tmp_path):
    path = str(tmp_path / "results.zip")
    archive.append(path, {"0.pickle": b"a" * 1000, "1.pickle": b"b" * 10})
    complete = open(path, "rb").read()
    archive.append(path, {"2.pickle": b"c" * 5000})
    with zipfile.ZipFile(path) as z:
        start_of_new_entry = z.getinfo("2.pickle").header_offset
    # As if the process died while writing the new entry: no central directory.
    with open(path, "r+b") as file:
        file.truncate(start_of_new_entry + 40)
    assert not zipfile.is_zipfile(path)
    assert sorted(archive.names(path)) == ["0.pickle", "1.pickle"]
    assert archive.read(path, "0.pickle") == b"a" * 1000
    assert len(complete) > 0


def test_a_missing_central_directory_keeps_every_complete_entry(tmp_path):
    path = str(tmp_path / "results.zip")
    archive.append(path, {"0.pickle": b"a", "1.pickle": b"b"})
    archive.append(path, {"2.pickle": b"c"})
    with zipfile.ZipFile(path) as z:
        end_of_entries = z.start_dir
    with open(path, "r+b") as file:
        file.truncate(end_of_entries)
    assert archive.repair(path) == 3
    archive.append(path, {"3.pickle": b"d"})
    assert sorted(archive.names(path)) == ["0.pickle", "1.pickle", "2.pickle", "3.pickle"]


def test_names_of_a_missing_archive_is_empty(tmp_path):
    assert archive.names(str(tmp_path / "nothing.zip")) == []
