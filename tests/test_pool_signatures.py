"""Every Pool shows its own options and the common ones in its signature and help(),
and answers an option name it does not have with the near miss or the name to use."""

from __future__ import annotations

import inspect
import os
import pydoc
import re
import subprocess
import sys

import pytest
from real_schedulers import REPO_DIR

import pypoolparty
import pypoolparty.slurm.array
from pypoolparty import pool, pool_options, signatures
from pypoolparty.scheduler import SubmissionRejected

COMMON_OPTIONS = [
    name
    for name, parameter in inspect.signature(pool.Pool.__init__).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
]

OWN_OPTIONS = {
    pypoolparty.slurm.array.Pool: ["max_array_size", "partition", "sbatch_path"],
    pypoolparty.slurm.Pool: ["partition", "time", "sinfo_path"],
    pypoolparty.sun_grid_engine.Pool: ["queue_name", "qsub_path"],
    pypoolparty.htcondor.Pool: ["request_memory", "condor_q_path"],
    pypoolparty.local.Pool: ["missing_result_grace_period"],
}

SCHEDULER_POOLS = {
    "local": pypoolparty.local.Pool,
    "slurm": pypoolparty.slurm.array.Pool,
    "sge": pypoolparty.sun_grid_engine.Pool,
    "htcondor": pypoolparty.htcondor.Pool,
}


@pytest.mark.parametrize("pool_class", list(OWN_OPTIONS), ids=lambda c: c.__module__)
def test_the_signature_lists_every_option_once_and_no_catch_all(pool_class):
    parameters = inspect.signature(pool_class).parameters
    assert list(parameters)[0] == "num_simultaneously_running_tasks"
    assert set(OWN_OPTIONS[pool_class]) <= set(parameters)
    assert set(COMMON_OPTIONS) <= set(parameters)
    kinds = {parameter.kind for parameter in parameters.values()}
    assert inspect.Parameter.VAR_KEYWORD not in kinds


def test_the_array_pool_shows_its_scheduler_options_and_the_common_ones():
    parameters = inspect.signature(pypoolparty.slurm.array.Pool).parameters
    assert "partition" in parameters
    assert "work_dir" in parameters
    assert parameters["max_array_size"].default is None
    text = pydoc.render_doc(pypoolparty.slurm.array.Pool, renderer=pydoc.plaintext)
    (call_line,) = [line for line in text.splitlines() if line.startswith(" |  Pool(")]
    assert "partition:" in call_line
    assert "work_dir:" in call_line


def test_a_pool_keeps_its_own_default_of_a_common_option():
    parameters = inspect.signature(pypoolparty.local.Pool).parameters
    assert parameters["missing_result_grace_period"].default == 2.0
    assert "self" not in parameters


def test_the_signature_accepts_what_the_pool_accepts(tmp_path):
    arguments = dict(partition="short", work_dir=str(tmp_path), polling_interval=0.5)
    inspect.signature(pypoolparty.slurm.array.Pool).bind(4, **arguments)
    built = pypoolparty.slurm.array.Pool(4, **arguments)
    assert built.settings.polling_interval == 0.5
    with pytest.raises(TypeError):
        inspect.signature(pypoolparty.slurm.array.Pool).bind(no_such_option=1)


# ------------------------------------------------------- docstrings


@pytest.mark.parametrize("pool_class", list(OWN_OPTIONS), ids=lambda c: c.__module__)
def test_help_documents_every_option_of_the_signature(pool_class):
    documented = {
        name
        for names, _ in signatures._parameter_entries(inspect.getdoc(pool_class))
        for name in names
    }
    assert documented == set(inspect.signature(pool_class).parameters)


def test_help_shows_the_scheduler_options_and_the_aliases():
    text = pydoc.render_doc(pypoolparty.sun_grid_engine.Pool, renderer=pydoc.plaintext)
    assert " |  queue_name : str, optional" in text
    assert " |  work_dir : str, optional" in text
    assert "Also accepted as ``queue``" in text
    assert "Also accepted as ``processes``" in text


# ------------------------------------------------ wrong option names


@pytest.mark.parametrize("pool_class", list(OWN_OPTIONS), ids=lambda c: c.__module__)
def test_a_typo_names_the_pool_and_the_near_miss(pool_class, tmp_path):
    with pytest.raises(pypoolparty.UnknownOption) as raised:
        pool_class(work_dri=str(tmp_path))
    message = str(raised.value)
    assert message.startswith(f"{signatures.public_name(pool_class)}() got an unexpected")
    assert "did you mean 'work_dir'" in message
    # what code written for Python's own error catches
    assert isinstance(raised.value, TypeError)
    assert isinstance(raised.value, pypoolparty.BadInput)


