"""Pure functions that read the output of Grid Engine's ``qsub``, ``qstat`` and ``qdel``.

Everything here is tested with output captured from a real Son of Grid
Engine 8.1.9 (``tests/sge/samples``). The functions that take a
:class:`~pypoolparty.commands.Completed` are the parsers the adapter hands to
:mod:`pypoolparty.commands`; the others read text.
"""

from __future__ import annotations

import dataclasses
import re
import xml.etree.ElementTree as ElementTree

from ..commands import Completed, PermanentError, TransientError
from ..scheduler import JobState

# A job's state in qstat is a word of letters, each a flag (sge_status(5) and
# qstat(1)): d deleted, E error, h hold, r running, R restarted, s suspended,
# S queue suspended, T threshold suspended, t transferring, q queued,
# w waiting, z zombie (finished).
KNOWN_STATE_LETTERS = frozenset("dEhrRsStTqwz")
RUNNING_LETTERS = frozenset("rtsST")
QUEUED_LETTERS = frozenset("qw")


def job_state(sge_state: str) -> JobState:
    """Map a Grid Engine state word such as ``qw``, ``hqw``, ``Eqw`` or ``dr``.

    ======================================  ===============
    SGE states                              JobState
    ======================================  ===============
    any with ``E`` (``Eqw``, ``Ehqw``)      ERROR
    ``z``                                   ENDED
    ``r t Rr Rt hr s S T ...``, ``dr dt``   RUNNING
    ``hqw hRwq``                            HELD
    ``qw Rq w``, ``dqw``                    PENDING
    anything else                           UNKNOWN
    ======================================  ===============

    A held job that already runs (``hr``) keeps running, and a suspended one
    (``s``, ``S``, ``T``) will resume: both count as running. A job being
    deleted (``d...``) still occupies its slot until the execd confirms.
    """
    letters = set(sge_state)
    if not letters or not letters <= KNOWN_STATE_LETTERS:
        return JobState.UNKNOWN
    if "E" in letters:
        return JobState.ERROR
    if "z" in letters:
        return JobState.ENDED
    if letters & RUNNING_LETTERS:
        return JobState.RUNNING
    if letters & QUEUED_LETTERS:
        return JobState.HELD if "h" in letters else JobState.PENDING
    return JobState.UNKNOWN


@dataclasses.dataclass(frozen=True)
class QstatEntry:
    """One ``job_list`` of ``qstat -xml``: one job, or tasks of an array job in one state."""

    job_number: str
    name: str
    state: str
    tasks: tuple[int, ...]
    """The array task ids; empty for a job that is not an array."""


def parse_qsub_terse(stdout: str) -> str:
    """Return the job number printed by ``qsub -terse``.

    ``qsub -terse`` prints ``17`` for a job and ``11.1-4:1`` for an array job.
    Raises ``ValueError`` for anything else.
    """
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    match = re.fullmatch(r"(\d+)(\.\d+-\d+:\d+)?", lines[-1]) if lines else None
    if match is None:
        raise ValueError(f"qsub -terse printed no job number: {stdout.strip()[:200]!r}")
    return match.group(1)


def qsub_rejection_message(output: str) -> str:
    """The reason in a failed ``qsub``'s output, without its ``Exiting.`` line.

    ``Unable to run job: unknown resource "h_vmemx"`` becomes
    ``unknown resource "h_vmemx"``.
    """
    lines = [line.strip() for line in output.splitlines()]
    lines = [line for line in lines if line and line != "Exiting."]
    text = " ".join(lines)
    prefix = "Unable to run job:"
    if text.startswith(prefix):
        text = text[len(prefix) :].strip()
    return text


def expand_task_ids(text: str) -> tuple[int, ...]:
    """Expand the task list of ``qstat``: ``1,4-6:1`` gives ``(1, 4, 5, 6)``."""
    ids: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        match = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", part)
        if match is None:
            raise ValueError(f"not a list of task ids: {text!r}")
        first = int(match.group(1))
        last = int(match.group(2) or first)
        step = int(match.group(3) or 1)
        if step < 1:
            raise ValueError(f"not a list of task ids: {text!r}")
        ids.extend(range(first, last + 1, step))
    return tuple(ids)


