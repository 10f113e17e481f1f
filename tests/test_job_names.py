"""Job names are unique to their map's session, not to the map's content."""

from __future__ import annotations

import json

import pypoolparty


def submission_names(work_dir) -> list[str]:
    names = []
    for log in work_dir.glob("map-*/log.jsonl"):
        for line in log.read_text().splitlines():
            event = json.loads(line)
            if event["event"] == "submitting":
                names.append(event["submission"])
    return names


def test_the_same_map_from_two_work_dirs_gets_job_names_of_its_own(tmp_path):
    names = []
    for directory in ("first", "second"):
        work_dir = tmp_path / directory
        pool = pypoolparty.local.Pool(2, work_dir=work_dir, keep_work_dir=True)
        assert pool.map(abs, range(-4, 0)) == [4, 3, 2, 1]
        (session,) = work_dir.glob("map-*")
        session_id = json.loads((session / "session.json").read_text())["session_id"]
        (name,) = submission_names(work_dir)
        assert name.startswith(f"ppp-{session_id}-")
        names.append(name)
    # Same function and tasks, hence the same session directory name ...
    assert {p.name for p in (tmp_path / "first").iterdir()} == {
        p.name for p in (tmp_path / "second").iterdir()
    }
    # ... but a look-up by one map's job names never finds the other's jobs.
    assert names[0] != names[1]