def test_the_issue_s_typo_suggests_partition_on_slurm():
    with pytest.raises(TypeError, match=r"pypoolparty\.slurm\.array\.Pool\(\) .* 'partiton'; "):
        pypoolparty.slurm.array.Pool(partiton="short")
    with pytest.raises(TypeError, match="did you mean 'partition'"):
        pypoolparty.slurm.array.Pool(partiton="short")


def test_a_name_far_from_any_option_points_to_help():
    with pytest.raises(pypoolparty.UnknownOption) as raised:
        pypoolparty.htcondor.Pool(zzzzzz=1)
    assert str(raised.value).endswith("help(pypoolparty.htcondor.Pool) lists its options.")
    assert "did you mean" not in str(raised.value)


@pytest.mark.parametrize(
    "pool_class, name, value, advice",
    [
        (pypoolparty.sun_grid_engine.Pool, "partition", "short", "queue_name='NAME'"),
        (pypoolparty.sun_grid_engine.Pool, "walltime", "1:00:00", "resources={'h_rt'"),
        (pypoolparty.slurm.array.Pool, "queue", "short", "partition='NAME'"),
        (pypoolparty.slurm.array.Pool, "slurm_partition", "short", "partition='NAME'"),
        (pypoolparty.slurm.array.Pool, "timeout_min", 60, "time=MINUTES"),
        (pypoolparty.slurm.Pool, "mem_gb", 4, "mem='4G'"),
        (pypoolparty.slurm.Pool, "request_memory", "4GB", "mem="),
        (pypoolparty.htcondor.Pool, "cores", 2, "request_cpus=N"),
        (pypoolparty.htcondor.Pool, "memory", "4GB", "request_memory="),
        (pypoolparty.htcondor.Pool, "mem", "4G", "request_memory="),
        (pypoolparty.local.Pool, "initializer", print, "start of the task function"),
        (pypoolparty.local.Pool, "maxtasksperchild", 1, "chunksize of map"),
        (pypoolparty.local.Pool, "walltime", "1:00:00", "processes on this machine"),
        (pypoolparty.sun_grid_engine.Pool, "slurm_array_parallelism", 2, "num_simultaneously"),
    ],
)
def test_another_tool_s_name_is_answered_with_ours(pool_class, name, value, advice):
    with pytest.raises(pypoolparty.UnknownOption) as raised:
        pool_class(**{name: value})
    message = str(raised.value)
    assert f"{signatures.public_name(pool_class)}() has no option {name!r}" in message
    assert advice in message


@pytest.mark.parametrize("pool_class", list(OWN_OPTIONS), ids=lambda c: c.__module__)
def test_multiprocessing_s_processes_is_the_limit_of_running_tasks(pool_class):
    assert pool_class(processes=3).num_simultaneously_running_tasks == 3


def test_an_option_given_twice_is_refused():
    with pytest.raises(pypoolparty.UnknownOption, match="twice, also as 'processes'"):
        pypoolparty.local.Pool(4, processes=2)
    with pytest.raises(pypoolparty.UnknownOption, match="'queue_name' twice"):
        pypoolparty.sun_grid_engine.Pool(queue_name="all.q", queue="all.q")


def test_multiprocessing_s_positional_initializer_is_refused_with_the_reason():
    with pytest.raises(pypoolparty.UnknownOption, match="initializer and initargs are not"):
        pypoolparty.local.Pool(2, print, ("setting up",))


def test_grid_engine_takes_queue_as_its_queue(dummy_sge, tmp_path):
    # The dummy knows only all.q, as a cell knows its queues: a queue it does
    # not know reaches qsub and is refused there.
    pool = pypoolparty.sun_grid_engine.Pool(
        queue="no_such.q", work_dir=str(tmp_path / "work"), **dummy_sge.paths
    )
    with pytest.raises(SubmissionRejected, match='unknown queue "no_such.q"'):
        pool.map(abs, [-1])
    pool = pypoolparty.sun_grid_engine.Pool(
        queue="all.q", work_dir=str(tmp_path / "work"), polling_interval=0.05, **dummy_sge.paths
    )
    assert pool.map(abs, [-1, -2]) == [1, 2]


