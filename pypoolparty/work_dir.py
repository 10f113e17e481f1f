"""The work_dir: the only channel between the submit host and compute nodes.

Layout of one map's session directory (all 0700 directories, 0600 files)::

    <work_dir>/map-<fingerprint>/
        session.json        what this map is (:class:`SessionMetadata`)
        session.lock        host and pid of the process running the map (:class:`LockHolder`)
        log.jsonl           event log
        function.pickle     the function, pickled once
        tasks.zip           one member per chunk: (first task index, tasks)
        worker.py           the worker script (standard library + cloudpickle)
        worker_config.json  map or starmap, the submitter's sys.path, limits
        launcher.sh         starts the job: exports environment.sh, runs setup.sh, execs
                            the worker (formats: :mod:`pypoolparty.launcher`)
        environment.sh      the exported variables (never logged)
        setup.sh            the setup lines
        outcomes/           <ichunk>.pickle written by workers, folded away
                            (see :mod:`pypoolparty.outcome`); <ichunk>.setup-failed
                            written by the launcher when a setup line failed
        scheduler/          job scripts and the scheduler's stdout/stderr
        results.zip         <ichunk>.pickle           outcome of a chunk whose tasks all
                                                      succeeded (its name in outcomes/ too)
                            <ichunk>.failed.pickle    outcome of a chunk with failed tasks
        exceptions.zip      <itask>.txt               a failed task, as text (see
                                                      :mod:`pypoolparty.outcome`)
        stdout.zip,         <ichunk>.txt              output of the job whose outcome was folded
        stderr.zip          <ichunk>.attempt<n>.txt   output of the job that failed at the
                                                      scheduler as the chunk's attempt n

Files are written atomically (write, then rename), so a reader never sees
half a file, on NFS too.

This module owns the names in that layout, what ``session.json`` and
``session.lock`` hold (:class:`SessionMetadata`, :class:`LockHolder`), and
what the members of the archives are called (the ``*_MEMBER`` patterns and
``*_member`` functions), for the map that writes them and for an inspector
that reads them alike. The other formats have owners of their own:
:mod:`pypoolparty.event_log` (``log.jsonl``), :mod:`pypoolparty.archive`
(the zip files), :mod:`pypoolparty.outcome` (the outcomes and
``exceptions.zip``'s text), :mod:`pypoolparty.launcher` (the launcher, the
files it reads and its ``.setup-failed`` files).
"""

from __future__ import annotations

import bisect
import dataclasses
import errno
import functools
import json
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import time
import uuid

import rename_after_writing

from . import chunking
from .errors import WorkDirError
from .version import __version__

DEFAULT_BASE_NAME = ".pypoolparty"
PROBE_SIZE = 64 * 1024
SESSION_PREFIX = "map-"
"""Session directories are ``map-<the first 16 hex digits of the map's fingerprint>``."""
METADATA_FORMAT = 1
"""Of ``session.json``."""

OUTCOME_MEMBER = re.compile(r"^(\d+)\.pickle$")
"""A chunk's outcome in ``outcomes/``, and in ``results.zip`` if its tasks all succeeded."""
FAILED_OUTCOME_MEMBER = re.compile(r"^(\d+)\.failed\.pickle$")
"""In ``results.zip``: the outcome of a chunk with failed tasks."""
TASK_FAILURE_MEMBER = re.compile(r"^(\d+)\.txt$")
"""In ``exceptions.zip``: a failed task."""
FAILED_ATTEMPT_MEMBER = re.compile(r"^(\d+)\.attempt(\d+)\.txt$")
"""In ``stdout.zip`` and ``stderr.zip``: the output of a job that failed at the scheduler."""


