"""The container option: each runtime's command line against its documented
syntax (no runtime needed), and the checks made before anything is submitted.

The runtimes really run in ``test_container_charliecloud.py``.
"""

from __future__ import annotations

import inspect
import os
import shlex
import stat
import subprocess

import pytest

import pypoolparty
from pypoolparty import container as containers
from pypoolparty.container import Container, command
from pypoolparty.scheduler import WorkerCall

INNER = ["/usr/bin/python3", "/w/map-1/worker.py", "/w/map-1", "--ichunk", "3"]


def test_apptainer_exec_binds_each_path_at_the_same_path_and_sets_the_working_directory():
    box = Container("/images/analysis.sif", "apptainer", executable="/usr/bin/apptainer")
    assert command(box, INNER, ["/w"], "/home/me/project") == [
        # apptainer exec [exec options...] <container> <command>
        "/usr/bin/apptainer",
        "exec",
        "--bind",
        "/w:/w",
        "--bind",
        "/home/me/project:/home/me/project",
        "--pwd",
        "/home/me/project",
        "/images/analysis.sif",
        *INNER,
    ]


def test_singularity_takes_the_same_syntax_with_nv_for_gpus_and_options_before_the_image():
    box = Container(
        "docker://python:3.12",
        "singularity",
        gpus=True,
        options=["--cleanenv"],
        binds=["/data", "/scratch/me:/scratch"],
        executable="singularity",
    )
    assert command(box, INNER, ["/w"], "/w") == [
        "singularity",
        "exec",
        "--nv",
        "--bind",
        "/w:/w",
        "--bind",
        "/data:/data",
        "--bind",
        "/scratch/me:/scratch",
        "--pwd",
        "/w",
        "--cleanenv",
        "docker://python:3.12",
        *INNER,
    ]


def test_podman_run_removes_the_container_keeps_the_users_id_and_passes_the_array_variable():
    box = Container("python:3.12-slim", "podman", gpus=True, executable="/usr/bin/podman")
    argv = command(
        box, INNER, ["/w"], "/home/me", environment=["SLURM_ARRAY_TASK_ID"], user=(1000, 100)
    )
    assert argv == [
        # podman run [options] image [command [arg ...]]
        "/usr/bin/podman",
        "run",
        "--rm",
        "--userns=keep-id",
        "--device",
        "nvidia.com/gpu=all",
        "-v",
        "/w:/w",
        "-v",
        "/home/me:/home/me",
        "-w",
        "/home/me",
        "-e",
        "SLURM_ARRAY_TASK_ID",
        "python:3.12-slim",
        *INNER,
    ]


def test_rootful_podman_gets_no_keep_id_which_it_refuses_for_root():
    box = Container("python:3.12-slim", "podman", executable="podman")
    assert "--userns=keep-id" not in command(box, INNER, ["/w"], "/w", user=(0, 0))


def test_docker_run_as_the_job_user_with_all_gpus():
    box = Container("python:3.12-slim", "docker", gpus=True, options=["--network", "none"])
    argv = command(box, INNER, ["/w"], "/w", environment=["SGE_TASK_ID"], user=(1000, 100))
    assert argv == [
        # docker run [OPTIONS] IMAGE [COMMAND] [ARG...]
        "docker",
        "run",
        "--rm",
        "--user",
        "1000:100",
        "--gpus",
        "all",
        "-v",
        "/w:/w",
        "-w",
        "/w",
        "-e",
        "SGE_TASK_ID",
        "--network",
        "none",
        "python:3.12-slim",
        *INNER,
    ]


def test_charliecloud_ch_run_binds_changes_directory_and_separates_the_command_with_dashes():
    box = Container("/images/analysis", "charliecloud", binds=["/usr"], executable="/bin/ch-run")
    argv = command(box, INNER, ["/w"], "/home/me")
    # A shell that sets $USER, which ch-run needs, then execs ch-run itself.
    assert argv[:2] == ["/bin/sh", "-c"]
    assert argv[3:] == [
        # ch-run [OPTION...] IMAGE -- CMD [ARG...]
        "/bin/ch-run",
        "-b",
        "/w:/w",
        "-b",
        "/home/me:/home/me",
        "-b",
        "/usr:/usr",
        "-c",
        "/home/me",
        "/images/analysis",
        "--",
        *INNER,
    ]


def test_the_charliecloud_wrapper_sets_a_missing_user_and_passes_every_argument_unchanged(
    tmp_path,
):
    fake_ch_run = tmp_path / "ch-run"
    fake_ch_run.write_text('#!/bin/sh\necho "USER=$USER"\nfor a in "$@"; do echo "[$a]"; done\n')
    fake_ch_run.chmod(stat.S_IRWXU)
    box = Container("/img dir", "charliecloud", executable=str(fake_ch_run))
    inner = ["/usr/bin/python3", "-c", "print('a b', \"$HOME\")"]
    argv = command(box, inner, ["/w"], "/w")
    env = {k: v for k, v in os.environ.items() if k != "USER"}
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert lines[0] == f"USER={subprocess.check_output(['id', '-un'], text=True).strip()}"
    assert lines[1:] == [f"[{a}]" for a in argv[4:]]
    kept = subprocess.run(
        argv, env={**env, "USER": "someone"}, capture_output=True, text=True, check=True
    )
    assert kept.stdout.splitlines()[0] == "USER=someone"


def test_a_path_is_mounted_once_and_the_root_never():
    box = Container("img", "docker")
    argv = command(box, INNER, ["/w", "/w"], "/")
    assert argv.count("/w:/w") == 1
    assert "/:/" not in argv


