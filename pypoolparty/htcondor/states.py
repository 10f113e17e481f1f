"""What HTCondor's JobStatus codes and job events mean for the session."""

from __future__ import annotations

from ..scheduler import JobState, JobStatus
from . import eventlog, parsing

USER_REQUEST_HOLD_CODE = 1
"""HoldReasonCode of ``condor_hold`` by a person: left alone, never resubmitted."""

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


def held_status(scheduler_state: str, reason: str, code: int | None, subcode=None) -> JobStatus:
    """A user's own hold is left alone; every other hold is an error."""
    state = JobState.HELD if code == USER_REQUEST_HOLD_CODE else JobState.ERROR
    return JobStatus(state, scheduler_state, describe_hold(reason, code, subcode))


def status_from_job_status(
    job_status: str, hold_reason_code: int | None = None, hold_reason: str = ""
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
        return held_status(scheduler_state, hold_reason, hold_reason_code)
    return JobStatus(JobState.UNKNOWN, scheduler_state)


def status_after_event(event: eventlog.Event, removed_by_us: bool) -> JobStatus | None:
    """The state a proc is in after ``event``; ``None`` if the event changes nothing."""
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
        return JobStatus(JobState.ENDED, f"{name} (terminated)", eventlog.termination_of(event))
    if code == eventlog.HELD:
        hold = eventlog.hold_of(event)
        return held_status(f"{name} (held)", hold.reason, hold.code, hold.subcode)
    if code == eventlog.ABORTED:
        reason = eventlog.abort_reason_of(event)
        state = JobState.ENDED if removed_by_us else JobState.ERROR
        return JobStatus(state, f"{name} (removed)", reason or "removed from the queue")
    return None


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
