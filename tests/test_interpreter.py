"""The interpreter check: a ``python_path`` of another Python or cloudpickle version, or none.

``python_path`` is checked on the submit host before anything is submitted,
and again by each job's worker before it unpickles anything; either way the
map ends with :class:`pypoolparty.InterpreterMismatch`, never a task's
error, never a resubmission. The interpreters are those of
``tests/interpreters.py``; the real schedulers' tests are in their own
files (``test_a_node_with_another_python_ends_the_map_at_once``).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import cloudpickle
import pytest
from interpreters import (
    OTHER_VERSION,
    install_cloudpickle,
    other_version_python,
    python_too_old_to_read_the_worker,
    python_without_cloudpickle,
    real_other_python,
    skip_the_submitters_check,
)
from session_logs import session_events
from waiting import wait_for

import dummy_queues
import pypoolparty
import pypoolparty.local
import pypoolparty.worker
from dummy_queues import POOL_KINDS

THIS_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
CLOUDPICKLE_VERSION = cloudpickle.__version__


def negate(x):
    return -x


def wrong_interpreter(kind: str, directory) -> tuple[str, list[str]]:
    """A ``python_path`` of ``kind`` and what the error about it must say."""
    if kind == "other_version":
        return other_version_python(directory), [f"is Python {OTHER_VERSION}"]
    if kind == "real_other_version":
        python = real_other_python()
        if python is None:
            pytest.skip("no Python of another version on this machine (python3.N or pyenv)")
        return python, ["is Python 3."]
    return python_without_cloudpickle(directory), ["cannot import cloudpickle", "pip install"]


KINDS = ["other_version", "real_other_version", "no_cloudpickle"]


@pytest.fixture(params=sorted(POOL_KINDS))
def pool_kind(request, dummy_queue):
    dummy_queue(request.param)
    return request.param


def make_pool(pool_kind, tmp_path, **options):
    return dummy_queues.make_pool(
        pool_kind,
        2,
        work_dir=str(tmp_path / "work"),
        polling_interval=0.05,
        missing_result_grace_period=1.0,
        **options,
    )


def expected_versions_named(message: str) -> None:
    assert f"Python {THIS_VERSION}" in message
    assert f"cloudpickle {CLOUDPICKLE_VERSION}" in message


# -- on the submit host, before anything is submitted -------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_wrong_interpreter_is_refused_before_anything_is_submitted(
    kind, pool_kind, dummy_queue, tmp_path
):
    python, said = wrong_interpreter(kind, tmp_path)
    pool = make_pool(pool_kind, tmp_path, python_path=python)
    with pytest.raises(pypoolparty.InterpreterMismatch) as raised:
        pool.map(negate, range(4))
    message = str(raised.value)
    assert python in message and "on this host" in message
    assert all(text in message for text in said)
    expected_versions_named(message)
    assert "Nothing was submitted." in message
    assert isinstance(raised.value, pypoolparty.BadInput)
    assert not (tmp_path / "work").exists()  # no session directory, so no job
    dummy = dummy_queue(pool_kind)
    if dummy is not None:
        assert not dummy.jobs()


def test_a_python_path_that_does_not_exist_is_refused_when_the_pool_is_made(tmp_path):
    with pytest.raises(pypoolparty.InterpreterMismatch, match="does not exist") as raised:
        pypoolparty.local.Pool(1, python_path=str(tmp_path / "python3"))
    assert f"Python {THIS_VERSION}" in str(raised.value)


def test_a_python_path_removed_after_the_pool_was_made_is_refused_before_submitting(tmp_path):
    python = tmp_path / "python3"
    python.symlink_to(sys.executable)
    pool = pypoolparty.local.Pool(1, python_path=str(python), work_dir=str(tmp_path / "work"))
    python.unlink()
    with pytest.raises(pypoolparty.InterpreterMismatch, match="No such file") as raised:
        pool.map(negate, range(2))
    assert "Nothing was submitted." in str(raised.value)
    assert not (tmp_path / "work").exists()


def test_a_python_path_that_is_no_python_is_refused_with_its_output(tmp_path):
    python = tmp_path / "python3"
    python.write_text("#!/bin/sh\necho 'this is not python' >&2\nexit 3\n")
    python.chmod(0o755)
    pool = pypoolparty.local.Pool(1, python_path=str(python), work_dir=str(tmp_path / "work"))
    with pytest.raises(pypoolparty.InterpreterMismatch) as raised:
        pool.map(negate, range(2))
    message = str(raised.value)
    assert "exit status 3" in message and "this is not python" in message
    assert not (tmp_path / "work").exists()


def counting_python(tmp_path):
    """The real interpreter, counting the checks it answers in ``checks``."""
    counter = tmp_path / "checks"
    python = tmp_path / "python3"
    python.write_text(
        f'#!/bin/sh\ncase "$1" in -c) echo check >> "{counter}";; esac\n'
        f'exec "{sys.executable}" "$@"\n'
    )
    python.chmod(0o755)
    return str(python), counter


def test_the_check_runs_once_per_process_until_the_interpreter_changes(tmp_path):
    python, counter = counting_python(tmp_path)
    for _ in range(2):
        pool = pypoolparty.local.Pool(2, python_path=python, work_dir=str(tmp_path / "work"))
        assert pool.map(negate, range(3)) == [0, -1, -2]
        assert pool.map(negate, range(5)) == [0, -1, -2, -3, -4]
    assert counter.read_text().splitlines() == ["check"]
    os.utime(python, ns=(0, 0))  # the interpreter was replaced: checked again
    assert pool.map(negate, range(2)) == [0, -1]
    assert counter.read_text().splitlines() == ["check", "check"]


def test_a_failed_check_is_not_remembered(tmp_path):
    python = python_without_cloudpickle(tmp_path)
    pool = pypoolparty.local.Pool(2, python_path=python, work_dir=str(tmp_path / "work"))
    with pytest.raises(pypoolparty.InterpreterMismatch):
        pool.map(negate, range(2))
    install_cloudpickle(python)
    assert pool.map(negate, range(2)) == [0, -1]


# -- by the worker on its node ------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_job_on_a_wrong_interpreter_ends_the_map_at_once(
    kind, pool_kind, dummy_queue, tmp_path, monkeypatch
):
    # The submit host's interpreter at python_path is right; the nodes' is not.
    skip_the_submitters_check(monkeypatch)
    python, said = wrong_interpreter(kind, tmp_path)
    pool = make_pool(pool_kind, tmp_path, python_path=python, max_num_resubmissions=5)
    with pytest.raises(pypoolparty.InterpreterMismatch) as raised:
        pool.map(negate, range(4), chunksize=1)
    message = str(raised.value)
    assert python in message and "in job" in message and "on host" in message
    assert all(text in message for text in said)
    expected_versions_named(message)
    assert "No task ran" in message and "none was made" in message
    assert "call the same map" not in message  # it would fail the same way
    assert not isinstance(raised.value, pypoolparty.TaskError)
    events = session_events(tmp_path / "work")
    assert len([e for e in events if e["event"] == "submitting"]) == 1
    (failed,) = [e for e in events if e["event"] == "job_failed"]
    assert "interpreter mismatch" in failed["reason"]
    assert not [e for e in events if e["event"] == "chunk_done"]
    dummy = dummy_queue(pool_kind)
    if dummy is not None:
        wait_for(lambda: dummy.queued_jobs() == [], timeout=30)  # the others cancelled


def test_a_job_on_a_python_too_old_to_read_the_worker_ends_the_map_at_once(
    pool_kind, dummy_queue, tmp_path, monkeypatch
):
    # Such a Python stops at the worker's syntax, before the worker's own check:
    # the job only fails, and its stderr says why.
    skip_the_submitters_check(monkeypatch)
    python = python_too_old_to_read_the_worker(tmp_path)
    pool = make_pool(pool_kind, tmp_path, python_path=python, max_num_resubmissions=5)
    with pytest.raises(pypoolparty.InterpreterMismatch) as raised:
        pool.map(negate, range(4), chunksize=1)
    message = str(raised.value)
    assert python in message and "is Python older than 3.6 in job" in message
    expected_versions_named(message)
    assert "SyntaxError: invalid syntax" in message.split("stderr (last lines):")[1]
    assert "none was made" in message and "call the same map" not in message
    # The failed jobs' slots may have gone to further chunks before the
    # failure showed (the job only failed), but no chunk was submitted again.
    events = session_events(tmp_path / "work")
    submitted = [
        ichunk
        for event in events
        if event["event"] == "submitting"
        for first, last in event["chunks"]
        for ichunk in range(first, last + 1)
    ]
    assert sorted(submitted) == sorted(set(submitted))


def test_a_map_stopped_by_a_nodes_interpreter_continues_once_it_is_fixed(tmp_path, monkeypatch):
    skip_the_submitters_check(monkeypatch)
    python = python_without_cloudpickle(tmp_path)
    pool = pypoolparty.local.Pool(2, python_path=python, work_dir=str(tmp_path / "work"))
    with pytest.raises(pypoolparty.InterpreterMismatch):
        pool.map(negate, range(4), chunksize=1)
    install_cloudpickle(python)
    assert pool.map(negate, range(4), chunksize=1) == [0, -1, -2, -3]


# -- the submitter's sys.path -------------------------------------------------


def report_origin(_):
    import probe_origin

    return probe_origin.ORIGIN


def a_venv_without_pip(tmp_path) -> tuple[str, str]:
    """A venv of this Python with nothing installed: its interpreter and its site-packages."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return python, site


