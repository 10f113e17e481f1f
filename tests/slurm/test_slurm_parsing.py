"""The SLURM parsers, fed with output captured from SLURM 22.05 (samples/capture.sh)."""

from __future__ import annotations

import os

import pytest

from pypoolparty.commands import Completed, PermanentError, TransientError
from pypoolparty.scheduler import JobState
from pypoolparty.slurm import parsing
from pypoolparty.slurm.scheduler import cancel_selectors

SAMPLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "samples")


def sample(name: str) -> str:
    with open(os.path.join(SAMPLES, name)) as file:
        return file.read()


def completed(stdout: str = "", stderr: str = "", returncode: int = 0) -> Completed:
    return Completed(("slurm-command",), returncode, stdout, stderr)


def states_of(text: str) -> dict[str, tuple[JobState, str]]:
    records = parsing.squeue_records(completed(text))
    jobids = [record.jobid for record in records]
    return {
        jobid: (status.state, status.scheduler_state)
        for jobid, status in parsing.statuses(records, jobids).items()
    }


# ------------------------------------------------------------------ sbatch


def test_sbatch_parsable_prints_the_job_id():
    assert parsing.submitted_job_id(completed(sample("sbatch_parsable.txt"))) == "3"


def test_sbatch_with_cluster_suffix():
    assert parsing.submitted_job_id(completed("77;othercluster\n")) == "77"


def test_sbatch_without_parsable_is_not_taken_for_an_id():
    with pytest.raises(TransientError):
        parsing.submitted_job_id(completed(sample("sbatch_plain.txt")))


@pytest.mark.parametrize(
    "name, words",
    [
        ("sbatch_rejected_partition.txt", "Invalid partition name specified"),
        ("sbatch_rejected_memory.txt", "Requested node configuration is not available"),
        ("sbatch_rejected_cpus.txt", 'Invalid numeric value "-2" for --cpus-per-task'),
    ],
)
def test_rejections_are_permanent_and_keep_slurms_words(name, words):
    with pytest.raises(PermanentError, match=words):
        parsing.submitted_job_id(completed(stderr=sample(name), returncode=1))


@pytest.mark.parametrize(
    "stderr",
    [
        "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation",
        "sbatch: error: Batch job submission failed: Unable to contact slurm controller "
        "(connect failure)",
        "sbatch: error: Slurm temporarily unable to accept job, sleeping and retrying",
        "",
    ],
)
def test_an_unreachable_controller_is_transient(stderr):
    with pytest.raises(TransientError):
        parsing.submitted_job_id(completed(stderr=stderr, returncode=1))


def test_garbage_instead_of_an_id_is_transient():
    with pytest.raises(TransientError):
        parsing.submitted_job_id(completed("\x1b[31m#### garbage\n"))


# ------------------------------------------------------------------ squeue


def test_running_throttled_array():
    assert states_of(sample("squeue_array_running.txt")) == {
        "6_0": (JobState.RUNNING, "RUNNING"),
        "6_1": (JobState.RUNNING, "RUNNING"),
        **{f"6_{i}": (JobState.PENDING, "PENDING") for i in range(2, 6)},
    }


def test_collapsed_pending_tasks_stand_for_each_task():
    records = parsing.squeue_records(completed(sample("squeue_array_running_collapsed.txt")))
    found = parsing.statuses(records, [f"6_{i}" for i in range(7)])
    assert sorted(found) == [f"6_{i}" for i in range(6)]
    assert found["6_4"].reason == "JobArrayTaskLimit"


def test_finished_failed_and_held_jobs():
    found = states_of(sample("squeue_states.txt"))
    assert found["15_1"] == (JobState.ENDED, "COMPLETED")
    # FAILED: the worker exited non-zero, so no result will come: at once.
    assert found["9"] == (JobState.ERROR, "FAILED")
    assert found["13"] == (JobState.ENDED, "CANCELLED")
    assert found["10"] == (JobState.ERROR, "DEADLINE")
    assert found["12"] == (JobState.ERROR, "PENDING")  # JobHeldAdmin
    assert found["11"] == (JobState.HELD, "PENDING")  # JobHeldUser
    assert found["14_0"] == (JobState.HELD, "PENDING")