def prepare_base(work_dir: str | None) -> str:
    """Create (0700) and check the directory that holds session directories."""
    base = work_dir if work_dir is not None else os.path.join(os.getcwd(), DEFAULT_BASE_NAME)
    base = os.path.abspath(base)
    in_the_way = _file_in_the_way(base)
    if in_the_way is not None:
        where = "the work_dir" if in_the_way == base else f"in the work_dir {base!r}, the path"
        raise WorkDirError(
            f"{where} {in_the_way!r} is a file, not a directory. Pass the path of a directory "
            "(it is created if missing) on a file system the compute nodes also reach."
        )
    try:
        os.makedirs(base, mode=0o700, exist_ok=True)
    except OSError as error:
        raise WorkDirError(
            f"cannot create the work_dir {base!r}: {error.strerror}. Pass a work_dir on a "
            "file system you can write that the compute nodes also reach."
        ) from error
    check_private(base)
    check_writable(base)
    return base


def _file_in_the_way(path: str) -> str | None:
    """The first of ``path`` and its parents that exists and is no directory
    (``os.makedirs`` would only say "File exists" or "Not a directory")."""
    parents = []
    while path not in parents:
        parents.append(path)
        path = os.path.dirname(path)
    for candidate in reversed(parents):
        if not os.path.exists(candidate):
            return None
        if not os.path.isdir(candidate):
            return candidate
    return None


