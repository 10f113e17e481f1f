"""Pure functions that read what HTCondor's commands print.

Samples of the real output, captured from HTCondor 23.9.6, are kept in
``tests/htcondor/samples``. The functions that take a
:class:`~pypoolparty.commands.Completed` are the parsers the adapter hands to
:func:`pypoolparty.commands.call`: :class:`~pypoolparty.commands.TransientError`
(or ``ValueError``) asks for a retry.
"""

from __future__ import annotations

import dataclasses
import re

from ..commands import Completed, PermanentError, TransientError
from ..scheduler import SubmissionRejected

TERSE_SUBMIT_PATTERN = re.compile(r"^(\d+)\.(\d+) - (\d+)\.(\d+)$")
PLAIN_SUBMIT_PATTERN = re.compile(r"^(\d+) job\(s\) submitted to cluster (\d+)\.$")

# condor_submit errors that say the schedd could not be reached or was busy:
# worth retrying. Any other ERROR is about the submit description itself.
UNREACHABLE_SCHEDD_PATTERNS = (
    "can't find address",
    "failed to connect",
    "connect to",
    "cannot allocate a cluster id",
    "timed out",
    "timeout",
    "communicate with",
    "authenticate",
    "failed to commit",
    "transaction",
)

ALREADY_GONE_PATTERNS = (
    re.compile(r"^Job \d+\.\d+ not found$"),
    re.compile(r"^Couldn't find/remove all jobs"),
    re.compile(r"There are no jobs in the queue"),
    re.compile(r"^Job \d+\.\d+ marked for removal$"),
    re.compile(r"^All jobs in cluster \d+ have been marked for removal$"),
    re.compile(r"^All jobs matching constraint .* have been marked for removal$"),
)


@dataclasses.dataclass(frozen=True)
class QueuedJob:
    """One line of ``condor_q -af:t ClusterId ProcId JobStatus HoldReasonCode HoldReason``."""

    cluster: int
    proc: int
    job_status: str
    hold_reason_code: int | None
    hold_reason: str


CONDOR_Q_ATTRIBUTES = ("ClusterId", "ProcId", "JobStatus", "HoldReasonCode", "HoldReason")


def parse_submit_output(stdout: str) -> tuple[int, int, int]:
    """The cluster and first and last proc from ``condor_submit -terse``.

    Also understands the default output (``N job(s) submitted to cluster C.``).
    Raises ``ValueError`` for anything else.
    """
    for line in stdout.splitlines():
        line = line.strip()
        terse = TERSE_SUBMIT_PATTERN.match(line)
        if terse:
            cluster, first, cluster_again, last = map(int, terse.groups())
            if cluster != cluster_again or last < first:
                raise ValueError(f"condor_submit reported an odd range: {line!r}")
            return cluster, first, last
        plain = PLAIN_SUBMIT_PATTERN.match(line)
        if plain:
            count, cluster = map(int, plain.groups())
            return cluster, 0, count - 1
    raise ValueError(f"cannot find a cluster id in condor_submit's output: {stdout[-500:]!r}")


def submit_error_message(stderr: str, stdout: str = "") -> str:
    """condor_submit's own error lines, without blank lines and warnings."""
    lines = [line.strip() for line in (stderr + "\n" + stdout).splitlines()]
    errors = [line for line in lines if line.startswith("ERROR")]
    return "\n".join(errors or [line for line in lines if line])


def is_unreachable_schedd(message: str) -> bool:
    """True if a condor_submit error means "try again later", not "bad submit file"."""
    lowered = message.lower()
    return any(pattern in lowered for pattern in UNREACHABLE_SCHEDD_PATTERNS)


def parse_condor_q(stdout: str) -> list[QueuedJob]:
    """Parse ``condor_q ... -af:t`` with :data:`CONDOR_Q_ATTRIBUTES`.

    No jobs give empty output. Raises ``ValueError`` on lines that do not fit,
    so that a garbled answer is retried rather than trusted.
    """
    jobs = []
    for line in stdout.splitlines():
        if not line.strip():
            continue
        fields = line.rstrip("\n").split("\t", len(CONDOR_Q_ATTRIBUTES) - 1)
        if len(fields) != len(CONDOR_Q_ATTRIBUTES):
            raise ValueError(f"unexpected line from condor_q: {line[:200]!r}")
        cluster, proc, job_status, hold_code, hold_reason = (field.strip() for field in fields)
        if not (cluster.isdigit() and proc.isdigit()):
            raise ValueError(f"unexpected job id from condor_q: {line[:200]!r}")
        jobs.append(
            QueuedJob(
                cluster=int(cluster),
                proc=int(proc),
                job_status=job_status,
                hold_reason_code=_optional_int(hold_code),
                hold_reason="" if hold_reason == "undefined" else hold_reason,
            )
        )
    return jobs


def _optional_int(text: str) -> int | None:
    if text == "undefined":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected a number or 'undefined', not {text!r}") from None


