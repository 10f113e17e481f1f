"""Every Pool shows its own options and the common ones in its signature and help()."""

from __future__ import annotations

import inspect
import pydoc

import pytest

import pypoolparty
import pypoolparty.slurm.array
from pypoolparty import pool

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