def parse_qstat_xml(text: str) -> list[QstatEntry]:
    """Parse ``qstat -xml``: running jobs (``queue_info``) and waiting ones (``job_info``).

    Raises ``ValueError`` when ``text`` is not qstat's XML document.
    """
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as error:
        raise ValueError(f"qstat -xml printed no XML document: {error}") from None
    if root.tag != "job_info":
        raise ValueError(f"qstat -xml printed <{root.tag}>, expected <job_info>")
    return [_entry(job_list) for job_list in root.iter("job_list")]


def _entry(job_list: ElementTree.Element) -> QstatEntry:
    def text(tag: str) -> str:
        element = job_list.find(tag)
        if element is None or element.text is None:
            return ""
        return element.text.strip()

    job_number = text("JB_job_number")
    if not job_number.isdigit():
        raise ValueError(f"qstat -xml lists a job without a job number: {job_number!r}")
    return QstatEntry(
        job_number=job_number,
        name=text("JB_name"),
        state=text("state"),
        tasks=expand_task_ids(text("tasks")),
    )


def parse_qstat_j_error_reasons(text: str) -> dict[int, str]:
    """The ``error reason`` lines of ``qstat -j JOB``, by task id (1 for a plain job)."""
    reasons = {}
    for match in re.finditer(r"^error reason\s+(\d+):\s*(.*)$", text, flags=re.MULTILINE):
        reasons[int(match.group(1))] = match.group(2).strip()
    return reasons


# Lines of qstat -j's "scheduling info" that do not clear by themselves: a
# queue an administrator disabled or whose execution daemon is gone, a queue
# the job may not use, a fixed attribute no host or queue offers. Whatever
# else a line says (a full queue, a start time, a dependency, a consumable
# or a load value, a resource quota) may clear as other jobs end.
BLOCKING_SCHEDULING_INFO = (
    "dropped because it is disabled",
    "dropped because it is temporarily not available",
    "dropped because it is in error state",
    "because it is not contained in its hard queue list",
    "has no permission for",
    "is not allowed to run in any queue",
    "because job requests unknown resource",
    "because it offers only hf:",
    "because it offers only qf:",
    "because it offers only gf:",
)


def parse_qstat_j_scheduling_info(text: str) -> dict[str, list[str]]:
    """The ``scheduling info`` lines of ``qstat -j N1,N2,...``, by job number.

    Grid Engine writes them only with ``schedd_job_info true`` in its
    scheduler configuration (``qconf -ssconf``); a job it has not looked at
    yet, or a site that turned them off, has none.
    """
    found: dict[str, list[str]] = {}
    job_number = None
    lines: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("job_number:"):
            job_number = line.partition(":")[2].strip()
            lines = None
        elif line.startswith("scheduling info:") and job_number is not None:
            lines = found.setdefault(job_number, [])
            _add_scheduling_info(lines, line.partition(":")[2])
        elif lines is not None and line[:1].isspace():
            _add_scheduling_info(lines, line)
        else:
            lines = None
    return found


def _add_scheduling_info(lines: list[str], text: str) -> None:
    text = text.strip()
    if text and not text.startswith("(Collecting of scheduler job information"):
        lines.append(text)


def scheduling_info_blocks(lines: list[str]) -> bool:
    """Whether a job whose ``scheduling info`` is ``lines`` can start only once someone acts.

    Every line must say so: a queue disabled for all is no reason for a job
    that waits for its start time in another queue.
    """
    return bool(lines) and all(
        any(words in line for words in BLOCKING_SCHEDULING_INFO) for line in lines
    )


def pending_reason(lines: list[str]) -> str:
    """The words to show for a pending job's ``scheduling info``.

    For a job that may still start, the first line that says why it waits;
    for one that cannot, every line (each queue's reason), shortened.
    """
    if scheduling_info_blocks(lines):
        return _shortened("; ".join(lines))
    waiting = [line for line in lines if not any(w in line for w in BLOCKING_SCHEDULING_INFO)]
    return _shortened(waiting[0] if waiting else "")


