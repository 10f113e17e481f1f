"""Read HTCondor's job event log ("user log") incrementally.

HTCondor appends one event per job transition to the file named by the
submit file's ``log`` command: a header line
``NNN (CLUSTER.PROC.SUBPROC) YYYY-MM-DD HH:MM:SS text``, optional
tab-indented body lines, and a closing line ``...``. Events that concern the
whole cluster (late materialization) carry proc ``-1``.

The log is append-only, so a reader keeps a byte offset and parses only what
was appended since the last look. The last event may be half written; it is
left for the next look.
"""

from __future__ import annotations

import dataclasses
import re

SUBMITTED = 0
EXECUTING = 1
EXECUTABLE_ERROR = 2
CHECKPOINTED = 3
EVICTED = 4
TERMINATED = 5
IMAGE_SIZE = 6
SHADOW_EXCEPTION = 7
ABORTED = 9
SUSPENDED = 10
UNSUSPENDED = 11
HELD = 12
RELEASED = 13
CLUSTER_SUBMITTED = 35
CLUSTER_REMOVED = 36

END_OF_EVENT = b"...\n"
UNKNOWN_TERMINATION = "unknown termination"
"""What :func:`termination_of` says of a 005 event it cannot read."""

HEADER_PATTERN = re.compile(r"^(\d{3}) \((\d+)\.(-?\d+)\.(\d+)\) (\S+ \S+) ?(.*)$")
HOLD_CODE_PATTERN = re.compile(r"^Code (-?\d+) Subcode (-?\d+)$")
NORMAL_TERMINATION_PATTERN = re.compile(r"^\(1\) Normal termination \(return value (-?\d+)\)$")
ABNORMAL_TERMINATION_PATTERN = re.compile(r"^\(0\) Abnormal termination \(signal (\d+)\)$")


@dataclasses.dataclass(frozen=True)
class Event:
    """One event of the job event log."""

    code: int
    cluster: int
    proc: int
    time: str
    text: str
    """The rest of the header line, e.g. ``Job was held.``"""

    body: tuple[str, ...] = ()
    """The body lines without their leading tab."""


@dataclasses.dataclass(frozen=True)
class Hold:
    reason: str
    code: int | None
    subcode: int | None


def parse_events(data: bytes) -> tuple[list[Event], int]:
    """Parse the complete events at the start of ``data``.

    Returns the events and the number of bytes they took, so that the caller
    can resume after them. Text between events that is not an event (there
    should be none) is skipped.
    """
    events = []
    consumed = 0
    while True:
        # An event ends with a line "...": search for it at a line start.
        end = data.find(b"\n" + END_OF_EVENT, consumed)
        if end < 0:
            return events, consumed
        block = data[consumed : end + 1].decode("utf-8", errors="replace")
        consumed = end + 1 + len(END_OF_EVENT)
        event = parse_event(block)
        if event is not None:
            events.append(event)


def parse_event(block: str) -> Event | None:
    """Parse one event (the lines before its closing ``...``)."""
    lines = block.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        return None
    match = HEADER_PATTERN.match(lines[0])
    if match is None:
        return None
    code, cluster, proc, _subproc, time, text = match.groups()
    body = tuple(line[1:] if line.startswith("\t") else line for line in lines[1:])
    return Event(int(code), int(cluster), int(proc), time, text.strip(), body)


def hold_of(event: Event) -> Hold:
    """The HoldReason, HoldReasonCode and HoldReasonSubCode of a 012 event."""
    reason_lines = []
    code = subcode = None
    for line in event.body:
        match = HOLD_CODE_PATTERN.match(line.strip())
        if match:
            code, subcode = int(match.group(1)), int(match.group(2))
        elif line.strip():
            reason_lines.append(line.strip())
    return Hold(" ".join(reason_lines), code, subcode)


def termination_of(event: Event) -> str:
    """How a 005 event says the job ended, e.g. ``exit code 3`` or ``signal 9``."""
    for line in event.body:
        normal = NORMAL_TERMINATION_PATTERN.match(line.strip())
        if normal:
            return f"exit code {normal.group(1)}"
        abnormal = ABNORMAL_TERMINATION_PATTERN.match(line.strip())
        if abnormal:
            return f"signal {abnormal.group(1)}"
    return UNKNOWN_TERMINATION


def abort_reason_of(event: Event) -> str:
    """The reason of a 009 event, e.g. ``via condor_rm (by user alice)``."""
    for line in event.body:
        if line.strip():
            return line.strip()
    return ""


class EventLogReader:
    """Follow one event log file, returning only the events appended since
    the last call. Create a new reader to re-read a log from its start."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.offset = 0

    def read_new_events(self) -> list[Event]:
        """Events appended since the last call; none if the file does not exist yet."""
        try:
            with open(self.path, "rb") as file:
                file.seek(self.offset)
                data = file.read()
        except FileNotFoundError:
            return []
        events, consumed = parse_events(data)
        self.offset += consumed
        return events
