"""Pure functions that read the output of Grid Engine's ``qsub``, ``qstat`` and ``qdel``.

Everything here is tested with output captured from a real Son of Grid
Engine 8.1.9 (``tests/sge/samples``). The functions that take a
:class:`~pypoolparty.commands.Completed` are the parsers the adapter hands to
:mod:`pypoolparty.commands`; the others read text.
"""

from __future__ import annotations

import dataclasses
import re
import time
import xml.etree.ElementTree as ElementTree

from ..commands import Completed, PermanentError, TransientError
from ..scheduler import (
    JobState,
    JobStatus,
    failed,
    incurable,
    stopped_by_the_cluster,
    timed_out,
)

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


_WORK_DIR_FIX = (
    "Grid Engine cannot use a path of the job (its output file or working "
    "directory) on the execution host: pass a work_dir on a file system every "
    "execution host mounts, that you may write there, without ':' in its path."
)
_INTERPRETER_FIX = (
    "The job's shell could not run the interpreter (exit status 127: not found, "
    "126: not executable): pass a python_path that exists and is executable on "
    "every execution host; the job's standard error names the path."
)
_SHELL_FIX = (
    "The execution host has no such shell or interpreter: pass a python_path "
    "that exists on every execution host."
)
_MISSING_OR_FORBIDDEN = r".*(No such file or directory|Permission denied|Not a directory)"
INCURABLE_ERROR_REASONS = (
    (
        re.compile(r"(can't open (output|input|error) file|can't chdir)" + _MISSING_OR_FORBIDDEN),
        _WORK_DIR_FIX,
    ),
    (re.compile(r"unable to find shell|execvp" + _MISSING_OR_FORBIDDEN), _SHELL_FIX),
)
"""Words of an ``error reason`` (``qstat -j``) that no resubmission cures, and
the fix. Grid Engine puts such a job into ``Eqw`` before it runs: a path that
does not exist or is forbidden, a shell it cannot find. Any other error
reason (a stale NFS handle, a failed prolog, a host problem) may pass on
another try."""


def error_status(sge_state: str, error_reason: str) -> JobStatus:
    """The status of a job in an ``E`` state, from its ``qstat -j`` error reason.

    Parameters
    ----------
    sge_state : str
        The state word, e.g. ``Eqw``.
    error_reason : str
        The task's ``error reason`` line (see
        :func:`parse_qstat_j_error_reasons`); empty if unknown.

    Returns
    -------
    JobStatus
        An incurable error with its fix for the reasons of
        :data:`INCURABLE_ERROR_REASONS`, else an error to resubmit.
    """
    for pattern, fix in INCURABLE_ERROR_REASONS:
        if pattern.search(error_reason):
            return incurable(sge_state, error_reason, fix)
    return failed(sge_state, error_reason)


def held_status(sge_state: str, user_hold: bool) -> JobStatus:
    """A queued job in an ``h`` state: the user's own hold, or another's.

    ``qstat -s hu`` lists the jobs with a user hold (``qhold``, ``qsub -h``);
    an operator's or the system's hold is an error to resubmit, as its
    release is not ours to do.
    """
    if user_hold:
        return JobStatus(JobState.HELD, sge_state, "user hold")
    return failed(sge_state, "held by an operator or the system (qstat -s ho / -s hs)")


@dataclasses.dataclass(frozen=True)
class QstatEntry:
    """One ``job_list`` of ``qstat -xml``: one job, or tasks of an array job in one state."""

    job_number: str
    name: str
    state: str
    tasks: tuple[int, ...]
    """The array task ids; empty for a job that is not an array."""

    start_time: str = ""
    """When a running task started (``JAT_start_time``, the qmaster's local
    time, e.g. ``2026-11-29T19:09:47``); empty for a waiting one."""


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
        start_time=text("JAT_start_time") if job_list.get("state") == "running" else "",
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


RUN_TIME_LIMIT_FAILED = "37"
"""qacct's ``failed 37 : qmaster enforced h_rt, h_cpu, or h_vmem limit``: what
Son of Grid Engine 8.1.9 writes for a job killed at its ``h_rt`` (with exit
status 137, SIGKILL; with ``-notify``, SIGUSR2 came first and the job may
have ended by itself before the kill)."""

RESCHEDULED_FAILED = ("24", "25")
"""qacct's ``failed 24 : migrating`` and ``failed 25 : rescheduling``: the
record of a run that Grid Engine stopped to run the job again (``qmod -rj``,
a host that went unknown with ``reschedule_unknown``)."""

KILLED = "137"
"""Exit status of a job killed by SIGKILL (128 + 9)."""


@dataclasses.dataclass(frozen=True)
class AccountingRecord:
    """What ``qacct -j`` says of how one task ended."""

    task_id: int
    failed: str
    """``0``, or the failure code and its words, e.g. ``100 : assumedly after job``."""

    exit_status: str
    """The exit status and its words, e.g. ``139 (Segmentation fault)``."""

    wallclock: float | None = None
    """``ru_wallclock`` in seconds, if given."""

    cpu: float | None = None
    """``cpu`` in seconds, if given."""

    limits: dict[str, str] = dataclasses.field(default_factory=dict)
    """The ``-l`` requests of the job's ``category``, e.g. ``{"h_rt": "5"}``."""

    def status(self) -> JobStatus:
        """Ended (the result file decides) for exit 0, failed for anything else.

        The job script starts the interpreter with ``exec``, so the shell's exit
        status 127 (not found) or 126 (not executable) says the interpreter
        cannot be run on that host: no resubmission cures that. A job killed
        at its ``h_rt`` or ``h_cpu`` (:func:`time_limit_hit`) timed out; a run
        Grid Engine stopped to reschedule it was stopped by the cluster.
        """
        word = f"exit_status {self.exit_status}"
        code = self.exit_status.split(" ", 1)[0]
        failed_code = self.failed.split(" ", 1)[0]
        if failed_code == "0" and code == "0":
            return JobStatus(JobState.ENDED, "qacct", word)
        reason = _join_words(word, f"failed {self.failed}")
        if code in ("126", "127"):
            return incurable("qacct", reason, _INTERPRETER_FIX)
        limit = time_limit_hit(self)
        if limit:
            return timed_out("qacct", reason, limit)
        if failed_code in RESCHEDULED_FAILED:
            return stopped_by_the_cluster("qacct", reason)
        return failed("qacct", reason)


