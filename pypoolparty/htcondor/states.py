"""What HTCondor's JobStatus codes and job events mean for the session."""

from __future__ import annotations

import re

from ..scheduler import JobState, JobStatus, failed, incurable, timed_out
from . import eventlog, parsing

USER_REQUEST_HOLD_CODE = 1
"""HoldReasonCode of ``condor_hold`` by a person: the job's own user's is left
alone, never resubmitted; an administrator's is an error (releasing is not ours)."""

SUBMITTED_ON_HOLD_CODE = 15
"""HoldReasonCode of a job submitted with ``hold = True``: the user asked for it."""

_WORK_DIR_FIX = (
    "The jobs run as a user who cannot reach the work_dir (HTCondor never runs a "
    "job as root; condor_q -af Owner shows the user): pass a work_dir on a file "
    "system the execute nodes mount, that this user may enter, read and write."
)
_WORK_DIR_FIX_FOR_ROOT = (
    "The jobs run as a user who cannot reach the work_dir: you submitted as root, "
    "and HTCondor never runs a job as root (condor_q -af Owner shows the user), while "
    "the session directories pypoolparty makes in any work_dir are root's and "
    "private, so another work_dir fails the same way. Submit as the user the jobs "
    "run as (see 'Who runs the jobs' in pypoolparty's HTCondor documentation), or "
    "pass shared_file_system=False, which sends the job its files (with a "
    "python_path that user may run)."
)
ROOT_USER = "root"
"""The submitter for whom :data:`_WORK_DIR_FIX_FOR_ROOT` replaces :data:`_WORK_DIR_FIX`."""
_INTERPRETER_FIX = (
    "HTCondor cannot start the job's interpreter: pass a python_path that exists on "
    "the execute nodes and that the job's user may run (condor_q -af Owner shows "
    "who that is; HTCondor never runs a job as root)."
)
_LAUNCHER_FIX = (
    "The job's launcher could not run the interpreter (exit code 127: not found, "
    "126: not executable): pass a python_path that exists on the execute nodes and "
    "that the job's user may run; the job's standard error names the path."
)
INCURABLE_HOLD_CODES = {
    6: _INTERPRETER_FIX,  # FailedToCreateProcess
    7: _WORK_DIR_FIX,  # UnableToOpenOutput
    8: _WORK_DIR_FIX,  # UnableToOpenInput
    9: _WORK_DIR_FIX,  # UnableToOpenOutputStream
    10: _WORK_DIR_FIX,  # UnableToOpenInputStream
    14: _WORK_DIR_FIX,  # IwdError: cannot access the initial working directory
    22: _WORK_DIR_FIX,  # UnableToInitUserLog: the job event log in the work_dir
    23: (  # FailedToAccessUserAccount
        "The execute nodes cannot run jobs as your user (no such account there): ask "
        "the pool's administrators, or submit from an account the nodes know."
    ),
    25: "Correct the cron_* commands of submit_directives.",  # InvalidCronSettings
    32: (  # MaxTransferInputSizeExceeded
        "The job's input files exceed the pool's MAX_TRANSFER_INPUT_MB: transfer "
        "less with submit_directives, or keep the files on the shared file system."
    ),
    33: (  # MaxTransferOutputSizeExceeded
        "The job's output files exceed the pool's MAX_TRANSFER_OUTPUT_MB: transfer "
        "less with submit_directives."
    ),
    35: "Pass a container image the execute nodes can pull and run.",  # InvalidDockerImage
    45: (  # SingularityTestFailed
        "The execute node cannot run the container image: check the image with "
        "apptainer exec on a node, or pass another one."
    ),
}
"""Hold reason codes no resubmission cures, with what to change. From the
``HoldReasonCode`` table of the HTCondor manual (job ClassAd attributes), as
HTCondor 23.9's bindings number them (``htcondor.HoldReasonCode``): paths and
permissions, a process that cannot be created, invalid submit settings. Every
other hold (a policy, the system, an admin, a starter or shadow that failed)
is an error that a resubmission may cure."""

_TRANSFER_HOLD_CODES = (12, 13)
"""TransferOutputError and TransferInputError: incurable when their subcode (an
errno) says a file is missing or forbidden, else perhaps a network hiccup."""
_PATH_ERRNOS = (2, 13)  # ENOENT, EACCES

POLICY_HOLD_CODE = 3
"""HoldReasonCode of a ``periodic_hold`` / ``on_exit_hold`` expression of the
job, or a ``SYSTEM_PERIODIC_HOLD`` of the pool, that became true."""

DURATION_HOLD_CODES = {
    46: "allowed_job_duration",  # JobDurationExceeded
    47: "allowed_execute_duration",  # JobExecuteExceeded
}
"""HoldReasonCodes of HTCondor's own run time limits, with the submit command
that sets each (seen for real: "The job exceeded allowed job duration of
00:05", Code 46)."""