@pytest.mark.parametrize(
    "fields, words",
    [
        (dict(image="img.sif", runtime="apptainr"), ["apptainr", "apptainer", "charliecloud"]),
        (dict(image="img", runtime="ch-run"), ["Charliecloud"]),
        (dict(image="", runtime="docker"), ["image"]),
        (dict(image="img", runtime="docker", options="--network host"), ["list of strings"]),
        (dict(image="img", runtime="docker", binds=["data"]), ["absolute", "data"]),
        (dict(image="img", runtime="docker", binds=["/a:/b:/c"]), ["':'"]),
        (dict(image="img.sif", runtime="apptainer", binds=["/a,b"]), ["','"]),
        (dict(image="img", runtime="docker", gpus="yes"), ["gpus"]),
    ],
)
def test_a_container_that_cannot_run_is_refused_with_what_is_wrong(fields, words):
    with pytest.raises(pypoolparty.BadInput) as error:
        Container(**fields)
    for word in words:
        assert word in str(error.value)


def test_the_pool_refuses_a_bare_image_name_and_asks_for_the_runtime(tmp_path):
    with pytest.raises(pypoolparty.BadInput, match="runtime="):
        pypoolparty.local.Pool(container="img.sif", work_dir=tmp_path)


def test_the_pool_refuses_a_work_dir_the_runtime_cannot_mount_before_any_map(tmp_path):
    with pytest.raises(pypoolparty.BadInput, match="':'"):
        pypoolparty.local.Pool(
            container=Container("img", "docker"), work_dir=tmp_path / "a:b", python_path="/p"
        )
    assert not (tmp_path / "a:b").exists()


def test_python_path_names_the_images_interpreter_absent_here_but_still_absolute(tmp_path):
    box = Container("img", "docker")
    pool = pypoolparty.local.Pool(
        container=box, work_dir=tmp_path, python_path="/opt/conda/bin/python"
    )
    assert pool.settings.python_path == "/opt/conda/bin/python"
    with pytest.raises(pypoolparty.BadInput, match="absolute"):
        pypoolparty.local.Pool(container=box, work_dir=tmp_path, python_path="python3")
    with pytest.raises(pypoolparty.BadInput, match="does not exist"):
        pypoolparty.local.Pool(work_dir=tmp_path, python_path="/opt/conda/bin/python")


def test_the_runtime_is_found_on_path_and_a_relative_image_file_made_absolute(
    tmp_path, monkeypatch
):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apptainer").write_text("#!/bin/sh\n")
    (bin_dir / "apptainer").chmod(stat.S_IRWXU)
    (tmp_path / "img.sif").write_text("")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.chdir(tmp_path)
    box = containers.for_pool(Container("img.sif", "apptainer"))
    assert box.executable == str(bin_dir / "apptainer")
    assert box.image == str(tmp_path / "img.sif")
    # Not found here: the name, for the nodes' PATH; an image name stays a name.
    docker = containers.for_pool(Container("img.sif", "docker"))
    assert (docker.executable, docker.image) == ("docker", "img.sif")
    given = containers.for_pool(Container("img.sif", "apptainer", executable="/opt/bin/apptainer"))
    assert given.executable == "/opt/bin/apptainer"


def test_the_worker_call_runs_the_worker_inside_the_image_from_the_submitting_directory():
    box = Container("img", "docker", executable="docker")
    call = WorkerCall(
        python_path="/usr/bin/python3",
        script_path="/w/map-1/worker.py",
        session_dir="/w/map-1",
        container=box,
        working_dir="/home/me",
    )
    argv = call.arguments(ichunk_from_env="SLURM_ARRAY_TASK_ID")
    image = argv.index("img")
    assert argv[image + 1 :] == [
        "/usr/bin/python3",
        "/w/map-1/worker.py",
        "/w/map-1",
        "--ichunk-from-env",
        "SLURM_ARRAY_TASK_ID",
    ]
    assert argv[:3] == ["docker", "run", "--rm"]
    for pair in (["-v", "/w:/w"], ["-v", "/home/me:/home/me"], ["-w", "/home/me"]):
        assert pair in [argv[i : i + 2] for i in range(image)]
    assert ["-e", "SLURM_ARRAY_TASK_ID"] in [argv[i : i + 2] for i in range(image)]
    assert shlex.split(call.shell_command(ichunk_from_env="SLURM_ARRAY_TASK_ID")) == argv


def test_without_a_container_the_worker_call_is_unchanged():
    call = WorkerCall("/usr/bin/python3", "/w/map-1/worker.py", "/w/map-1", None, "/home/me")
    assert call.arguments(ichunk=2) == [
        "/usr/bin/python3",
        "/w/map-1/worker.py",
        "/w/map-1",
        "--ichunk",
        "2",
    ]


def test_every_pool_takes_the_option_and_documents_it():
    for pool_class in (
        pypoolparty.local.Pool,
        pypoolparty.slurm.array.Pool,
        pypoolparty.slurm.Pool,
        pypoolparty.sun_grid_engine.Pool,
        pypoolparty.htcondor.Pool,
    ):
        assert inspect.signature(pool_class).parameters["container"].default is None
        assert "container : pypoolparty.Container" in pool_class.__doc__


def test_other_tools_names_for_an_image_point_at_the_option():
    with pytest.raises(pypoolparty.UnknownOption, match="container=pypoolparty.Container"):
        pypoolparty.local.Pool(singularity_image="img.sif")


def test_the_executables_path_does_not_make_another_map():
    here = Container("img.sif", "apptainer", executable="/usr/bin/apptainer")
    there = Container("img.sif", "apptainer", executable="/opt/apptainer/bin/apptainer")
    assert here.identity() == there.identity()
    assert here.identity() != Container("other.sif", "apptainer").identity()
