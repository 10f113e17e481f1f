"""Maps whose jobs run inside a Charliecloud image, for real (ch-run from
Debian's ``charliecloud-runtime``), on the local pool and the real schedulers.

The image is a directory built by the test (``charliecloud_image.py``); each
task reports what only the inside of that image shows.
"""

from __future__ import annotations

import os
import uuid

import pytest
from charliecloud_image import (
    MARKER,
    MARKER_TEXT,
    make_image,
    python_prefixes,
    require_ch_run,
    system_binds,
)
from real_schedulers import require_scheduler

import pypoolparty
import pypoolparty.slurm.array
from pypoolparty import Container


def where_am_i(x):
    """What the task sees: the image's marker, ch-run's variable, its directory."""
    try:
        with open(MARKER) as file:
            marker = file.read()
    except FileNotFoundError:
        marker = None
    return x, marker, os.environ.get("CH_RUNNING"), os.getcwd()


def expected(n):
    return [(x, MARKER_TEXT, "Weird Al Yankovic", os.getcwd()) for x in range(n)]


@pytest.fixture
def image_container(tmp_path):
    """A Container of a fresh image with mount points for the work_dir and
    this directory; the work_dir is ``tmp_path / "work"``."""
    require_ch_run()
    assert not os.path.exists(MARKER), "the host must not have the image's marker"
    work_dir = str(tmp_path / "work")
    prefixes = python_prefixes()
    image = make_image(str(tmp_path / "image"), [*prefixes, work_dir, os.getcwd()])
    return Container(image, "charliecloud", binds=system_binds(prefixes)), work_dir


def test_a_local_map_runs_inside_the_image(image_container):
    box, work_dir = image_container
    with pypoolparty.local.Pool(2, container=box, work_dir=work_dir) as pool:
        assert pool.map(where_am_i, range(6), chunksize=2) == expected(6)


def test_a_task_error_inside_the_image_is_the_tasks_error(image_container):
    box, work_dir = image_container
    pool = pypoolparty.local.Pool(container=box, work_dir=work_dir)
    with pytest.raises(ZeroDivisionError):
        pool.map(divide_by_zero_inside, [1])


def divide_by_zero_inside(x):
    assert os.path.exists(MARKER)
    return x / 0


@pytest.mark.slurm
@pytest.mark.parametrize("pool_class", [pypoolparty.slurm.array.Pool, pypoolparty.slurm.Pool])
def test_a_slurm_map_runs_inside_the_image(image_container, pool_class):
    require_scheduler("slurm")
    box, work_dir = image_container
    pool = pool_class(
        container=box,
        work_dir=work_dir,
        polling_interval=0.2,
        missing_result_grace_period=1.0,
        job_name_prefix=f"ppp{uuid.uuid4().hex[:8]}",
    )
    assert pool.map(where_am_i, range(4), chunksize=1) == expected(4)


@pytest.mark.sge
def test_a_grid_engine_map_runs_inside_the_image(image_container):
    require_scheduler("sge")
    box, work_dir = image_container
    pool = pypoolparty.sun_grid_engine.Pool(container=box, work_dir=work_dir, polling_interval=0.5)
    assert pool.map(where_am_i, range(4), chunksize=1) == expected(4)


def what_setup_saw(x):
    return x, os.environ.get("PPP_SETUP_SAW")


def test_the_setup_lines_run_inside_the_image(image_container):
    box, work_dir = image_container
    pool = pypoolparty.local.Pool(
        container=box, work_dir=work_dir, setup=[f"export PPP_SETUP_SAW=$(cat {MARKER})"]
    )
    assert pool.map(what_setup_saw, range(2)) == [(0, MARKER_TEXT), (1, MARKER_TEXT)]


def test_a_setup_line_that_fails_only_inside_the_image_ends_the_map(image_container):
    box, work_dir = image_container
    # The marker exists only in the image: this line passes on the host.
    pool = pypoolparty.local.Pool(container=box, work_dir=work_dir, setup=[f"test ! -e {MARKER}"])
    with pytest.raises(pypoolparty.JobCannotRun, match="setup line 1"):
        pool.map(what_setup_saw, range(2))
