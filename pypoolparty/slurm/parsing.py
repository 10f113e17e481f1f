"""Pure functions that read SLURM's command output (SLURM 22.05 and later).

Every function here takes text (or a :class:`~pypoolparty.commands.Completed`)
and returns plain values, so each is tested with output captured from a real
SLURM (``tests/slurm/samples/``). Output we cannot read raises
:class:`~pypoolparty.commands.TransientError`, which makes
:func:`pypoolparty.commands.call` retry; a submission SLURM refuses raises
:class:`~pypoolparty.commands.PermanentError`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence

from ..commands import Completed, PermanentError, TransientError
from ..scheduler import JobState, JobStatus, incurable, stopped_by_the_cluster, timed_out

SQUEUE_FORMAT = "%i|%F|%K|%T|%r"
"""Job id, array job id, array task index (or index expression), long state, reason."""

SQUEUE_COMMENT_FORMAT = "%i|%k"
"""Job id and the job's comment, used to find a single job again by its chunk."""

SQUEUE_ARRAY_COMMENT_FORMAT = "%F|%k"
"""Array job id and the array's comment, used to find the arrays of a submission again."""

# Words in a failing command's message that say SLURM is busy or unreachable,
# not that it refuses: such a call is retried.
TRANSIENT_MESSAGES = (
    "socket timed out",
    "unable to contact slurm controller",
    "temporarily unavailable",
    "temporarily unable",
    "communication connection failure",
    "connection refused",
    "zero bytes were transmitted",
    "slurmctld is not responding",
    "job submit limit",
    "too many pending jobs",
    "qosmaxsubmitjob",
    "error in the file system",
)

# -------------------------------------------------------------------- states

RUNNING_STATES = frozenset(
    {
        "RUNNING",
        "COMPLETING",
        "CONFIGURING",
        "SUSPENDED",
        "STOPPED",
        "RESIZING",
        "SIGNALING",
        "STAGE_OUT",
    }
)
PENDING_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_FED"})
# The job ended; its result file decides between success and a job that died
# (CANCELLED: scancel from outside, maybe after the result was written). The
# session waits a grace period for the file, so a result that a shared file
# system shows late is never thrown away.
ENDED_STATES = frozenset({"COMPLETED", "CANCELLED", "REVOKED"})
# Ended and failed, never with a result: handled at once. FAILED is a
# non-zero exit of the job script, which the worker gives only when it could
# not write its outcome (or it died of a signal: a segfault in a task).
ERROR_STATES = frozenset(
    {
        "FAILED",
        "NODE_FAIL",
        "TIMEOUT",
        "OUT_OF_MEMORY",
        "BOOT_FAIL",
        "DEADLINE",
        "PREEMPTED",
        "SPECIAL_EXIT",
        "RESV_DEL_HOLD",
    }
)
# Of those, the cluster's doing, not the job's: the chunk runs again without
# counting a resubmission. A job SLURM requeues itself (scontrol requeue, a
# node failure of a job that may be requeued) shows PENDING again instead, under
# its own id, and the map waits for it.
STOPPED_BY_THE_CLUSTER_STATES = frozenset({"PREEMPTED", "NODE_FAIL", "BOOT_FAIL"})
# The job's time limit (--time): the unfinished tasks run again, unless the job
# finished none (see pypoolparty.stops).
TIME_LIMIT_STATES = frozenset({"TIMEOUT"})
TIME_LIMIT = "the jobs' time limit (SLURM TIMEOUT; the pool's 'time' option, sbatch --time)"
"""The words for the limit when the caller has none better (:func:`job_status`)."""
# Held on purpose by the job's owner: report it, never resubmit. squeue prints
# a reason that is a sentence (the job's state_desc) with underscores for its
# spaces: reasons are compared in that form (see :func:`_reason_word`).
USER_HOLD_STATES = frozenset({"REQUEUE_HOLD"})
USER_HOLD_REASONS = frozenset({"JobHeldUser", "job_requeued_in_held_state"})
# Pending for a reason that will not go away by waiting, but that a new job
# may escape: held by an admin or by SLURM itself (a launch that failed on a
# broken node). Releasing is not ours to do: cancel and resubmit.
ERROR_REASONS = frozenset(
    {
        "JobHeldAdmin",
        "launch_failed_requeued_held",
        "JobLaunchFailure",
        "SystemFailure",
    }
)
# Pending for a reason that does not clear by itself (see "JOB REASON CODES"
# in squeue(1) and slurm.schedmd.com/job_reason_codes.html): the partition is
# down or the request is beyond what it allows, the nodes it needs are down,
# drained or reserved, or the account or QOS may not use it. A limit on what
# runs at once (AssocMaxJobsLimit, QOSMaxJobsPerUserLimit, AssocGrp*Limit,
# JobArrayTaskLimit) clears when other jobs end and is not here.
BLOCKED_REASONS = frozenset(
    {
        "PartitionDown",
        "PartitionInactive",
        "PartitionConfig",
        "PartitionNodeLimit",
        "PartitionTimeLimit",
        "NodeDown",
        "FrontEndDown",
        "ReqNodeNotAvail",
        "AccountNotAllowed",
        "QOSNotAllowed",
    }
)
# The request itself exceeds a per-job or per-node maximum (or is below a
# minimum) of the association or QOS, e.g. QOSMaxWallDurationPerJobLimit;
# or a budget of minutes is used up (AssocGrpCPUMinutesLimit), which only
# an administrator's reset or slow decay clears.
BLOCKED_REASON_PATTERN = re.compile(
    r"^(Assoc|QOS)(Max\w*Per(Job|Node)\w*|Min\w*|Grp\w*(?<!Run)Minutes\w*)$"
)
# squeue prints the scheduler's own words instead of the code for some of them.
BLOCKED_REASON_WORDS = ("Nodes required for job are DOWN, DRAINED",)