def test_a_venv_of_the_same_python_gets_the_submitters_sys_path_after_its_own(
    tmp_path, monkeypatch
):
    """Documented: with the same Python version, the job may import from the
    directories of the submitter's sys.path (here cloudpickle, which the venv
    lacks), but its own environment comes first."""
    python, site = a_venv_without_pip(tmp_path)
    lacks = subprocess.run([python, "-c", "import cloudpickle"], capture_output=True)
    assert lacks.returncode != 0  # the venv has no cloudpickle of its own
    pathlib.Path(site, "probe_origin.py").write_text('ORIGIN = "venv"\n')
    submitters = tmp_path / "submitters"
    submitters.mkdir()
    (submitters / "probe_origin.py").write_text('ORIGIN = "submitter"\n')
    monkeypatch.syspath_prepend(str(submitters))
    pool = pypoolparty.local.Pool(1, python_path=python, work_dir=str(tmp_path / "work"))
    assert pool.map(report_origin, range(2)) == ["venv", "venv"]


def a_site_packages_with_an_editable_install(tmp_path) -> tuple:
    """A ``site-packages`` whose package ``editable_probe`` is only a ``.pth``
    file naming its source directory, as ``pip install -e`` leaves it."""
    source = tmp_path / "source"
    source.mkdir()
    (source / "editable_probe.py").write_text('ORIGIN = "editable source"\n')
    site_packages = tmp_path / "submitters_env" / "site-packages"
    site_packages.mkdir(parents=True)
    (site_packages / "__editable__.editable_probe.pth").write_text(f"{source}\n")
    return site_packages, source


