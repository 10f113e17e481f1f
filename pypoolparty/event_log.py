"""The session's JSON-lines event log, ``log.jsonl``.

One JSON object per line: ``{"time": ..., "event": ..., ...}``. It says
what happened to every job (submitted, state seen, resubmitted, cancelled,
done) so a kept work_dir can be inspected, and resumed, without the process
that wrote it. It never holds environment values or task data.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator

import json_lines


class EventLog:
    """Append events to ``path``; each line is flushed as it is written."""

    def __init__(self, path: str) -> None:
        self.path = path
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._file = os.fdopen(descriptor, "a", encoding="utf-8")
        # A line torn by a killed process must not glue onto the next one.
        if self._file.tell() > 0 and not _ends_with_newline(path):
            self._file.write("\n")

    def write(self, event: str, **fields) -> None:
        record = {"time": round(time.time(), 3), "event": event, **fields}
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def read(path: str) -> Iterator[dict]:
    """The events of the log at ``path``, skipping a line torn by a crash."""
    if not os.path.exists(path):
        return iter(())
    with json_lines.open(path, broken=True) as reader:
        return iter(list(reader))


def _ends_with_newline(path: str) -> bool:
    with open(path, "rb") as file:
        file.seek(-1, os.SEEK_END)
        return file.read(1) == b"\n"