def test_requests_the_cluster_can_never_meet_end_the_map_with_a_fix():
    records = [
        parsing.SqueueRecord("21", "21", None, "PENDING", "BadConstraints"),
        parsing.SqueueRecord("22", "22", None, "PENDING", "InvalidAccount"),
    ]
    found = parsing.statuses(records, ["21", "22"])
    assert not found["21"].curable and "sbatch_arguments" in found["21"].fix
    assert found["21"].reason == "BadConstraints"
    assert not found["22"].curable and "sacctmgr" in found["22"].fix


def test_holds_by_slurm_or_an_admin_are_curable_errors_and_a_users_own_hold_is_held():
    found = states_of(sample("squeue_states.txt"))
    admin = parsing.statuses(parsing.squeue_records(completed(sample("squeue_states.txt"))), ["12"])
    assert found["12"][0] is JobState.ERROR and admin["12"].curable
    assert found["11"][0] is JobState.HELD
    # squeue prints a reason sentence with underscores (SLURM's launch failure
    # after a controller restart, issue 17).
    launch = parsing.job_status("PENDING", "launch_failed_requeued_held")
    assert launch.state is JobState.ERROR and launch.curable


def test_hard_errors_of_the_cluster():
    found = states_of(sample("squeue_hard_errors.txt"))
    assert found["19"] == (JobState.ERROR, "NODE_FAIL")
    assert found["20"] == (JobState.ERROR, "TIMEOUT")
    records = parsing.squeue_records(completed(sample("squeue_hard_errors.txt")))
    assert all(status.curable for status in parsing.statuses(records, ["19", "20"]).values())
    assert found["18"] == (JobState.PENDING, "PENDING")  # requeued, BeginTime


def test_whole_array_cancelled_while_pending_covers_its_tasks():
    # "14|14|N/A|CANCELLED|JobHeldUser": a held array cancelled by name; task 1
    # was cancelled alone before and vanished.
    records = parsing.squeue_records(completed(sample("squeue_after_cancel.txt")))
    found = parsing.statuses(records, ["14_0", "14_2", "15_0", "99_1"])
    assert found["14_0"].scheduler_state == "CANCELLED"
    assert found["14_2"].state == JobState.ENDED
    assert found["15_0"].scheduler_state == "COMPLETED"
    assert "99_1" not in found


def test_jobs_purged_from_squeue_are_left_out():
    records = parsing.squeue_records(completed(sample("squeue_states.txt")))
    assert parsing.statuses(records, ["1", "2_5"]) == {}


@pytest.mark.parametrize(
    "stdout",
    [
        "\x1b[31m#### garbage ;; 12|x\n",
        "6_0|6|0|RUNNING\n",
        "6_0|6|0|running|None\n",
        "x|6|0|R|N\n",
    ],
)
def test_unreadable_squeue_output_is_transient(stdout):
    with pytest.raises(TransientError):
        parsing.squeue_records(completed(stdout))


def test_failing_squeue_is_transient():
    stderr = "slurm_load_jobs error: Socket timed out on send/recv operation"
    with pytest.raises(TransientError, match="Socket timed out"):
        parsing.squeue_records(completed(stderr=stderr, returncode=1))


def test_empty_answer_is_no_jobs():
    assert parsing.squeue_records(completed("")) == []


def test_jobs_with_comment():
    text = "41|pypoolparty chunk 3\n42|pypoolparty chunk 4\n"
    assert parsing.jobs_with_comment(completed(text)) == {
        "pypoolparty chunk 3": "41",
        "pypoolparty chunk 4": "42",
    }


# ------------------------------------------------------------------ states


