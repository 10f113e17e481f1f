"""The examples a new user runs first."""

from __future__ import annotations

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
