"""Read a task list: one bash command per line.

A line is a task unless it is empty, only blanks, or starts with ``#`` after
blanks (PyTaskFarmer's and GNU parallel's convention). Tasks keep the number
of their line in the file (1-based, as editors, ``sed -n Np`` and error
messages count), which names them everywhere: the summary, the finished and
failed lists, ``pypoolparty stdout WORK_DIR LINE``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json


class TaskListError(ValueError):
    """The task list cannot be read or holds no task."""


@dataclasses.dataclass(frozen=True)
class Task:
    """One command of a task list and the number of its line."""

    line: int
    command: str


def read_tasklist(path: str) -> list[Task]:
    """The tasks of the task list at ``path``, in file order.

    Parameters
    ----------
    path : str
        A UTF-8 text file; ``\\r\\n`` line ends are accepted.

    Returns
    -------
    list of Task
        Leading and trailing blanks of each command removed.

    Raises
    ------
    TaskListError
        If the file cannot be read, is not UTF-8 (naming the line), or holds
        no task.
    """
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as error:
        raise TaskListError(f"cannot read the task list {path!r}: {error.strerror}") from None
    tasks = []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise TaskListError(
                f"line {number} of {path!r} is not UTF-8 ({error.reason} at byte "
                f"{error.start}); save the task list as UTF-8"
            ) from None
        command = text.strip()
        if command and not command.startswith("#"):
            tasks.append(Task(number, command))
    if not tasks:
        raise TaskListError(
            f"the task list {path!r} holds no task: every line is empty or a comment (#)"
        )
    return tasks


def fingerprint(tasks: list[Task]) -> str:
    """SHA-256 of the numbered commands: an edit of any task (or of the line
    numbers, by inserting a line) changes it; comments and blank lines that
    keep the numbers do not."""
    text = json.dumps([[task.line, task.command] for task in tasks], ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
