"""The record of a task-list run: ``<work_dir>/tasklist/``, owned here.

::

    tasklist/
      runner.lock         the live runner: {"host", "pid"}, as a map's session.lock
                          (:class:`~pypoolparty.work_dir.LockHolder`)
      run.json            which task list (its fingerprint, path, number of
                          tasks) and where its commands run; written once
      current.json        the map in progress: its lines, timeout and chunksize;
                          present from before the map starts until its results
                          are recorded, so a runner killed at any point
                          continues exactly that map (same fingerprint)
      outcomes.jsonl      one line per finished attempt of a task: line,
                          attempt, returncode, timed_out, timeout, the last
                          lines of its stderr, and where and when it ran
                          (host, pid of the worker process, start, end in
                          seconds since the epoch; null in older records);
                          rewritten whole, atomically
      stdout.zip          each attempt's stdout, member <line>.<attempt>.txt
      stderr.zip          ... and stderr
      finished.lines      line numbers of the tasks that succeeded, one a line
      failed.lines        ... that failed (nonzero exit status or timed out)
      failed.tasklist     the failed commands: a task list to run again

The order of writing makes a kill harmless at every point: outputs are
appended before ``outcomes.jsonl`` names them (an appended member nobody
names is ignored, and :func:`pypoolparty.archive.append` keeps the first of a
name, which is the same output again), and ``current.json`` is removed only
after. Everything is 0600 in a 0700 directory, as the rest of the work_dir.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Iterator

from .. import archive
from ..work_dir import LockHolder, make_private_dir, read_json, write_json, write_private
from .parsing import Task

DIRECTORY_NAME = "tasklist"
FORMAT = 1
STDERR_TAIL_LINES = 5
STDERR_TAIL_CHARS = 2000
"""At most this much of the tail of a failed task's stderr is kept in the
outcomes, for the summary; the whole output is in ``stderr.zip``."""


class RunMismatch(ValueError):
    """The work_dir holds the run of another task list (or of other options)."""


class RunnerBusy(RuntimeError):
    """Another live runner is running the task list of this work_dir."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How one attempt of one task ended."""

    line: int
    attempt: int
    returncode: int
    timed_out: bool
    timeout: float | None
    stderr_tail: str
    host: str | None = None
    pid: int | None = None
    start: float | None = None
    end: float | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


@dataclasses.dataclass(frozen=True)
class CurrentMap:
    """The map a run has started and not yet recorded."""

    lines: list[int]
    timeout: float | None
    chunksize: int


def run_dir(work_dir: str) -> str:
    """The directory of the task-list run in ``work_dir``."""
    return os.path.join(work_dir, DIRECTORY_NAME)


def output_member(line: int, attempt: int) -> str:
    """The name of an attempt's output in ``stdout.zip`` and ``stderr.zip``."""
    return f"{line}.{attempt}.txt"