@pytest.mark.parametrize(
    "state, reason, expected",
    [
        ("PENDING", "Priority", JobState.PENDING),
        ("PENDING", "JobArrayTaskLimit", JobState.PENDING),
        ("PENDING", "BeginTime", JobState.PENDING),
        ("REQUEUED", "None", JobState.PENDING),
        ("REQUEUE_FED", "None", JobState.PENDING),
        ("PENDING", "JobHeldUser", JobState.HELD),
        ("PENDING", "job requeued in held state", JobState.HELD),
        ("PENDING", "job_requeued_in_held_state", JobState.HELD),
        ("PENDING", "launch_failed_requeued_held", JobState.ERROR),
        ("REQUEUE_HOLD", "None", JobState.HELD),
        ("PENDING", "JobHeldAdmin", JobState.ERROR),
        ("PENDING", "launch failed requeued held", JobState.ERROR),
        ("PENDING", "DependencyNeverSatisfied", JobState.ERROR),
        ("PENDING", "BadConstraints", JobState.ERROR),
        ("RUNNING", "None", JobState.RUNNING),
        ("COMPLETING", "None", JobState.RUNNING),
        ("CONFIGURING", "None", JobState.RUNNING),
        ("SUSPENDED", "None", JobState.RUNNING),
        ("STOPPED", "None", JobState.RUNNING),
        ("SIGNALING", "None", JobState.RUNNING),
        ("STAGE_OUT", "None", JobState.RUNNING),
        ("RESIZING", "None", JobState.RUNNING),
        ("COMPLETED", "None", JobState.ENDED),
        ("FAILED", "NonZeroExitCode", JobState.ERROR),
        ("CANCELLED", "None", JobState.ENDED),
        ("REVOKED", "None", JobState.ENDED),
        ("FAILED", "JobLaunchFailure", JobState.ERROR),
        ("NODE_FAIL", "NodeDown", JobState.ERROR),
        ("TIMEOUT", "TimeLimit", JobState.ERROR),
        ("OUT_OF_MEMORY", "OutOfMemory", JobState.ERROR),
        ("BOOT_FAIL", "None", JobState.ERROR),
        ("DEADLINE", "DeadLine", JobState.ERROR),
        ("PREEMPTED", "None", JobState.ERROR),
        ("SPECIAL_EXIT", "None", JobState.ERROR),
        ("RESV_DEL_HOLD", "None", JobState.ERROR),
        ("UNHEARD_OF", "None", JobState.UNKNOWN),
    ],
)
def test_job_state(state, reason, expected):
    assert parsing.job_state(state, reason) == expected


# ------------------------------------------------------------------ indices


@pytest.mark.parametrize(
    "expression, indices",
    [
        ("3", [3]),
        ("0-4", [0, 1, 2, 3, 4]),
        ("2-5%2", [2, 3, 4, 5]),
        ("3,7,12%2", [3, 7, 12]),
        ("[1-9:4]", [1, 5, 9]),
    ],
)
def test_task_indices(expression, indices):
    assert parsing.task_indices(expression) == indices


@pytest.mark.parametrize(
    "indices, expression",
    [([0, 1, 2, 5], "0-2,5"), ([7], "7"), ([3, 7, 12], "3,7,12"), ([9, 8, 8, 10, 1], "1,8-10")],
)
def test_index_expression(indices, expression):
    assert parsing.index_expression(indices) == expression
    assert parsing.task_indices(expression) == sorted(set(indices))


# ------------------------------------------------------------------ config and capacity


def test_arrays_with_comment_tell_the_arrays_of_one_name_apart():
    arrays = parsing.jobs_with_comment(completed(sample("squeue_array_comments.txt")))
    assert arrays == {"pypoolparty array 0": "2", "pypoolparty array 1": "3"}


def test_array_comments_retry_what_they_cannot_read():
    with pytest.raises(TransientError):
        parsing.jobs_with_comment(completed("N/A\n"))
    with pytest.raises(TransientError):
        parsing.jobs_with_comment(completed("", "slurm_load_jobs error", returncode=1))


def test_job_explanation_keeps_state_reason_and_exit_code():
    explanation = parsing.job_explanation(completed(sample("scontrol_show_job_held.txt")))
    assert explanation == (
        "JobState=PENDING Reason=JobHeldUser Restarts=0 ExitCode=0:0 RunTime=00:00:00 "
        "TimeLimit=UNLIMITED NodeList="
    )


def test_scancel_of_jobs_already_gone_is_fine():
    assert parsing.cancelled(completed()) is None
    gone = "scancel: error: Kill job error on job id 7: Invalid job id specified"
    assert parsing.cancelled(completed("", gone, returncode=1)) is None
    with pytest.raises(TransientError):
        parsing.cancelled(completed("", "Socket timed out on send/recv", returncode=1))


def test_max_array_size_from_scontrol_show_config():
    config = parsing.scontrol_config(completed(sample("scontrol_show_config.txt")))
    assert parsing.max_array_size(config) == 100001
    assert config["MinJobAge"] == "300 sec"


def test_total_cpus_of_the_default_partition():
    assert parsing.total_cpus(completed(sample("sinfo_partitions_cpus.txt"))) == 2


