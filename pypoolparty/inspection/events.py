"""The event log, ``log.jsonl``, streamed one event at a time.

:func:`pypoolparty.event_log.read` loads the whole log, which suits the
session continuing its own map; the log of a long map read again and again
by an inspector is streamed instead, so memory does not grow with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from ..chunking import expand_runs


def read_events(log_path: str) -> Iterator[dict]:
    """Stream the events of ``log.jsonl``, one at a time.

    A line that is not a whole JSON object is skipped: the last line of a
    running map may be half written, and a killed one may have left a torn
    line in the middle.
    """
    try:
        # A character cut at the end of a line being written decodes to a
        # replacement character; that line is then skipped as not JSON.
        file = open(log_path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with file:
        for line in file:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and isinstance(event.get("event"), str):
                yield event


def first_event_time(log_path: str) -> float | None:
    """The time of the first event that has one; reads no further."""
    events = read_events(log_path)
    try:
        for event in events:
            if isinstance(event.get("time"), (int, float)):
                return float(event["time"])
        return None
    finally:
        events.close()


def jobs_of(event: dict) -> Iterator[tuple[str, int, str, str]]:
    """(jobid, ichunk, stdout, stderr) of a ``submitted`` event."""
    for entry in event.get("jobs", ()):
        try:
            jobid, ichunk, stdout, stderr = entry
            yield str(jobid), int(ichunk), str(stdout), str(stderr)
        except (TypeError, ValueError):
            continue


def chunks_of_submitting(event: dict) -> list[int]:
    """The chunks a ``submitting`` event names as inclusive runs; none if they are garbled."""
    try:
        return expand_runs(event.get("chunks", ()))
    except (TypeError, ValueError):
        return []