def condor_rm_went_fine(stdout: str, stderr: str) -> bool:
    """True if every line condor_rm printed says removed or already gone.

    condor_rm exits 1 when a job is no longer in the queue, which for us is
    success: it is gone either way.
    """
    lines = [line.strip() for line in (stdout + "\n" + stderr).splitlines() if line.strip()]
    return bool(lines) and all(
        any(pattern.search(line) for pattern in ALREADY_GONE_PATTERNS) for line in lines
    )


def parse_total_cpus(stdout: str) -> int | None:
    """Sum of ``condor_status -af Cpus`` over all slots; ``None`` if there is none.

    A partitionable slot's Cpus is what is left of it, and each dynamic slot
    carved out of it is listed with its own Cpus, so the sum is the total.
    """
    total = 0
    for line in stdout.splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.isdigit():
            raise ValueError(f"unexpected line from condor_status: {line[:200]!r}")
        total += int(line)
    return total or None


# ------------------------------------------------- parsers of whole commands


def submitted_cluster(completed: Completed, num_procs: int) -> tuple[int, int]:
    """The cluster and first proc of a ``condor_submit -terse`` of ``num_procs`` procs.

    Raises
    ------
    TransientError
        The schedd could not be reached, or said nothing we can read.
    SubmissionRejected
        condor_submit refused the submit description; the message is its own.
    PermanentError
        condor_submit made another number of procs than asked for.
    """
    if completed.returncode != 0:
        message = submit_error_message(completed.stderr, completed.stdout)
        if is_unreachable_schedd(message) or not message:
            raise TransientError(completed.describe())
        raise SubmissionRejected(f"condor_submit rejected the submission: {message}")
    cluster, first, last = parse_submit_output(completed.stdout)
    if last - first + 1 != num_procs:
        raise PermanentError(
            f"condor_submit made {last - first + 1} procs in cluster {cluster}, "
            f"expected {num_procs}"
        )
    return cluster, first


def queued_jobs(completed: Completed) -> list[QueuedJob]:
    """The jobs of a ``condor_q ... -af:t`` with :data:`CONDOR_Q_ATTRIBUTES`."""
    if completed.returncode != 0:
        raise TransientError(completed.describe())
    return parse_condor_q(completed.stdout)


def first_cluster_id(completed: Completed) -> int | None:
    """The first cluster of a ``condor_q -constraint ... -af ClusterId``; ``None`` if none."""
    if completed.returncode != 0:
        raise TransientError(completed.describe())
    lines = [line.strip() for line in completed.stdout.splitlines() if line.strip()]
    return int(lines[0]) if lines and lines[0].isdigit() else None


def removed(completed: Completed) -> None:
    """Check a ``condor_rm``: every job it names is removed or already gone."""
    # Exit 0 alone is not enough: an answer we cannot read may not have
    # removed anything, and a held job would stay in the queue for good.
    if condor_rm_went_fine(completed.stdout, completed.stderr):
        return  # also exit 1 because some were already gone: fine
    raise TransientError(completed.describe())


def total_cpus(completed: Completed) -> int | None:
    """:func:`parse_total_cpus` of a ``condor_status -af Cpus`` that succeeded."""
    if completed.returncode != 0:
        raise TransientError(completed.describe())
    return parse_total_cpus(completed.stdout)


# ----------------------------------------------- why idle jobs do not start


@dataclasses.dataclass(frozen=True)
class MatchSummary:
    """One row of ``condor_q -better-analyze:summary``: an autocluster of idle jobs.

    HTCondor groups jobs with the same requirements (an autocluster) and
    names one of them, ``jobid``, for the group.
    """

    jobid: str
    requirements_matches: int
    """Slots whose attributes satisfy the job's requirements."""

    available: int
    """Of those, slots that would run the job now."""


def parse_match_summary(stdout: str) -> list[MatchSummary]:
    """The rows of ``condor_q -better-analyze:summary CLUSTER ...``.

    Columns: JobId, Members/Idle, Matches Requirements, Machine Rejects Job,
    Running Users Job, Serving Other User, Available, Owner; the counts may
    read ``N/M`` (``1/1`` running this user's jobs). Header lines and anything
    else that is not such a row are skipped.
    """
    rows = []
    for line in stdout.splitlines():
        fields = line.split()
        if (
            len(fields) >= 7
            and re.fullmatch(r"\d+\.\d+", fields[0])
            and re.fullmatch(r"\d+/\d+", fields[1])
            and all(re.fullmatch(r"\d+(/\d+)?", field) for field in fields[2:7])
        ):
            matches, available = (int(fields[i].split("/")[0]) for i in (2, 6))
            rows.append(MatchSummary(fields[0], matches, available))
    return rows


def match_summary(completed: Completed) -> list[MatchSummary]:
    """:func:`parse_match_summary` of a ``condor_q -better-analyze:summary`` that succeeded."""
    if completed.returncode != 0:
        raise TransientError(completed.describe())
    return parse_match_summary(completed.stdout)
