"""Clusters without a shared file system: their files travel through the schedd's spool.

``condor_submit -spool`` sends each proc's input files to the schedd, so
that nothing on the execute side -- neither the job nor the shadow -- opens
a file of the submit host. A spooled proc that completed stays in the queue
(JobStatus 4) until its output is fetched with ``condor_transfer_data``; the
adapter fetches it, reads how it ended from ``condor_q`` (its event log
stays in the spool), and removes it. The parsers here are pure, fed in the
tests with output captured from HTCondor 23.9.6 (``tests/htcondor/samples``).
"""

from __future__ import annotations

import dataclasses

from ..commands import Completed, TransientError
from ..scheduler import JobState, JobStatus
from . import eventlog

COMPLETED = "4"
"""JobStatus of a completed proc; a spooled one waits in the queue for its output to be fetched."""

SPOOLING_INPUT_HOLD_CODE = 16
"""HoldReasonCode of a proc whose input files condor_submit ``-spool`` is still
sending to the schedd; condor_submit releases it once they are there."""

EXIT_ATTRIBUTES = ("ClusterId", "ProcId", "JobStatus", "ExitCode", "ExitBySignal", "ExitSignal")


@dataclasses.dataclass(frozen=True)
class Exit:
    """How one completed proc ended, from ``condor_q -af:t`` with :data:`EXIT_ATTRIBUTES`."""

    jobid: str
    termination: str
    """``exit code N`` or ``signal N``, as :func:`.eventlog.termination_of` says it."""


def parse_exits(stdout: str) -> list[Exit]:
    """The completed procs of a ``condor_q ... -af:t`` of :data:`EXIT_ATTRIBUTES`.

    Procs in any other state are left out. Raises ``ValueError`` on a line
    that does not fit, so that a garbled answer is retried.
    """
    exits = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        fields = [field.strip() for field in line.split("\t")]
        if len(fields) != len(EXIT_ATTRIBUTES) or not (fields[0].isdigit() and fields[1].isdigit()):
            raise ValueError(f"unexpected line from condor_q: {line[:200]!r}")
        cluster, proc, job_status, exit_code, by_signal, signal = fields
        if job_status != COMPLETED:
            continue
        if by_signal == "true" and signal.isdigit():
            termination = f"signal {signal}"
        elif by_signal == "false" and exit_code.lstrip("-").isdigit():
            termination = f"exit code {exit_code}"
        else:
            termination = eventlog.UNKNOWN_TERMINATION
        exits.append(Exit(f"{cluster}.{proc}", termination))
    return exits


def exits(completed: Completed) -> list[Exit]:
    """:func:`parse_exits` of a ``condor_q`` that succeeded."""
    if completed.returncode != 0:
        raise TransientError(completed.describe())
    return parse_exits(completed.stdout)


def transferred(completed: Completed) -> None:
    """Check a ``condor_transfer_data``: exit 0 (it says no more, even for unknown jobs)."""
    if completed.returncode != 0:
        raise TransientError(completed.describe())


def spooling_status(hold_reason_code: int | None, hold_reason: str) -> JobStatus | None:
    """A held proc of a spooled cluster whose inputs are on their way: pending, not failed.

    ``None`` for every other hold, which means what it means for any proc.
    """
    if hold_reason_code != SPOOLING_INPUT_HOLD_CODE:
        return None
    return JobStatus(JobState.PENDING, "5 (Held)", hold_reason or "spooling input files")