class RunDir:
    """The files of one task-list run; see the module's docstring."""

    def __init__(self, work_dir: str) -> None:
        self.path = run_dir(work_dir)

    def _file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def finished_path(self) -> str:
        return self._file("finished.lines")

    @property
    def failed_path(self) -> str:
        return self._file("failed.lines")

    @property
    def failed_tasklist_path(self) -> str:
        return self._file("failed.tasklist")

    def archive_path(self, stream: str) -> str:
        return self._file(f"{stream}.zip")

    def exists(self) -> bool:
        """Whether a run is recorded here."""
        return os.path.exists(self._file("run.json"))

    # -- what the run is -------------------------------------------------------

    def start_or_check(self, tasklist_path: str, fingerprint: str, num_tasks: int, cwd: str):
        """Record a new run, or check that the recorded one is this one.

        Raises
        ------
        RunMismatch
            If the work_dir holds a run of another task list, or one whose
            commands run in another directory; nothing was started.
        """
        if not self.exists():
            make_private_dir(self.path)
            write_json(
                self._file("run.json"),
                {
                    "format": FORMAT,
                    "tasklist": tasklist_path,
                    "fingerprint": fingerprint,
                    "num_tasks": num_tasks,
                    "cwd": cwd,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                },
            )
            return
        recorded = read_json(self._file("run.json"))
        if recorded.get("fingerprint") != fingerprint:
            raise RunMismatch(
                f"the work_dir holds the run of another task list: {recorded.get('tasklist')!r} "
                f"with {recorded.get('num_tasks')} tasks, started {recorded.get('created')}, and "
                f"{tasklist_path!r} ({num_tasks} tasks) is not that list as it was (a line was "
                "edited, added or removed). A run never mixes two lists: restore the list to "
                "continue that run, or start a new run with another --work-dir (or --new, "
                "which forgets the recorded outcomes in this one)"
            )
        if recorded.get("cwd") != cwd:
            raise RunMismatch(
                f"the run in this work_dir runs its commands in {recorded.get('cwd')!r}, not in "
                f"{cwd!r}: pass --chdir {recorded.get('cwd')!r} (or run from there) to continue "
                "it, or start a new run with another --work-dir (or --new)"
            )

    def acquire_lock(self) -> None:
        """Make sure this process is the only runner of this work_dir's run.

        Two runners would each run every unfinished task. A lock left by a
        runner that died (SIGKILL) is taken over.

        Raises
        ------
        RunnerBusy
            If a live process (or one on another host) holds it.
        """
        make_private_dir(self.path)
        path = self._file("runner.lock")
        me = LockHolder(host=socket.gethostname(), pid=os.getpid())
        for _ in range(2):
            try:
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                try:
                    holder = LockHolder.read(path)
                except (OSError, ValueError):
                    holder = None
                if holder is not None and holder.is_alive_here():
                    raise RunnerBusy(
                        f"another runner (pid {holder.pid} on {holder.host}) is running the "
                        f"task list of this work_dir. Wait for it, or stop it (Ctrl-C, SIGUSR1); "
                        f"if it is gone for good, delete {path!r}"
                    ) from None
                os.remove(path)
                continue
            with os.fdopen(descriptor, "w") as file:
                file.write(me.to_json())
            return
        raise RunnerBusy(
            f"cannot take the lock {path!r}: it keeps coming back; is a runner starting?"
        )

    def release_lock(self) -> None:
        try:
            os.remove(self._file("runner.lock"))
        except FileNotFoundError:
            pass

    def description(self) -> dict:
        """What ``run.json`` says: ``tasklist``, ``num_tasks``, ``cwd``, ``created``."""
        return read_json(self._file("run.json"))

    def runner(self) -> LockHolder | None:
        """The runner holding the lock, if it is alive (or on another host)."""
        try:
            holder = LockHolder.read(self._file("runner.lock"))
        except (OSError, ValueError):
            return None
        return holder if holder is not None and holder.is_alive_here() else None

    def forget(self) -> None:
        """Remove the run's record (``--new``), all but the lock this runner holds."""
        import shutil

        for name in os.listdir(self.path):
            if name != "runner.lock":
                path = self._file(name)
                (shutil.rmtree if os.path.isdir(path) else os.remove)(path)

    # -- the map in progress ---------------------------------------------------

    def current_map(self) -> CurrentMap | None:
        path = self._file("current.json")
        if not os.path.exists(path):
            return None
        data = read_json(path)
        return CurrentMap(list(data["lines"]), data["timeout"], int(data["chunksize"]))

    def begin_map(self, current: CurrentMap) -> None:
        write_json(self._file("current.json"), dataclasses.asdict(current))

    def end_map(self) -> None:
        os.remove(self._file("current.json"))

    # -- outcomes --------------------------------------------------------------

    def outcomes(self) -> dict[int, list[Outcome]]:
        """Every recorded attempt, by line, oldest first."""
        by_line: dict[int, list[Outcome]] = {}
        for outcome in self.each_outcome():
            by_line.setdefault(outcome.line, []).append(outcome)
        return by_line

    def each_outcome(self) -> Iterator[Outcome]:
        """Every recorded attempt, in the order recorded, one at a time."""
        path = self._file("outcomes.jsonl")
        try:
            file = open(path, encoding="utf-8")
        except FileNotFoundError:
            return
        with file:
            for text in file:
                yield Outcome(**json.loads(text))

    def record(self, results: list[tuple[int, object]]) -> list[Outcome]:
        """Record ``(line, ShellResult)`` pairs as new attempts; return their outcomes."""
        by_line = self.outcomes()
        new = []
        stdout, stderr = {}, {}
        for line, result in results:
            attempt = len(by_line.get(line, ())) + 1
            member = output_member(line, attempt)
            stdout[member] = result.stdout
            stderr[member] = result.stderr
            outcome = Outcome(
                line,
                attempt,
                result.returncode,
                result.timed_out,
                result.timeout,
                "" if result.ok else tail(result.stderr),
                result.host,
                result.pid,
                result.start,
                result.end,
            )
            by_line.setdefault(line, []).append(outcome)
            new.append(outcome)
        archive.append(self.archive_path("stdout"), stdout)
        archive.append(self.archive_path("stderr"), stderr)
        text = "".join(
            json.dumps(dataclasses.asdict(o), ensure_ascii=False) + "\n"
            for attempts in by_line.values()
            for o in attempts
        )
        write_private(self._file("outcomes.jsonl"), text.encode("utf-8"))
        return new

    def write_lists(self, tasks: list[Task], latest: dict[int, Outcome]) -> None:
        """Write the finished and failed line numbers, and the failed commands."""
        finished = [t.line for t in tasks if t.line in latest and latest[t.line].ok]
        failed = [t for t in tasks if t.line in latest and not latest[t.line].ok]
        write_private(self.finished_path, _numbers(finished))
        write_private(self.failed_path, _numbers([t.line for t in failed]))
        write_private(
            self.failed_tasklist_path, "".join(t.command + "\n" for t in failed).encode("utf-8")
        )

    def output(self, line: int, stream: str) -> tuple[Outcome, bytes] | None:
        """The latest attempt of task ``line`` and its ``stream``; None if it has not run."""
        attempts = self.outcomes().get(line)
        if not attempts:
            return None
        latest = attempts[-1]
        data = archive.read_member(self.archive_path(stream), output_member(line, latest.attempt))
        return latest, data if data is not None else b""


def latest_outcomes(by_line: dict[int, list[Outcome]]) -> dict[int, Outcome]:
    return {line: attempts[-1] for line, attempts in by_line.items()}


def tail(data: bytes) -> str:
    """The last lines of an output, decoded, for a summary."""
    text = data.decode("utf-8", errors="replace").rstrip()
    lines = text.splitlines()[-STDERR_TAIL_LINES:]
    return "\n".join(lines)[-STDERR_TAIL_CHARS:]


def _numbers(lines: list[int]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode("ascii")