def _shortened(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_qstat_g_c(text: str, queue_name: str | None = None) -> int | None:
    """Usable slots from ``qstat -g c``: TOTAL minus unusable (``cdsuE``) slots.

    Sums all cluster queues, or only ``queue_name``. When no slot is usable
    right now (an execution daemon is down), the configured TOTAL is the
    better guide to how many jobs will run once it is back. ``None`` if no
    queue is listed.
    """
    usable = total = None
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 8 or not fields[-1].isdigit() or not fields[-3].isdigit():
            continue
        if queue_name is not None and fields[0] != queue_name:
            continue
        queue_total, unusable = int(fields[-3]), int(fields[-1])
        total = (total or 0) + queue_total
        usable = (usable or 0) + max(queue_total - unusable, 0)
    return usable if usable else total


QDEL_FINE = re.compile(
    r"has (registered|deleted)|for deletion|does not exist|is already in deletion"
)


def qdel_problems(output: str) -> list[str]:
    """The lines of ``qdel`` output that are neither a deletion nor "does not exist"."""
    return [
        line.strip() for line in output.splitlines() if line.strip() and not QDEL_FINE.search(line)
    ]


# Words of a qsub, qstat or qdel that could not reach the qmaster: worth a retry.
UNREACHABLE = re.compile(
    r"commlib error|unable to (send message to|contact) qmaster|got send error"
    r"|failed receiving gdi request|qmaster is not alive|cannot connect|timed? ?out",
    flags=re.IGNORECASE,
)


def is_unreachable(output: str) -> bool:
    """Whether a failed command's output says the qmaster could not be reached."""
    return UNREACHABLE.search(output) is not None


# ------------------------------------------------- parsers of whole commands


def parse_qsub(completed: Completed) -> str:
    """The job number of a ``qsub -terse``.

    Raises
    ------
    TransientError
        qsub was killed by a signal, or could not reach the qmaster.
    PermanentError
        qsub refused the job; the message is qsub's reason.
    ValueError
        qsub succeeded but printed no job number.
    """
    if completed.returncode == 0:
        return parse_qsub_terse(completed.stdout)
    output = f"{completed.stderr}\n{completed.stdout}"
    if completed.returncode < 0 or is_unreachable(output):
        raise TransientError(completed.describe())
    raise PermanentError(qsub_rejection_message(output) or completed.describe())


def parse_qstat(completed: Completed) -> list[QstatEntry]:
    """The entries of a ``qstat -xml``; a failed qstat is transient."""
    if completed.returncode != 0:
        raise TransientError(completed.describe())
    return parse_qstat_xml(completed.stdout)


def parse_qdel(completed: Completed) -> None:
    """Check a ``qdel``: every line is a deletion or a job already gone."""
    problems = qdel_problems(f"{completed.stdout}\n{completed.stderr}")
    if problems:
        raise TransientError("; ".join(problems))


def parse_qstat_j(completed: Completed) -> dict[int, str]:
    """:func:`parse_qstat_j_error_reasons` of a ``qstat -j JOB``, whatever its exit code."""
    return parse_qstat_j_error_reasons(completed.stdout)


def parse_qstat_j_pending(completed: Completed) -> dict[str, list[str]]:
    """:func:`parse_qstat_j_scheduling_info` of a ``qstat -j N1,N2,...``.

    qstat exits 1 when some of the jobs are gone, and still describes the
    others: its exit code does not matter.
    """
    return parse_qstat_j_scheduling_info(completed.stdout)


def usable_slots(completed: Completed, queue_name: str | None = None) -> int | None:
    """:func:`parse_qstat_g_c` of a ``qstat -g c`` that succeeded."""
    if completed.returncode != 0:
        raise TransientError(completed.describe())
    return parse_qstat_g_c(completed.stdout, queue_name)