def is_blocked(reason: str) -> bool:
    """Whether a pending job's reason (``squeue %r``) does not clear by itself.

    ``ReqNodeNotAvail, UnavailableNodes:n[1-4]`` counts by its code, before
    the comma.

    >>> is_blocked("PartitionTimeLimit"), is_blocked("Priority")
    (True, False)
    """
    reason = reason.strip()
    code = reason.split(",", 1)[0].strip()
    return (
        code in BLOCKED_REASONS
        or BLOCKED_REASON_PATTERN.match(code) is not None
        or reason.startswith(BLOCKED_REASON_WORDS)
    )


# A request this cluster can never satisfy: a new job would wait the same
# way, so the map ends with what to change.
INCURABLE_REASONS = {
    "BadConstraints": (
        "No node of the partition can ever give what the job asks for (memory, CPUs, "
        "GPUs, features, time): ask for less with the pool's resource options or "
        "sbatch_arguments, or choose another partition (sinfo -o '%P %c %m %G %f %l' "
        "lists what each has)."
    ),
    "InvalidAccount": (
        "SLURM knows no association of yours with this account: pass an account you "
        "belong to (sacctmgr show associations user=$USER lists them), or none."
    ),
    "InvalidQOS": (
        "Your account may not use this QOS: pass one it may use (sacctmgr show "
        "associations user=$USER format=account,qos), or none."
    ),
    "DependencyNeverSatisfied": (
        "The job depends on a job that ended in a way the dependency excludes: "
        "remove --dependency from sbatch_arguments."
    ),
}


