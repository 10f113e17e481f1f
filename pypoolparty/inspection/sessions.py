"""The maps in a work_dir, and what each one is, from its ``session.json``."""

from __future__ import annotations

import os

from ..work_dir import SessionDir, SessionInfo, is_session_dir_name

WHAT_TO_PASS = (
    "Pass the work_dir given to the Pool (by default ./.pypoolparty in the directory "
    "where the map was called) or one of its map-... directories."
)


class NotAWorkDir(ValueError):
    """The path is not a work_dir or a session directory of one."""


def find_sessions(path: str) -> list[SessionInfo]:
    """The map sessions at ``path``: a work_dir (all its maps) or one session dir.

    Parameters
    ----------
    path : str
        A work_dir given to a Pool, or one of its ``map-...`` directories.

    Returns
    -------
    list of SessionInfo
        Oldest first.

    Raises
    ------
    NotAWorkDir
        If ``path`` is neither, saying what to pass instead.
    """
    if not os.path.isdir(path):
        raise NotAWorkDir(f"{path!r} is not a directory. {WHAT_TO_PASS}")
    if os.path.exists(SessionDir(path).metadata_path):
        return [read_session_info(path)]
    try:
        names = sorted(os.listdir(path))
    except OSError as error:
        raise NotAWorkDir(f"cannot list {path!r}: {error.strerror}. {WHAT_TO_PASS}") from error
    candidates = [os.path.join(path, n) for n in names if is_session_dir_name(n)]
    sessions = [
        read_session_info(c) for c in candidates if os.path.exists(SessionDir(c).metadata_path)
    ]
    if not sessions:
        raise NotAWorkDir(
            f"{path!r} is not a pypoolparty work_dir: it holds neither session.json nor "
            f"map-... directories. {WHAT_TO_PASS}"
        )
    return sorted(sessions, key=lambda s: (s.created, s.name))


def read_session_info(path: str) -> SessionInfo:
    """Read ``session.json`` of the session directory ``path``.

    Raises
    ------
    NotAWorkDir
        If it cannot be read or lacks the map's size.
    """
    try:
        return SessionInfo.at(path)
    except (OSError, ValueError) as error:
        metadata_path = SessionDir(path).metadata_path
        raise NotAWorkDir(f"cannot read {metadata_path!r}: {error}. {WHAT_TO_PASS}") from error


def only_session(path: str) -> SessionInfo:
    """The one session at ``path``; refuse a work_dir that holds several.

    Raises
    ------
    NotAWorkDir
        If ``path`` holds no map, or several, listing their directories.
    """
    sessions = find_sessions(path)
    if len(sessions) > 1:
        listing = "\n".join(f"  {s.path}  ({s.function}, {s.num_tasks} tasks)" for s in sessions)
        raise NotAWorkDir(
            f"{path!r} holds {len(sessions)} maps; pass one of their directories:\n{listing}"
        )
    return sessions[0]
