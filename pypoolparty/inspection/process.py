"""Who runs a map now: the end its last call logged, or else the holder of its lock."""

from __future__ import annotations

import dataclasses
import socket

from ..work_dir import LockHolder, SessionInfo, process_is_alive


@dataclasses.dataclass(frozen=True)
class ProcessState:
    """Who runs the map now, as far as the work_dir tells."""

    ending: str
    """One of ``finished``, ``task_failed``, ``stopped``, ``running``, ``interrupted``,
    ``not_started``."""

    detail: str = ""
    """The error that stopped it, the task that failed, or who holds the lock."""


def state_from_lock(session: SessionInfo, num_calls: int) -> ProcessState:
    """A map whose last call logged no end either runs now or was killed.

    ``num_calls`` is how many calls of the map the log records.
    """
    holder = _lock_holder(session)
    if holder is None:
        if num_calls == 0:
            return ProcessState("not_started", "nothing was logged yet")
        return ProcessState("interrupted", "no process holds the map's lock")
    host, pid = holder
    if host != socket.gethostname():
        return ProcessState("running", f"pid {pid} on host {host}, not checkable from here")
    if process_is_alive(pid):
        return ProcessState("running", f"pid {pid} on host {host}")
    return ProcessState("interrupted", f"pid {pid} on host {host}, which holds the lock, is gone")


def _lock_holder(session: SessionInfo) -> tuple[str, int] | None:
    try:
        holder = LockHolder.read(session.dir.lock_path)
    except (OSError, ValueError):
        # Being written this instant, or damaged: someone took the lock.
        return "?", -1
    return None if holder is None else (holder.host, holder.pid)