def job_status(state: str, reason: str = "", time_limit: str = TIME_LIMIT) -> JobStatus:
    """The :class:`JobStatus` of SLURM's long job state (``squeue %T``) and reason (``%r``).

    States and reasons that say the job can never run (:data:`INCURABLE_REASONS`)
    carry the fix the user must make; TIMEOUT is the job's time limit
    (:func:`~pypoolparty.scheduler.timed_out`, named by ``time_limit``);
    PREEMPTED, NODE_FAIL and BOOT_FAIL are the cluster's doing
    (:func:`~pypoolparty.scheduler.stopped_by_the_cluster`); see
    :func:`job_state` for the rest.
    """
    word = _reason_word(reason)
    state_word = state.strip().rstrip("+").upper()
    if word in INCURABLE_REASONS and state_word not in ("COMPLETED", "CANCELLED"):
        return incurable(state.strip(), reason.strip(), INCURABLE_REASONS[word])
    if state_word in TIME_LIMIT_STATES:
        return timed_out(state.strip(), reason.strip(), time_limit)
    if state_word in STOPPED_BY_THE_CLUSTER_STATES:
        return stopped_by_the_cluster(state.strip(), reason.strip())
    job_state_ = job_state(state, reason)
    blocked = job_state_ is JobState.PENDING and is_blocked(reason)
    return JobStatus(job_state_, state.strip(), reason.strip(), blocked=blocked)


def _reason_word(reason: str) -> str:
    """A reason as squeue prints it: a sentence's spaces become underscores."""
    return reason.strip().replace(" ", "_")


def job_state(state: str, reason: str = "") -> JobState:
    """Map SLURM's long job state (``squeue %T``) and reason (``%r``) to a JobState.

    Every state of SLURM 22.05's ``squeue(1)`` is known; anything else is
    :attr:`JobState.UNKNOWN` (keep waiting). Short states (``%t``) are not
    accepted. A hold by an admin or by SLURM itself is an error (cancel and
    resubmit), a hold by the job's user is :attr:`JobState.HELD`.
    """
    state = state.strip().rstrip("+").upper()
    reason = _reason_word(reason)
    blocking = ERROR_REASONS | INCURABLE_REASONS.keys()
    if reason in blocking and state not in ("COMPLETED", "CANCELLED"):
        return JobState.ERROR
    if state in USER_HOLD_STATES or (state in PENDING_STATES and reason in USER_HOLD_REASONS):
        return JobState.HELD
    if state in PENDING_STATES:
        return JobState.PENDING
    if state in RUNNING_STATES:
        return JobState.RUNNING
    if state in ENDED_STATES:
        return JobState.ENDED
    if state in ERROR_STATES:
        return JobState.ERROR
    return JobState.UNKNOWN


# -------------------------------------------------------------------- sbatch


def submitted_job_id(completed: Completed) -> str:
    """The job id printed by ``sbatch --parsable`` (``123`` or ``123;cluster``)."""
    if completed.returncode != 0:
        raise_for_failed_command(completed)
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    jobid = lines[-1].split(";")[0].strip() if lines else ""
    if not jobid.isdigit():
        raise TransientError(f"sbatch printed no job id: {completed.describe()}")
    return jobid


def raise_for_failed_command(completed: Completed) -> None:
    """Raise TransientError for a busy/unreachable SLURM, PermanentError otherwise."""
    message = completed.describe()
    if any(words in message.lower() for words in TRANSIENT_MESSAGES):
        raise TransientError(message)
    if "error:" in message:
        raise PermanentError(_slurm_errors(completed) or message)
    raise TransientError(message)


def _slurm_errors(completed: Completed) -> str:
    lines = (completed.stderr + "\n" + completed.stdout).splitlines()
    return "\n".join(line.strip() for line in lines if "error:" in line)


# -------------------------------------------------------------------- squeue


@dataclasses.dataclass(frozen=True)
class SqueueRecord:
    """One line of ``squeue -o '%i|%F|%K|%T|%r'``."""

    jobid: str
    array_job_id: str
    task_indices: tuple[int, ...] | None
    """The array task(s) this line stands for; ``None`` for a job that is not an
    array task, or for a whole array that was cancelled while pending."""

    state: str
    reason: str