def test_total_cpus_of_named_partitions():
    text = "debug*|1/1/0/2\ngpu|0/8/0/8\nlong|4/0/4/16\n"
    assert parsing.total_cpus(completed(text), ["gpu", "long"]) == 24
    assert parsing.total_cpus(completed(text), ["nosuch"]) is None


def test_cancel_selectors_group_the_tasks_of_an_array():
    jobids = ["7_3", "7_0", "7_1", "12", "7_9", "8_2", "11"]
    assert cancel_selectors(jobids) == ["11", "12", "7_[0-1,3,9]", "8_[2]"]


def test_a_failed_job_whose_shell_could_not_run_the_interpreter_cannot_be_cured():
    failed = parsing.job_status("FAILED", "NonZeroExitCode")
    assert failed.state is JobState.ERROR and failed.curable
    status = parsing.failed_job_status(failed, completed(sample("scontrol_show_job_exit_127.txt")))
    assert not status.curable and "ExitCode=127:0" in status.reason
    assert "python_path" in status.fix
    held = completed(sample("scontrol_show_job_held.txt"))  # ExitCode=0:0
    assert parsing.failed_job_status(failed, held) is failed


# ------------------------------------------------ time limits and stops


def test_a_time_limit_names_the_option_and_the_clusters_stops_are_told_apart():
    records = parsing.squeue_records(completed(sample("squeue_hard_errors.txt")))
    found = parsing.statuses(records, ["18", "19", "20"], time_limit="time='1' (the 'time' option)")
    assert found["20"].time_limit == "time='1' (the 'time' option)"
    assert not found["20"].by_the_cluster and found["20"].curable
    assert found["19"].by_the_cluster and found["19"].time_limit == ""
    # Requeued: pending again under its id, which the map waits for.
    assert found["18"].state is JobState.PENDING and not found["18"].by_the_cluster


def test_a_warned_job_completes_a_requeued_one_waits_a_timed_out_one_names_its_limit():
    records = parsing.squeue_records(completed(sample("squeue_time_limits.txt")))
    found = parsing.statuses(records, ["2152", "2154_0", "2156_0"], time_limit="time='1'")
    # The worker exited on the warning (--signal=B:USR1@59): the job just completed.
    assert (found["2152"].state, found["2152"].time_limit) == (JobState.ENDED, "")
    # scontrol requeue: pending again under its id, for about two minutes.
    assert (found["2154_0"].state, found["2154_0"].reason) == (JobState.PENDING, "BeginTime")
    assert (found["2156_0"].state, found["2156_0"].time_limit) == (JobState.ERROR, "time='1'")
    requeued = parsing.job_explanation(completed(sample("scontrol_show_job_requeued.txt")))
    assert "Reason=BeginTime Restarts=1" in requeued


def test_preemption_and_boot_failures_are_the_clusters_doing():
    # Not producible on the test cluster (no preemption plugin, no power saving):
    # the states as squeue(1) documents them.
    for state in ("PREEMPTED", "BOOT_FAIL"):
        status = parsing.job_status(state, "None")
        assert status.state is JobState.ERROR and status.by_the_cluster
    assert not parsing.job_status("OUT_OF_MEMORY", "OutOfMemory").by_the_cluster
    assert not parsing.job_status("FAILED", "NonZeroExitCode").time_limit


def test_the_explanation_of_a_job_gives_its_run_time_and_limit():
    explained = parsing.job_explanation(completed(sample("scontrol_show_job_timeout.txt")))
    assert "JobState=TIMEOUT" in explained and "TimeLimit=00:01:00" in explained
    assert "RunTime=" in explained


def test_a_time_limit_warning_is_the_jobs_own_sbatch_option_unless_the_user_has_one():
    from pypoolparty.slurm.options import checked_options

    assert checked_options(time="2:00:00").arguments()[-1] == "--signal=B:USR1@60"
    # Under two minutes, half the limit: SLURM may send it up to a minute early.
    assert checked_options(time=1).arguments()[-1] == "--signal=B:USR1@30"
    assert not any(
        a.startswith("--signal") for a in checked_options(time_limit_warning=0).arguments()
    )
    users = checked_options(time=10, sbatch_arguments=["--signal=B:USR2@120"])
    assert [a for a in users.arguments() if a.startswith("--signal")] == ["--signal=B:USR2@120"]
    assert users.warning_signal() == "SIGUSR2"
    assert checked_options().warning_signal() == "SIGUSR1"