def check_private(path: str) -> None:
    """Refuse a directory that others can write to or that is not ours.

    The work_dir holds pickles, and pickles are code: anyone who can write
    there can run code as us.
    """
    info = os.stat(path)
    if info.st_uid != os.getuid():
        raise WorkDirError(
            f"the work_dir {path!r} belongs to another user (uid {info.st_uid}); "
            "pickles in it are code, so pypoolparty does not trust it. Use a work_dir of your own."
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        if info.st_mode & stat.S_ISVTX:
            # A shared directory such as /tmp: it must stay writable by all.
            advice = (
                f"It is a shared directory: pass a directory of your own inside it, "
                f"e.g. work_dir={os.path.join(path, 'pypoolparty-' + _user_name())!r}."
            )
        else:
            advice = f"Run 'chmod 700 {path}' or use another work_dir."
        raise WorkDirError(
            f"the work_dir {path!r} can be written by others (mode {stat.filemode(info.st_mode)}); "
            f"pickles in it are code. {advice}"
        )


def check_writable(path: str) -> None:
    probe = os.path.join(path, f".probe-{uuid.uuid4().hex}")
    try:
        descriptor = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # Blocks, not only an inode: a full disk still creates empty files.
            os.write(descriptor, b"\0" * PROBE_SIZE)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
            os.remove(probe)
    except OSError as error:
        full = error.errno in (errno.ENOSPC, errno.EDQUOT)
        advice = (
            "The file system is full: free space (finished results are kept) and call again."
            if full
            else "Pass a work_dir you can write."
        )
        raise WorkDirError(
            f"cannot write into the work_dir {path!r}: {error.strerror}. {advice}"
        ) from error


def write_private(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, readable only by us."""
    with rename_after_writing.Path(path) as temporary_path:
        descriptor = os.open(temporary_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())


def write_json(path: str, obj) -> None:
    write_private(path, json.dumps(obj, indent=1).encode("utf-8"))


def read_json(path: str):
    with open(path, encoding="utf-8") as file:
        return json.load(file)


def make_private_dir(path: str) -> str:
    os.makedirs(path, mode=0o700, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def session_dir_name(fingerprint: str) -> str:
    """The name of the session directory of the map with ``fingerprint`` (hex digits)."""
    return f"{SESSION_PREFIX}{fingerprint[:16]}"


def is_session_dir_name(name: str) -> bool:
    """Whether ``name`` may be a session directory's (``map-...``)."""
    return name.startswith(SESSION_PREFIX)


def outcome_member(ichunk: int, failed: bool = False) -> str:
    """A chunk's outcome in ``outcomes/`` and ``results.zip`` (``failed``: it has failed tasks)."""
    return f"{ichunk}.failed.pickle" if failed else f"{ichunk}.pickle"


def task_failure_member(itask: int) -> str:
    """A failed task in ``exceptions.zip``."""
    return f"{itask}.txt"


def job_output_member(ichunk: int) -> str:
    """The output of the job whose outcome of ``ichunk`` was folded, in ``stdout/stderr.zip``."""
    return f"{ichunk}.txt"


def job_log_member(job_key: str) -> str:
    """What a job that claimed chunks printed outside them (its launcher, setup
    lines), in ``stdout/stderr.zip``; ``job_key`` is ``<home chunk>.<submission>``."""
    return f"job.{job_key}.txt"


def failed_attempt_member(ichunk: int, attempt: int) -> str:
    """The output of the job of ``ichunk`` that failed as ``attempt``, in ``stdout/stderr.zip``."""
    return f"{ichunk}.attempt{attempt}.txt"


class SessionDir:
    """Paths inside one map's session directory."""

    def __init__(self, path: str) -> None:
        self.path = path

    def join(self, *names: str) -> str:
        return os.path.join(self.path, *names)

    @property
    def metadata_path(self) -> str:
        return self.join("session.json")

    @property
    def lock_path(self) -> str:
        return self.join("session.lock")

    @property
    def log_path(self) -> str:
        return self.join("log.jsonl")

    @property
    def function_path(self) -> str:
        return self.join("function.pickle")

    @property
    def tasks_path(self) -> str:
        return self.join("tasks.zip")

    @property
    def worker_script_path(self) -> str:
        return self.join("worker.py")

    @property
    def worker_config_path(self) -> str:
        return self.join("worker_config.json")

    @property
    def outcomes_dir(self) -> str:
        return self.join("outcomes")

    @property
    def scheduler_dir(self) -> str:
        return self.join("scheduler")

    def archive_path(self, kind: str) -> str:
        """``results``, ``exceptions``, ``stdout`` or ``stderr``."""
        return self.join(f"{kind}.zip")

    def outcome_path(self, ichunk: int) -> str:
        return os.path.join(self.outcomes_dir, outcome_member(ichunk))

    def chunk_output_path(self, ichunk: int, stream: str) -> str:
        """``outcomes/<ichunk>.stdout`` (or ``.stderr``): what the tasks of a chunk
        printed, where jobs claim chunks and so run several (see
        :mod:`pypoolparty.claims`); written by the worker while the chunk runs."""
        return os.path.join(self.outcomes_dir, f"{ichunk}.{stream}")

    def submission_dir(self, name: str) -> str:
        return make_private_dir(os.path.join(self.scheduler_dir, name))

    def create(self) -> None:
        for path in (self.path, self.outcomes_dir, self.scheduler_dir):
            make_private_dir(path)

    def exists(self) -> bool:
        return os.path.exists(self.metadata_path)

    def acquire_lock(self) -> None:
        """Make sure no other live process runs this map in this directory.

        Raises
        ------
        WorkDirError
            If a live process (or one on another host) holds the lock.
        """
        me = LockHolder(host=socket.gethostname(), pid=os.getpid())
        for _ in range(2):
            try:
                descriptor = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                try:
                    holder = LockHolder.read(self.lock_path)
                except (OSError, ValueError):
                    holder = None
                if holder is not None and holder.is_alive_here():
                    raise WorkDirError(
                        f"another process (pid {holder.pid} on {holder.host}) is running "
                        f"this map in {self.path!r}. Wait for it, or stop it; if it is gone "
                        f"for good, delete {self.lock_path!r}."
                    ) from None
                os.remove(self.lock_path)
                continue
            with os.fdopen(descriptor, "w") as file:
                file.write(me.to_json())
            return
        raise WorkDirError(f"cannot lock {self.path!r}: another process keeps taking the lock")

    def release_lock(self) -> None:
        try:
            os.remove(self.lock_path)
        except FileNotFoundError:
            pass

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@dataclasses.dataclass(frozen=True)
class LockHolder:
    """The process that holds a map's lock, as ``session.lock`` says: ``{"host", "pid"}``."""

    host: str
    pid: int

    def to_json(self) -> str:
        return json.dumps({"host": self.host, "pid": self.pid})

    @classmethod
    def read(cls, path: str) -> LockHolder | None:
        """The holder of the lock file at ``path``; None if there is no lock.

        Raises
        ------
        OSError
            If the file cannot be read.
        ValueError
            If it is not a lock (being written this instant, or damaged).
        """
        try:
            holder = read_json(path)
        except FileNotFoundError:
            return None
        try:
            return cls(host=str(holder["host"]), pid=int(holder["pid"]))
        except (KeyError, TypeError) as error:
            raise ValueError(f"{path!r} is not a lock: {error}") from error

    def is_alive_here(self) -> bool:
        """A lock of another host is taken as alive: we cannot see its processes."""
        if self.host != socket.gethostname():
            return True
        if self.pid == os.getpid():
            return False
        return process_is_alive(self.pid)


@dataclasses.dataclass(frozen=True)
class SessionMetadata:
    """What a map is, as its ``session.json`` says; written once, when the map starts."""

    format: int
    pypoolparty_version: str
    fingerprint: str
    """Of the pickled function, the pickled tasks, the chunking and map versus starmap."""
    created: str
    """Local time, ``%Y-%m-%dT%H:%M:%S%z``."""
    submit_host: str
    scheduler: str
    """:attr:`pypoolparty.scheduler.Scheduler.name` of the scheduler that runs it."""
    function: str
    """Its qualified name, at most 200 characters."""
    kind: str
    """``map`` or ``starmap``."""
    num_tasks: int
    chunksize: int
    num_chunks: int
    python_path: str
    session_id: str
    """Random, 8 hex digits, made when the map starts: the map's job names
    carry it, so that no other map -- the same function and tasks from
    another directory or by another user included -- shares them."""
    chunk_starts: tuple[int, ...] = ()
    """The first task of each chunk, where chunks differ in size (they shrink
    towards the map's end: :func:`pypoolparty.chunking.guided_bounds`);
    empty where every chunk but the last holds ``chunksize`` tasks. Of the
    chunks the map was cut into when it started; see :attr:`pieces`."""
    pieces: tuple[tuple[int, int, int, int], ...] = ()
    """``(ichunk, source, start, stop)`` of each chunk that runs tasks
    ``start..stop-1`` of the chunk ``source``'s member of ``tasks.zip``
    instead of the chunk's own: the pieces a chunk stopped by a time limit
    is continued in, and that chunk cut down to the tasks it finished
    (:mod:`pypoolparty.splitting`). Pieces take the chunk indices after the
    map's first ones (:attr:`num_chunks` counts them), so they need not be
    in task order. Rewritten, atomically, as chunks are split; the worker
    reads it (its own copy of this field's format)."""

    @classmethod
    def of_new_map(
        cls,
        *,
        fingerprint: str,
        scheduler: str,
        function: str,
        star: bool,
        num_tasks: int,
        chunksize: int,
        num_chunks: int,
        python_path: str,
        chunk_starts: tuple[int, ...] = (),
    ) -> SessionMetadata:
        """The metadata of a map starting now on this host."""
        return cls(
            format=METADATA_FORMAT,
            pypoolparty_version=__version__,
            fingerprint=fingerprint,
            created=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            submit_host=socket.gethostname(),
            scheduler=scheduler,
            function=function[:200],
            kind="starmap" if star else "map",
            num_tasks=num_tasks,
            chunksize=chunksize,
            num_chunks=num_chunks,
            python_path=python_path,
            session_id=secrets.token_hex(4),
            chunk_starts=tuple(chunk_starts),
        )

    def write(self, session_dir: SessionDir) -> None:
        """Write ``session.json`` of ``session_dir``, atomically."""
        fields = dataclasses.fields(SessionMetadata)
        write_json(session_dir.metadata_path, {f.name: getattr(self, f.name) for f in fields})

    @staticmethod
    def read(session_dir: SessionDir) -> SessionMetadata:
        """Read ``session.json`` of ``session_dir``.

        What only describes the map may be missing; the map's size may not.

        Raises
        ------
        OSError
            If it cannot be read.
        ValueError
            If it is not JSON, or lacks the map's size.
        """
        metadata = read_json(session_dir.metadata_path)
        try:
            return SessionMetadata(
                format=int(metadata.get("format", METADATA_FORMAT)),
                pypoolparty_version=str(metadata.get("pypoolparty_version", "?")),
                fingerprint=str(metadata.get("fingerprint", "")),
                created=str(metadata.get("created", "")),
                submit_host=str(metadata.get("submit_host", "?")),
                scheduler=str(metadata.get("scheduler", "?")),
                function=str(metadata.get("function", "?")),
                kind=str(metadata.get("kind", "map")),
                num_tasks=int(metadata["num_tasks"]),
                chunksize=max(1, int(metadata["chunksize"])),
                num_chunks=int(metadata["num_chunks"]),
                python_path=str(metadata.get("python_path", "")),
                # Maps started before session ids existed named jobs after the fingerprint.
                session_id=str(metadata.get("session_id") or metadata.get("fingerprint", ""))[:8],
                chunk_starts=tuple(int(start) for start in metadata.get("chunk_starts") or ()),
                pieces=tuple(
                    (int(i), int(source), int(start), int(stop))
                    for i, source, start, stop in metadata.get("pieces") or ()
                ),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as error:
            raise ValueError(f"{session_dir.metadata_path!r} lacks {error}") from error

    def with_pieces(self, pieces: dict[int, tuple[int, int, int]]) -> SessionMetadata:
        """This map's metadata with ``pieces`` (ichunk -> ``(source, start, stop)``)
        in place of :attr:`pieces`, and as many chunks as they make."""
        rows = tuple(sorted((i, *piece) for i, piece in pieces.items()))
        num_chunks = max([self.num_chunks] + [i + 1 for i, *_ in rows])
        return dataclasses.replace(self, pieces=rows, num_chunks=num_chunks)

    def chunk_bounds(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of each chunk's tasks, pieces included, by chunk index."""
        bounds = [(r.start, r.stop) for r in map(self._first_tasks_of, range(self.num_chunks))]
        for ichunk, _, start, stop in self.pieces:
            bounds[ichunk] = (start, stop)
        return bounds

    def _first_tasks_of(self, ichunk: int) -> range:
        """The tasks of ``ichunk`` as the map was first cut (empty for a piece)."""
        if self.chunk_starts:
            starts = self.chunk_starts
            if ichunk >= len(starts):
                return range(0)
            stop = starts[ichunk + 1] if ichunk + 1 < len(starts) else self.num_tasks
            return range(starts[ichunk], stop)
        start = ichunk * self.chunksize
        return range(min(start, self.num_tasks), min(start + self.chunksize, self.num_tasks))


@dataclasses.dataclass(frozen=True)
class SessionInfo(SessionMetadata):
    """A map's metadata and the session directory it is in."""

    path: str = ""

    @classmethod
    def at(cls, path: str) -> SessionInfo:
        """Read the metadata of the session directory ``path``; raises as :meth:`read`."""
        metadata = SessionMetadata.read(SessionDir(path))
        return cls(path=path, **dataclasses.asdict(metadata))

    @property
    def name(self) -> str:
        return os.path.basename(os.path.normpath(self.path))

    @property
    def dir(self) -> SessionDir:
        return SessionDir(self.path)

    def chunk_of(self, itask: int) -> int:
        """The chunk that runs task ``itask`` (a piece of a split chunk, if it is in one)."""
        if self.pieces:
            ichunk = self._chunks.chunk_of(itask)
            return -1 if ichunk is None else ichunk
        if self.chunk_starts:
            return bisect.bisect_right(self.chunk_starts, itask) - 1
        return itask // self.chunksize

    def tasks_of(self, ichunk: int) -> range:
        """The task indices of chunk ``ichunk``."""
        for piece, _, start, stop in self.pieces:
            if piece == ichunk:
                return range(start, stop)
        return self._first_tasks_of(ichunk)

    @functools.cached_property
    def _chunks(self) -> chunking.ChunkFinder:
        return chunking.ChunkFinder(self.chunk_bounds())


def process_is_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (also as another user's)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_base_if_empty(base: str) -> None:
    if os.path.basename(base) == DEFAULT_BASE_NAME:
        try:
            os.rmdir(base)
        except OSError:
            pass


def _user_name() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without a passwd entry (some containers)
        return str(os.getuid())
