"""Remove the session directories of maps that are over: ``pypoolparty clean``.

A map's session directory is one of three kinds here:

- **finished**: its last call returned every result (a kept work_dir, or a
  cache made with ``reuse_results``). Removed by default.
- **unfinished**: no live process holds it, and its last call did not
  return every result -- interrupted, stopped by an error, or with tasks
  that raised. Calling the same map again would continue it, so it is
  removed only when asked (``--unfinished``): that is the user's call
  ("abandoned"), not one a tool can make.
- **running**: a live process holds its lock (``session.lock``), or a
  process on another host does, which cannot be checked from here. Never
  removed.

A directory is removed under its own lock, taken as a map would take it, so
that a map started meanwhile either finds it whole or not at all: the lock
is taken, the kind checked again, the directory renamed out of the way (an
atomic step) and only then deleted. Everything is read through the owners of
the formats, :mod:`pypoolparty.work_dir` and :mod:`pypoolparty.event_log`.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import uuid

from . import event_log, work_dir
from .errors import WorkDirError
from .work_dir import LockHolder, SessionDir, SessionInfo

FINISHED, UNFINISHED, RUNNING = "finished", "unfinished", "running"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What ``clean`` makes of one session directory."""

    session: SessionInfo
    kind: str
    """:data:`FINISHED`, :data:`UNFINISHED` or :data:`RUNNING`."""
    detail: str
    """How the map ended, or who holds it."""
    size: int
    """Bytes the directory takes on disk."""
    removable: bool
    """Whether ``clean`` removes it, with the options it was given."""


def survey(sessions: list[SessionInfo], unfinished: bool) -> list[Verdict]:
    """Judge each session directory, without changing anything.

    Parameters
    ----------
    sessions : list of SessionInfo
        From :func:`pypoolparty.inspection.find_sessions`.
    unfinished : bool
        Also remove unfinished maps that no live process holds.

    Returns
    -------
    list of Verdict
        In the order of ``sessions``.
    """
    verdicts = []
    for session in sessions:
        kind, detail = judge(session.dir)
        removable = kind == FINISHED or (kind == UNFINISHED and unfinished)
        verdicts.append(Verdict(session, kind, detail, disk_usage(session.path), removable))
    return verdicts


def judge(session_dir: SessionDir) -> tuple[str, str]:
    """The kind of ``session_dir`` (finished, unfinished or running) and a detail."""
    holder = _live_holder(session_dir)
    if holder is not None:
        return RUNNING, holder
    last = event_log.last_event(session_dir.log_path)
    if last is not None and last["event"] == event_log.SESSION_FINISHED:
        return FINISHED, ""
    return UNFINISHED, _how_it_stopped(last)


def remove(verdict: Verdict) -> bool:
    """Remove the directory of ``verdict`` if it still is what the verdict says.

    Returns
    -------
    bool
        True if it was removed; False if a map started in it meanwhile (or
        finished, or stopped), so that it is no longer what was judged.

    Raises
    ------
    OSError
        If it cannot be renamed or deleted.
    """
    session_dir = verdict.session.dir
    try:
        session_dir.acquire_lock()
    except WorkDirError:
        return False
    try:
        kind, _ = judge(session_dir)
        if kind != verdict.kind:
            session_dir.release_lock()
            return False
        parent, name = os.path.split(os.path.normpath(session_dir.path))
        # Out of the way at once: a map started now makes a new directory.
        doomed = os.path.join(parent, f".removing-{name}-{uuid.uuid4().hex[:8]}")
        os.rename(session_dir.path, doomed)
    except BaseException:
        session_dir.release_lock()
        raise
    shutil.rmtree(doomed)
    work_dir.remove_base_if_empty(parent)
    return True


def disk_usage(path: str) -> int:
    """Bytes the files under ``path`` take on disk (as ``du`` counts them)."""
    total = 0
    for root, _, names in os.walk(path):
        for name in [*names, "."]:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:  # removed meanwhile
                pass
    return total


def format_size(size: int) -> str:
    """``size`` bytes for a person: ``512 B``, ``1.5 KiB``, ``12.3 MiB``, ``2.0 GiB``.

    Examples
    --------
    >>> format_size(512), format_size(1536), format_size(5 * 2**30)
    ('512 B', '1.5 KiB', '5.0 GiB')
    """
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _live_holder(session_dir: SessionDir) -> str | None:
    """Who holds the lock of ``session_dir`` and may be alive; None if nobody does."""
    try:
        holder = LockHolder.read(session_dir.lock_path)
    except (OSError, ValueError):
        return "its lock is being taken this instant"
    if holder is None or not holder.is_alive_here():
        return None
    if holder.host != socket.gethostname():
        return f"pid {holder.pid} on host {holder.host}, which cannot be checked from here"
    return f"pid {holder.pid} on host {holder.host}"


def _how_it_stopped(last: dict | None) -> str:
    if last is None:
        return "nothing logged"
    if last["event"] == event_log.SESSION_FAILED:
        return "a task raised"
    if last["event"] == event_log.SESSION_ABORTED:
        error = str(last.get("error", ""))
        if event_log.is_interruption(error):
            return "interrupted"
        return f"stopped by an error ({error.split(':', 1)[0]})"
    return "its process is gone"