@pytest.mark.parametrize("scheduler, pool_class", SCHEDULER_POOLS.items())
def test_the_advice_names_only_options_the_pool_has(scheduler, pool_class):
    parameters = inspect.signature(pool_class).parameters
    for name, guess in signatures.GUESSES.items():
        advice = guess.advice_for(scheduler)
        if isinstance(advice, signatures.Alias):
            assert advice.option in parameters, name
        elif advice is not None:
            for option in re.findall(r"(?:^|\s)(\w+)=", advice):
                assert option in parameters, (name, advice)


# What a static checker or an editor sees (PEP 692): it reads the source, not
# __signature__, so each Pool's **options is annotated Unpack[<a TypedDict>].


def statically_visible(pool_class) -> dict[str, str]:
    """Option name -> annotation, as a static checker reads ``pool_class.__init__``:
    its own parameters, then the keys of the TypedDict its ``**options`` unpacks."""
    source_init = inspect.unwrap(pool_class.__init__)  # before the names check
    visible = {}
    for name, parameter in inspect.signature(source_init).parameters.items():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            (typed_dict_name,) = re.fullmatch(r"Unpack\[(\w+)\]", parameter.annotation).groups()
            typed_dict = vars(sys.modules[source_init.__module__])[typed_dict_name]
            for key, annotation in typed_dict.__annotations__.items():
                assert key not in visible, f"{key} is both a parameter and a key"
                visible[key] = getattr(annotation, "__forward_arg__", annotation)
        elif name != "self":
            visible[name] = parameter.annotation
    return visible


@pytest.mark.parametrize("pool_class", list(OWN_OPTIONS), ids=lambda c: c.__module__)
def test_a_static_checker_sees_every_option_with_its_type(pool_class):
    accepted = inspect.signature(pool_class).parameters
    assert statically_visible(pool_class) == {
        name: parameter.annotation for name, parameter in accepted.items()
    }


def test_the_typed_dict_of_the_common_options_is_the_base_pool_s_options():
    common = inspect.signature(pool.Pool.__init__).parameters
    assert pool_options.PoolOptions.__optional_keys__ == set(COMMON_OPTIONS)
    assert pool_options.PoolOptions.__required_keys__ == set()
    annotations = {
        key: annotation.__forward_arg__
        for key, annotation in pool_options.PoolOptions.__annotations__.items()
    }
    assert annotations == {name: common[name].annotation for name in COMMON_OPTIONS}


TYPO_SCRIPT = """\
import pypoolparty
import pypoolparty.htcondor
import pypoolparty.local
import pypoolparty.slurm
import pypoolparty.slurm.array
import pypoolparty.sun_grid_engine

pypoolparty.slurm.array.Pool(4, partition="debug", work_dir="w", max_array_size=10)
pypoolparty.local.Pool(2, missing_result_grace_period=1.0, keep_work_dir=True)
pypoolparty.slurm.array.Pool(partiton="debug")
pypoolparty.slurm.Pool(work_dri="w")
pypoolparty.local.Pool(2, keep_wrok_dir=True)
pypoolparty.sun_grid_engine.Pool(queue_name="all.q", max_num_resubmissions="5")
pypoolparty.htcondor.Pool(request_cpus=2, verbos=True)
"""


def test_mypy_reports_a_typo_in_an_inherited_option(tmp_path):
    pytest.importorskip("mypy", reason="mypy is not installed (pip install mypy)")
    (tmp_path / "script.py").write_text(TYPO_SCRIPT)
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary"]
        + ["--cache-dir", str(tmp_path / "cache"), "script.py"],
        cwd=tmp_path,
        # The package as source, from this checkout (an editable install's
        # import hook is invisible to mypy).
        env={**os.environ, "MYPYPATH": REPO_DIR},
        capture_output=True,
        text=True,
    )
    # The two right calls pass; each wrong one is reported at its line, by name.
    errors = {}
    for line in checked.stdout.splitlines():
        if ": error:" in line:
            errors[int(line.split(":")[1])] = line
    assert sorted(errors) == [10, 11, 12, 13, 14], checked.stdout + checked.stderr
    assert '"partiton"' in errors[10] and '"partition"' in errors[10]
    assert '"work_dri"' in errors[11] and '"work_dir"' in errors[11]
    assert '"keep_wrok_dir"' in errors[12]
    assert '"max_num_resubmissions"' in errors[13] and '"int"' in errors[13]
    assert '"verbos"' in errors[14]


def test_the_package_says_it_is_typed():
    # PEP 561: without py.typed, mypy treats an installed package as untyped.
    assert os.path.isfile(os.path.join(os.path.dirname(pypoolparty.__file__), "py.typed"))
