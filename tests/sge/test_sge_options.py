"""The Grid Engine Pool's own options: what reaches qsub, and what is refused at once."""

from __future__ import annotations

import pytest

from pypoolparty.sun_grid_engine import Pool
from pypoolparty.sun_grid_engine.options import checked_options


def test_options_become_qsub_arguments():
    options = checked_options(
        queue_name="all.q",
        parallel_environment="smp",
        slots=4,
        resources={"h_vmem": "2G", "h_rt": "1:00:00"},
        qsub_arguments=["-P", "physics"],
    )
    assert options.arguments() == [
        "-q",
        "all.q",
        "-pe",
        "smp",
        "4",
        "-l",
        "h_vmem=2G,h_rt=1:00:00",
        "-P",
        "physics",
    ]


def test_no_options_add_no_arguments():
    assert checked_options().arguments() == []


@pytest.mark.parametrize(
    "options, complaint",
    [
        ({"queue_name": "all q"}, "queue_name"),
        ({"queue_name": 3}, "queue_name"),
        ({"parallel_environment": "smp 2"}, "parallel_environment"),
        ({"parallel_environment": "smp", "slots": 0}, "slots"),
        ({"slots": 2}, "needs a parallel_environment"),
        ({"resources": {"h_vmem": "2 G"}}, "h_vmem"),
        ({"resources": {"h_rt": "1:00,h_vmem=3G"}}, "h_rt"),
        ({"resources": {"h vmem": "2G"}}, "resource name"),
        ({"resources": "h_vmem=2G"}, "dict"),
        ({"qsub_arguments": "-P physics"}, "list of strings"),
        ({"qsub_arguments": ["-V"]}, "-V"),
        ({"qsub_arguments": ["-t", "1-3"]}, "-t"),
        ({"qsub_path": ""}, "qsub_path"),
    ],
)
def test_obviously_bad_values_are_refused_before_submitting(options, complaint):
    with pytest.raises(ValueError, match=complaint):
        Pool(**{"qsub_path": "/nonexistent/qsub", **options})


def test_common_options_are_checked_by_the_base_pool():
    with pytest.raises(ValueError, match="job_name_prefix"):
        Pool(job_name_prefix="1 bad")