def import_the_editable_probe(_):
    import editable_probe

    return editable_probe.ORIGIN


def test_the_worker_reads_the_pth_files_of_the_submitters_site_packages(tmp_path, monkeypatch):
    site_packages, source = a_site_packages_with_an_editable_install(tmp_path)
    own = list(sys.path)
    monkeypatch.setattr(sys, "path", list(own))
    pypoolparty.worker.extend_sys_path([str(site_packages)])
    assert sys.path == [*own, str(site_packages), str(source)]


def test_a_venv_of_the_same_python_imports_the_submitters_editable_installs(tmp_path, monkeypatch):
    """``pip install -e`` puts only a ``.pth`` file into site-packages; a job
    in another environment of the same Python still imports the package."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site_packages, _ = a_site_packages_with_an_editable_install(tmp_path)
    monkeypatch.syspath_prepend(str(site_packages))
    pool = pypoolparty.local.Pool(
        1, python_path=str(venv / "bin" / "python"), work_dir=str(tmp_path / "work")
    )
    assert pool.map(import_the_editable_probe, range(2)) == ["editable source"] * 2


def test_a_legacy_develop_install_of_the_submitters_does_not_go_ahead_of_the_jobs_own(
    tmp_path, monkeypatch
):
    """``setup.py develop`` leaves an ``easy-install.pth`` that moves its
    entries to the front of ``sys.path`` when read: the job's own environment
    still comes first."""
    python, site = a_venv_without_pip(tmp_path)
    pathlib.Path(site, "probe_origin.py").write_text('ORIGIN = "venv"\n')
    source = tmp_path / "source"
    source.mkdir()
    (source / "probe_origin.py").write_text('ORIGIN = "develop install"\n')
    site_packages = tmp_path / "submitters_env" / "site-packages"
    site_packages.mkdir(parents=True)
    # As setuptools writes it (setuptools/command/easy_install.py, PthDistributions).
    (site_packages / "easy-install.pth").write_text(
        "import sys; sys.__plen = len(sys.path)\n"
        f"{source}\n"
        "import sys; new = sys.path[sys.__plen:]; del sys.path[sys.__plen:]; "
        "p = getattr(sys, '__egginsert', 0); sys.path[p:p] = new; "
        "sys.__egginsert = p + len(new)\n"
    )
    monkeypatch.syspath_prepend(str(site_packages))
    pool = pypoolparty.local.Pool(1, python_path=python, work_dir=str(tmp_path / "work"))
    assert pool.map(report_origin, range(2)) == ["venv", "venv"]


def test_a_module_of_yours_named_worker_is_not_hidden_by_pypoolpartys(tmp_path, monkeypatch):
    """The job runs the session directory's ``worker.py``, and Python puts a
    script's directory first on ``sys.path``: there it would hide a module
    ``worker`` of the user's, whose functions cloudpickle pickles by reference."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "worker.py").write_text("def times_ten(x):\n    return 10 * x\n")
    monkeypatch.syspath_prepend(str(mine))
    spec = importlib.util.spec_from_file_location("worker", mine / "worker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setitem(sys.modules, "worker", module)
    pool = pypoolparty.local.Pool(1, work_dir=str(tmp_path / "work"))
    assert pool.map(module.times_ten, [1, 2]) == [10, 20]


def test_the_worker_appends_the_submitters_sys_path_only_for_the_same_python(tmp_path, monkeypatch):
    submitters = tmp_path / "submitters"
    submitters.mkdir()
    own = list(sys.path)
    monkeypatch.setattr(sys, "path", list(own))
    other = {"python": OTHER_VERSION, "cloudpickle": CLOUDPICKLE_VERSION}
    found = pypoolparty.worker.interpreter_versions(other, [str(submitters)])
    assert found["python"] == THIS_VERSION and sys.path == own
    same = {"python": THIS_VERSION, "cloudpickle": CLOUDPICKLE_VERSION}
    found = pypoolparty.worker.interpreter_versions(same, [str(submitters)])
    assert found == {
        "python": THIS_VERSION,
        "cloudpickle": CLOUDPICKLE_VERSION,
        "executable": sys.executable,
    }
    assert sys.path == [*own, str(submitters)]


def test_the_worker_keeps_to_the_syntax_of_python_3_6():
    # So that a node's older Python reads it far enough to report its version.
    with open(pypoolparty.worker.__file__) as file:
        source = file.read()
    ast.parse(source, feature_version=(3, 6))
    assert "from __future__ import annotations" not in source  # Python 3.7's


def test_an_old_python_that_cannot_read_the_worker_is_reported_by_its_version(tmp_path):
    python = tmp_path / "python2.7"
    # A Python 2.7 as far as the check sees: the worker's syntax is beyond it.
    python.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/sh
            exec "{sys.executable}" -c '
            import sys
            sys.version_info = (2, 7, 18, "final", 0)
            import runpy
            def refuse(*args, **kwargs):
                raise SyntaxError("invalid syntax")
            runpy.run_path = refuse
            exec(sys.argv[2])
            ' "$@"
            """
        )
    )
    python.chmod(0o755)
    pool = pypoolparty.local.Pool(1, python_path=str(python), work_dir=str(tmp_path / "work"))
    with pytest.raises(pypoolparty.InterpreterMismatch, match="is Python 2.7 on this host"):
        pool.map(negate, range(2))
