"""An HTCondor map whose jobs run inside a Charliecloud image, for real.

HTCondor runs the jobs as the ordinary job user (``job_user.py``), without
``$USER`` (``getenv = False``): ch-run, unprivileged, runs the image all the
same, and pypoolparty sets ``$USER`` for it.
"""

from __future__ import annotations

import os

import pytest
from charliecloud_image import MARKER_TEXT, make_image, require_ch_run, system_binds
from test_htcondor_real import condor_user, job_python, run_map, shared_dir  # noqa: F401

pytestmark = pytest.mark.htcondor


def test_an_htcondor_map_runs_inside_the_image_as_the_job_user(
    condor_user,  # noqa: F811
    job_python,  # noqa: F811
    shared_dir,  # noqa: F811
):
    require_ch_run()
    venv = os.path.dirname(os.path.dirname(job_python))
    work_dir = os.path.join(shared_dir, "work")
    # The driver runs in the user's home: the job's working directory.
    image = make_image(os.path.join(shared_dir, "image"), [venv, work_dir, condor_user.pw_dir])
    container = {"image": image, "runtime": "charliecloud", "binds": system_binds([venv])}
    outcome, stderr = run_map(
        condor_user,
        job_python,
        shared_dir,
        "inside_image",
        python_path=job_python,
        container=container,
    )
    assert outcome.get("results") == [
        [x, MARKER_TEXT, "Weird Al Yankovic", condor_user.pw_dir, condor_user.pw_name]
        for x in range(3)
    ], stderr