RUN_TIME_WORDS = re.compile(
    r"RemoteWallClockTime|JobCurrentStartDate|JobStartDate|JobCurrentStartExecutingDate"
    r"|CumulativeSlotTime|RemoteUserCpu|MaxRun ?Time|MaxWall ?Time|MaxJobRetirementTime"
    r"|wall ?(clock )?time|run ?time|JobStatus\s*(==|=\?=)\s*2\b.*EnteredCurrentStatus",
    flags=re.IGNORECASE,
)
"""What a policy expression (or a site's own hold reason) says when it limits
how long a job runs: the job attributes of its run time, or words such as
``MaxRuntime``, the name many pools give that limit."""

_POLICY_EXPRESSION = re.compile(r"(PeriodicHold|PeriodicRemove|SYSTEM_PERIODIC_\w+)")
_POLICY_OPTIONS = {
    "PeriodicHold": "the periodic_hold expression in the pool's submit_directives",
    "PeriodicRemove": "the periodic_remove expression in the pool's submit_directives",
}


def time_limit_of(reason: str, code: int | None = None) -> str:
    """The run time limit a hold or a removal reports, named with what sets it; '' if none.

    Parameters
    ----------
    reason : str
        The HoldReason, or the RemoveReason of an abort event, e.g. "The job
        attribute PeriodicHold expression '(time() - JobCurrentStartDate) > 5'
        evaluated to TRUE".
    code : int, optional
        The HoldReasonCode (None for a removal).

    Returns
    -------
    str
        For ``allowed_job_duration`` and ``allowed_execute_duration`` holds
        (:data:`DURATION_HOLD_CODES`), and for a policy hold or removal whose
        expression limits the run time (:data:`RUN_TIME_WORDS`): the limit and
        the option to raise. A policy of the pool itself
        (``SYSTEM_PERIODIC_HOLD``, a site's ``+MaxRuntime``) is named as such.
    """
    if code in DURATION_HOLD_CODES:
        option = DURATION_HOLD_CODES[code]
        return f"HTCondor's {option} (the pool's submit_directives['{option}'])"
    if code not in (None, POLICY_HOLD_CODE) or not RUN_TIME_WORDS.search(reason):
        return ""
    expression = _POLICY_EXPRESSION.search(reason)
    if expression is not None and expression.group(1) in _POLICY_OPTIONS:
        return f"HTCondor's run time policy ({_POLICY_OPTIONS[expression.group(1)]})"
    return (
        "the HTCondor pool's run time policy (a limit of the pool, often +MaxRuntime "
        "in submit_directives where the pool reads it; ask its administrators)"
    )


_HELD_BY = re.compile(r"\(by user ([^)\s]+)\)")
"""How ``condor_hold`` names who held the job in the HoldReason."""

JOB_STATUS_NAMES = {
    "1": "Idle",
    "2": "Running",
    "3": "Removed",
    "4": "Completed",
    "5": "Held",
    "6": "Transferring Output",
    "7": "Suspended",
}


def describe_hold(reason: str, code: int | None, subcode: int | None = None) -> str:
    words = reason or "no HoldReason given"
    if code is not None:
        words += f" (HoldReasonCode {code}"
        words += f", HoldReasonSubCode {subcode})" if subcode is not None else ")"
    return words


def held_status(
    scheduler_state: str,
    reason: str,
    code: int | None,
    subcode: int | None = None,
    user: str | None = None,
) -> JobStatus:
    """What a hold means for the session.

    Parameters
    ----------
    scheduler_state : str
        How the adapter saw the hold, e.g. ``5 (Held)`` or ``event 012 (held)``.
    reason, code, subcode : str, int or None
        HoldReason, HoldReasonCode and HoldReasonSubCode.
    user : str, optional
        The user who submitted the jobs. A ``condor_hold`` whose reason names
        another user ("by user root") is an administrator's hold.

    Returns
    -------
    JobStatus
        :attr:`JobState.HELD` for a hold of the job's own user (left alone);
        an incurable error for the codes of :data:`INCURABLE_HOLD_CODES`;
        else an error the session resubmits.
    """
    words = describe_hold(reason, code, subcode)
    if code == SUBMITTED_ON_HOLD_CODE or (
        code == USER_REQUEST_HOLD_CODE and not _held_by_another(reason, user)
    ):
        return JobStatus(JobState.HELD, scheduler_state, words)
    limit = time_limit_of(reason, code)
    if limit:
        return timed_out(scheduler_state, words, limit)
    fix = INCURABLE_HOLD_CODES.get(code)
    # Not for a file transfer's hold: those come with shared_file_system=False.
    if fix is _WORK_DIR_FIX and user == ROOT_USER:
        fix = _WORK_DIR_FIX_FOR_ROOT
    if fix is None and code in _TRANSFER_HOLD_CODES and subcode in _PATH_ERRNOS:
        fix = _WORK_DIR_FIX
    if fix is not None:
        return incurable(scheduler_state, words, fix)
    return failed(scheduler_state, words)