def squeue_records(completed: Completed) -> list[SqueueRecord]:
    """Parse ``squeue -h -o '%i|%F|%K|%T|%r'``; any line we cannot read is transient."""
    if completed.returncode != 0:
        raise TransientError(f"squeue failed: {completed.describe()}")
    return [_squeue_record(line) for line in completed.stdout.splitlines() if line.strip()]


def _squeue_record(line: str) -> SqueueRecord:
    fields = line.strip().split("|")
    if len(fields) != 5:
        raise TransientError(f"squeue printed a line we cannot read: {line[:200]!r}")
    jobid, array_job_id, task, state, reason = (field.strip() for field in fields)
    if not array_job_id.isdigit() or not re.match(r"^\d+(_.+)?$", jobid):
        raise TransientError(f"squeue printed a line we cannot read: {line[:200]!r}")
    if not re.match(r"^[A-Z_]+$", state):
        raise TransientError(f"squeue printed a state we cannot read: {line[:200]!r}")
    try:
        indices = None if task == "N/A" else tuple(task_indices(task))
    except ValueError as error:
        raise TransientError(f"squeue printed a task index we cannot read: {line!r}") from error
    return SqueueRecord(jobid, array_job_id, indices, state, reason)


def task_indices(expression: str) -> list[int]:
    """Expand an array index expression such as ``3``, ``0-99%10``, ``3,7,12`` or ``1-9:2``."""
    expression = expression.split("%")[0].strip("[]")
    indices: list[int] = []
    for part in expression.split(","):
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part.strip())
        if match is None:
            raise ValueError(f"not an array index expression: {expression!r}")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        step = int(match.group(3) or 1)
        indices.extend(range(first, last + 1, step))
    return indices


def index_expression(indices: Iterable[int]) -> str:
    """The shortest ``--array`` list for ``indices``: ``[0, 1, 2, 5]`` -> ``0-2,5``."""
    ordered = sorted(set(indices))
    parts = []
    start = previous = None
    for index in ordered + [None]:
        if previous is not None and index == previous + 1:
            previous = index
            continue
        if start is not None:
            parts.append(str(start) if start == previous else f"{start}-{previous}")
        start = previous = index
    return ",".join(parts)


def statuses(
    records: Sequence[SqueueRecord], jobids: Iterable[str], time_limit: str = TIME_LIMIT
) -> dict[str, JobStatus]:
    """The status of each of ``jobids`` that ``records`` mention.

    ``time_limit`` names the jobs' time limit for a TIMEOUT (see :func:`job_status`).

    A job id is ``<array id>_<index>`` for an array task and plain for a single
    job. A line without a task index for an array id (what ``squeue`` shows
    for an array cancelled while pending) stands for each of its tasks that has
    no line of its own. Jobs that no line mentions are left out.
    """
    wanted = set(jobids)
    found: dict[str, JobStatus] = {}
    whole_arrays: dict[str, JobStatus] = {}
    for record in records:
        status = job_status(record.state, record.reason, time_limit)
        if record.task_indices is None:
            if record.jobid in wanted:
                found[record.jobid] = status
            whole_arrays[record.array_job_id] = status
            continue
        for index in record.task_indices:
            jobid = f"{record.array_job_id}_{index}"
            if jobid in wanted:
                found[jobid] = status
    for jobid in wanted - set(found):
        array_job_id = jobid.split("_")[0]
        if "_" in jobid and array_job_id in whole_arrays:
            found[jobid] = whole_arrays[array_job_id]
    return found


def jobs_with_comment(completed: Completed) -> dict[str, str]:
    """Parse ``squeue -h -o '%i|%k'`` into ``{comment: jobid}``.

    Also reads ``'%F|%k'`` (:data:`SQUEUE_ARRAY_COMMENT_FORMAT`), giving
    ``{comment: array job id}``.
    """
    if completed.returncode != 0:
        raise TransientError(f"squeue failed: {completed.describe()}")
    found = {}
    for line in completed.stdout.splitlines():
        jobid, separator, comment = line.strip().partition("|")
        if not separator or not jobid.isdigit():
            raise TransientError(f"squeue printed a line we cannot read: {line[:200]!r}")
        found[comment] = jobid
    return found