def time_limit_hit(record: AccountingRecord) -> str:
    """The time limit ``record``'s job was killed at, named for the message; '' if none.

    Grid Engine kills a job at its ``h_rt`` (wall clock) or ``h_cpu`` (CPU
    time) with SIGKILL. Son of Grid Engine says ``failed 37``; other Grid
    Engines may say ``failed 0`` with exit status 137 alone. Either counts
    when the job used up the limit it asked for (``category``), so that a
    memory limit (``h_vmem``, also ``failed 37``) or a ``qdel`` is not taken
    for one.
    """
    failed_code = record.failed.split(" ", 1)[0]
    if failed_code != RUN_TIME_LIMIT_FAILED and record.exit_status.split(" ", 1)[0] != KILLED:
        return ""
    for name, used in (("h_rt", record.wallclock), ("h_cpu", record.cpu)):
        limit = time_value_seconds(record.limits.get(name, ""))
        # ru_wallclock is in whole seconds and the kill comes a little late.
        if limit is not None and used is not None and used >= limit - 1:
            return time_limit_words(name, record.limits[name])
    return ""


def time_limit_words(name: str, value: str) -> str:
    """How a Grid Engine time limit is named in messages, with the option that sets it."""
    return f"Grid Engine's {name}={value} (the pool's resources={{'{name}': ...}})"


def time_value_seconds(text: str) -> float | None:
    """Seconds of a Grid Engine time value: ``5``, ``1:30``, ``0:0:5``, ``1:00:00``.

    sge_types(1): ``[[hours:]minutes:]seconds``, each part may be empty.
    ``None`` for anything else (``INFINITY`` included).
    """
    text = text.strip()
    if not re.fullmatch(r"\d*(:\d*){0,2}", text) or not text.strip(":"):
        return None
    seconds = 0
    for part in text.split(":"):
        seconds = seconds * 60 + int(part or 0)
    return float(seconds)


def parse_qacct(text: str) -> dict[int, AccountingRecord]:
    """The records of ``qacct -j JOB [-t RANGE]``, by task id (1 for a plain job).

    A task with several records (one per attempt) is given by its last. The
    runs of spaces qacct pads its columns with become one space.
    """
    records = {}
    for block in text.split("=" * 62):
        fields = {}
        for line in block.splitlines():
            name, _, value = line.partition(" ")
            if name:
                # qacct pads values to columns ("139                  (Segmentation
                # fault)", "37  : qmaster ..."): single spaces read as qacct means.
                fields[name] = " ".join(value.split())
        if "exit_status" not in fields or "failed" not in fields:
            continue
        task = fields.get("taskid", "undefined")
        task_id = int(task) if task.isdigit() else 1
        records[task_id] = AccountingRecord(
            task_id,
            fields["failed"],
            fields["exit_status"],
            wallclock=_seconds(fields.get("ru_wallclock", "")),
            cpu=_seconds(fields.get("cpu", "")),
            limits=category_limits(fields.get("category", "")),
        )
    return records


def _seconds(text: str) -> float | None:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)s?", text.strip())
    return float(match.group(1)) if match else None


def category_limits(category: str) -> dict[str, str]:
    """The resource requests of qacct's ``category``: ``-q all.q -l h_rt=5,h_vmem=1G``."""
    words = category.split()
    limits = {}
    for flag, value in zip(words, words[1:]):
        if flag in ("-l", "-hard"):
            for item in value.split(","):
                name, _, limit = item.partition("=")
                if limit:
                    limits[name] = limit
    return limits


def killed_at_run_time_limit(h_rt: str, started: float | None, gone: float) -> str:
    """The ``h_rt`` limit a job that left the queue without a result was likely killed at.

    For when Grid Engine keeps no accounting (``qacct`` has no record): a
    job that ran, by ``qstat``'s start time (``started``, seconds since the
    epoch) and the time it was first missed (``gone``), at least its
    ``h_rt``, cannot have run longer, so Grid Engine killed it. A job that
    died by itself a moment before its limit can look the same; it runs
    again either way. '' when there is no limit or the job ran shorter.
    """
    limit = time_value_seconds(h_rt)
    if limit is None or started is None or gone - started < limit:
        return ""
    return time_limit_words("h_rt", h_rt)


def start_time_seconds(text: str) -> float | None:
    """``JAT_start_time`` (``2026-11-29T19:09:47``, local time) as seconds since the epoch."""
    try:
        return time.mktime(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    except (ValueError, OverflowError):
        return None


def _join_words(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


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


def parse_qacct_command(completed: Completed) -> dict[int, AccountingRecord]:
    """:func:`parse_qacct` of a ``qacct -j``; a job it does not know has no record yet."""
    if completed.returncode != 0:
        if "not found" in f"{completed.stdout}{completed.stderr}":
            return {}
        raise TransientError(completed.describe())
    return parse_qacct(completed.stdout)


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
