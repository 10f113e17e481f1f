"""The examples a new user runs first."""

from __future__ import annotations

import re

import pytest

from pypoolparty.examples import pi


def test_pi_refuses_an_unknown_pool_with_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        pi.main(["--pool", "nope"])
    assert info.value.code == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err


def test_pi_runs_on_the_local_pool(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pi.main(["--tasks", "4", "--darts", "100"])
    assert "pi is about" in capsys.readouterr().out


def test_pi_says_how_long_the_map_took_once_in_the_progress_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pi.main(["--tasks", "4", "--darts", "100"])
    captured = capsys.readouterr()
    lines = (captured.out + captured.err).splitlines()
    # The example's own lines carry no clock that could disagree with the progress line's.
    own = [line for line in lines if not line.startswith("pypoolparty")]
    assert [line for line in own if re.search(r"\d(\.\d+)? ?s\b", line)] == [], own
    (took,) = [line for line in lines if "took" in line]
    assert took.startswith("pypoolparty 4/4 tasks done | took ")