# -------------------------------------------------------------------- scancel


def cancelled(completed: Completed) -> None:
    """Check a ``scancel``: jobs already gone are fine, as cancelling is idempotent.

    scancel is silent and exits 0 for jobs that are gone; older versions
    complain about them. Anything else raises as :func:`raise_for_failed_command`.
    """
    if completed.returncode == 0:
        return None
    message = completed.describe().lower()
    if "invalid job id" in message or "already completing or completed" in message:
        return None
    raise_for_failed_command(completed)
    return None


# ------------------------------------------------------- scontrol and sinfo


def job_explanation(completed: Completed) -> str:
    """State, reason, exit code, restarts, run time, time limit and nodes of
    ``scontrol show job``, as one line."""
    wanted = (
        "JobState=",
        "Reason=",
        "ExitCode=",
        "Restarts=",
        "RunTime=",
        "TimeLimit=",
        "NodeList=",
    )
    return " ".join(word for word in completed.stdout.split() if word.startswith(wanted))


INTERPRETER_FIX = (
    "The job's shell could not run the interpreter (exit code 127: not found, "
    "126: not executable): pass a python_path that exists and is executable on "
    "every compute node; the job's standard error names the path."
)


def failed_job_status(status: JobStatus, completed: Completed) -> JobStatus:
    """``status`` of a FAILED job, made incurable if ``scontrol show job`` says why.

    The job script starts the interpreter as its only command, so the shell's
    exit code 127 (not found) or 126 (not executable) means the
    ``python_path`` cannot be run on that node: no resubmission cures that.
    Any other exit code (the worker could not write its result, a signal)
    leaves ``status`` as it is.
    """
    match = re.search(r"\bExitCode=(\d+):(\d+)", completed.stdout)
    if match is None or match.group(1) not in ("126", "127"):
        return status
    reason = f"{status.reason}; ExitCode={match.group(1)}:{match.group(2)}"
    return incurable(status.scheduler_state, reason, INTERPRETER_FIX)


def scontrol_config(completed: Completed) -> dict[str, str]:
    """Parse ``scontrol show config`` into ``{name: value}``."""
    if completed.returncode != 0:
        raise_for_failed_command(completed)
    config = {}
    for line in completed.stdout.splitlines():
        name, separator, value = line.partition("=")
        if separator and name.strip() and " " not in name.strip():
            config[name.strip()] = value.strip()
    if not config:
        raise TransientError("scontrol show config printed nothing we can read")
    return config


def site_max_array_size(completed: Completed) -> int | None:
    """``MaxArraySize`` from ``scontrol show config``; ``None`` if it does not say."""
    return max_array_size(scontrol_config(completed))


def max_array_size(config: dict[str, str]) -> int | None:
    """``MaxArraySize`` of ``scontrol show config``: array indices must be below it."""
    value = config.get("MaxArraySize", "")
    return int(value) if value.isdigit() else None


def total_cpus(completed: Completed, partitions: Sequence[str] = ()) -> int | None:
    """Total CPUs from ``sinfo -h -o '%P|%C'`` for ``partitions`` (default: the
    default partition, marked ``*``); ``None`` if none of them is listed."""
    if completed.returncode != 0:
        raise TransientError(f"sinfo failed: {completed.describe()}")
    total = None
    for line in completed.stdout.splitlines():
        if not line.strip():
            continue
        partition, _, cpus = line.strip().partition("|")
        counts = cpus.split("/")
        if len(counts) != 4 or not all(count.isdigit() for count in counts):
            raise TransientError(f"sinfo printed a line we cannot read: {line[:200]!r}")
        is_default = partition.endswith("*")
        if (partition.rstrip("*") in partitions) if partitions else is_default:
            total = (total or 0) + int(counts[3])
    return total
