import pytest

from pypoolparty import environment

SUBMIT_HOST = {
    "PATH": "/usr/bin",
    "MY_TOKEN": "secret",
    "SLURM_JOB_ID": "17",
    "SGE_TASK_ID": "3",
    "_CONDOR_SCRATCH_DIR": "/scratch",
    "TMPDIR": "/tmp/x",
    "HOSTNAME": "login1",
    "CUDA_VISIBLE_DEVICES": "0",
}


def test_default_exports_all_but_host_and_job_variables():
    exported = environment.Selection.parse("default").select(SUBMIT_HOST)
    assert exported == {"PATH": "/usr/bin", "MY_TOKEN": "secret"}


def test_all_none_and_names():
    assert environment.Selection.parse("all").select(SUBMIT_HOST) == SUBMIT_HOST
    assert environment.Selection.parse("none").select(SUBMIT_HOST) == {}
    names = environment.Selection.parse(["MY_TOKEN", "ABSENT"])
    assert names.select(SUBMIT_HOST) == {"MY_TOKEN": "secret"}


@pytest.mark.parametrize("bad", ["everything", ["A=B"], [""], [3]])
def test_bad_selections_are_refused(bad):
    with pytest.raises(ValueError, match="environment"):
        environment.Selection.parse(bad)


def test_job_variables_are_recognised():
    for name in ("SLURM_ARRAY_TASK_ID", "SGE_TASK_ID", "_CONDOR_SLOT", "TMPDIR", "JOB_ID"):
        assert environment.belongs_to_host_or_job(name)
    assert not environment.belongs_to_host_or_job("PYTHONPATH")
