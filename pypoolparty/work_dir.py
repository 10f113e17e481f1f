"""The work_dir: the only channel between the submit host and compute nodes.

Layout of one map's session directory (all 0700 directories, 0600 files)::

    <work_dir>/map-<fingerprint>/
        session.json        what this map is (see :mod:`pypoolparty.session`)
        session.lock        host and pid of the process running the map
        log.jsonl           event log
        function.pickle     the function, pickled once
        tasks.zip           one member per chunk: (first task index, tasks)
        worker.py           the worker script (standard library + cloudpickle)
        worker_config.json  map or starmap, the submitter's sys.path, limits
        environment.json    the exported variables (never logged)
        outcomes/           <ichunk>.pickle written by workers, folded away
        scheduler/          job scripts and the scheduler's stdout/stderr
        results.zip  exceptions.zip  stdout.zip  stderr.zip

Files are written atomically (write, then rename), so a reader never sees
half a file, on NFS too.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import stat
import uuid

import rename_after_writing

from .errors import WorkDirError

DEFAULT_BASE_NAME = ".pypoolparty"
PROBE_SIZE = 64 * 1024


def prepare_base(work_dir: str | None) -> str:
    """Create (0700) and check the directory that holds session directories."""
    base = work_dir if work_dir is not None else os.path.join(os.getcwd(), DEFAULT_BASE_NAME)
    base = os.path.abspath(base)
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
        raise WorkDirError(
            f"the work_dir {path!r} can be written by others (mode {stat.filemode(info.st_mode)}); "
            f"pickles in it are code. Run 'chmod 700 {path}' or use another work_dir."
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
    def environment_path(self) -> str:
        return self.join("environment.json")

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
        return os.path.join(self.outcomes_dir, f"{ichunk}.pickle")

    def submission_dir(self, name: str) -> str:
        return make_private_dir(os.path.join(self.scheduler_dir, name))

    def create(self) -> None:
        for path in (self.path, self.outcomes_dir, self.scheduler_dir):
            make_private_dir(path)

    def exists(self) -> bool:
        return os.path.exists(self.metadata_path)

    def acquire_lock(self) -> None:
        """Make sure no other live process runs this map in this directory."""
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        for _ in range(2):
            try:
                descriptor = os.open(self.lock_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                holder = _read_lock(self.lock_path)
                if holder is not None and _is_alive_here(holder):
                    raise WorkDirError(
                        f"another process (pid {holder['pid']} on {holder['host']}) is running "
                        f"this map in {self.path!r}. Wait for it, or stop it; if it is gone "
                        f"for good, delete {self.lock_path!r}."
                    ) from None
                os.remove(self.lock_path)
                continue
            with os.fdopen(descriptor, "w") as file:
                json.dump(me, file)
            return
        raise WorkDirError(f"cannot lock {self.path!r}: another process keeps taking the lock")

    def release_lock(self) -> None:
        try:
            os.remove(self.lock_path)
        except FileNotFoundError:
            pass

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _read_lock(path: str) -> dict | None:
    try:
        return read_json(path)
    except (OSError, ValueError):
        return None


def _is_alive_here(holder: dict) -> bool:
    """A lock of another host is taken as alive: we cannot see its processes."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid == os.getpid():
        return False
    return process_is_alive(pid)


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