def _held_by_another(reason: str, user: str | None) -> bool:
    match = _HELD_BY.search(reason)
    return user is not None and match is not None and match.group(1) != user


def status_from_job_status(
    job_status: str,
    hold_reason_code: int | None = None,
    hold_reason: str = "",
    user: str | None = None,
) -> JobStatus:
    """Map condor_q's JobStatus (1 to 7) to the session's states."""
    name = JOB_STATUS_NAMES.get(job_status)
    scheduler_state = f"{job_status} ({name})" if name else job_status
    if job_status == "1":
        return JobStatus(JobState.PENDING, scheduler_state)
    if job_status in ("2", "6", "7"):
        return JobStatus(JobState.RUNNING, scheduler_state)
    if job_status == "3":
        return JobStatus(JobState.ERROR, scheduler_state, "removed from the queue")
    if job_status == "4":
        return JobStatus(JobState.ENDED, scheduler_state)
    if job_status == "5":
        return held_status(scheduler_state, hold_reason, hold_reason_code, user=user)
    return JobStatus(JobState.UNKNOWN, scheduler_state)


def status_after_event(
    event: eventlog.Event, removed_by_us: bool, user: str | None = None
) -> JobStatus | None:
    """The state a proc is in after ``event``; ``None`` if the event changes nothing.

    A proc that terminated with exit code 0 has ended (its result file
    decides); with another exit code or a signal it failed, which the
    session handles at once: resubmitted, but for 126 and 127, the
    launcher's "cannot run the interpreter", which no resubmission cures.
    ``user`` as in :func:`held_status`.
    """
    name = f"event {event.code:03d}"
    code = event.code
    if code in (eventlog.SUBMITTED, eventlog.EVICTED, eventlog.RELEASED):
        return JobStatus(JobState.PENDING, f"{name} ({event.text.rstrip('.')})")
    if code == eventlog.SHADOW_EXCEPTION:
        # The shadow died; the schedd puts the job back to idle.
        return JobStatus(JobState.PENDING, f"{name} (shadow exception)")
    if code in (eventlog.EXECUTING, eventlog.SUSPENDED, eventlog.UNSUSPENDED):
        return JobStatus(JobState.RUNNING, f"{name} ({event.text.rstrip('.')})")
    if code == eventlog.TERMINATED:
        return status_after_termination(f"{name} (terminated)", eventlog.termination_of(event))
    if code == eventlog.HELD:
        hold = eventlog.hold_of(event)
        return held_status(f"{name} (held)", hold.reason, hold.code, hold.subcode, user)
    if code == eventlog.ABORTED:
        reason = eventlog.abort_reason_of(event)
        if removed_by_us:
            return JobStatus(
                JobState.ENDED, f"{name} (removed)", reason or "removed from the queue"
            )
        limit = time_limit_of(reason)
        if limit:
            return timed_out(f"{name} (removed)", reason, limit)
        return JobStatus(JobState.ERROR, f"{name} (removed)", reason or "removed from the queue")
    return None


def status_after_termination(scheduler_state: str, termination: str) -> JobStatus:
    """The state of a proc that terminated as ``termination`` says (``exit code 3``, ``signal 9``).

    Exit code 0 (or an unknown end): ended, its result file decides. 126 and
    127: the launcher cannot run the interpreter, which no resubmission
    cures. Anything else failed and is resubmitted.
    """
    if termination == "exit code 0" or termination == eventlog.UNKNOWN_TERMINATION:
        return JobStatus(JobState.ENDED, scheduler_state, termination)
    if termination in ("exit code 126", "exit code 127"):
        # The launcher execs the interpreter: it is missing or not executable.
        return incurable(scheduler_state, termination, _LAUNCHER_FIX)
    return failed(scheduler_state, termination)


def idle_status(summary: parsing.MatchSummary) -> JobStatus:
    """An idle job's state, given the match analysis of its autocluster.

    No slot that satisfies its requirements: nothing but a change of the
    request or of the pool lets it start.
    """
    if summary.requirements_matches == 0:
        reason = "no slot matches the job's requirements"
        return JobStatus(JobState.PENDING, "1 (Idle)", reason, blocked=True)
    reason = f"waiting for a free slot ({summary.requirements_matches} match)"
    return JobStatus(JobState.PENDING, "1 (Idle)", reason)
