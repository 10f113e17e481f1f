"""Which job runs which chunk: the claims jobs make on the session directory.

A job starts with its own chunk (the one it was submitted for, its *home*
chunk) and, once that is done, claims further chunks that no job has claimed
yet and runs them, until none is left; then it exits (see
:mod:`pypoolparty.worker`). So a job that drew short tasks goes on with the
work of others, and the slots stay busy until the map's end, without any
job waiting for work that is not there.

A claim is a symbolic link in ``claims/``, named by the chunk::

    claims/<ichunk>  ->  "running:<home>:<run>:<submission>"
                         "done:<home>:<run>:<submission>"
                         "withdrawn:<call>"

``<home>`` and ``<submission>`` name the claiming job: the chunk it was
submitted for and its submission (:attr:`pypoolparty.scheduler.Job.submission`),
which together are unique to one job of the map. ``<run>`` names the worker
process. Once the chunk's outcome is written the worker replaces the link by
one that says ``done`` (a rename, so readers see one or the other). The map
itself writes ``withdrawn`` for a chunk whose tasks the caller took back
(:mod:`pypoolparty.withdrawal`), with ``<call>`` naming the call of the map
that did; a later call takes such a claim back.

Why links: ``symlink`` creates the name or fails with ``EEXIST`` in one
step, on local disks and on NFS alike (it is one ``SYMLINK`` call to the
server, which fails if the name exists), where ``flock``/``fcntl`` locks are
missing on many sites and ``O_EXCL`` was not atomic before NFSv3. Its text
is read with one ``readlink``, without opening a file; no link is ever
changed but by the process that made it, or by the map once that process's
job is gone.

``claims/next`` is a hint, no claim: the lowest chunk that may be unclaimed,
so that a job looking for work does not try every chunk that others took
(all chunks below it were claimed when it was written; one taken back since
runs in a job of its own).

A claim made by a job that died, and not done, is taken back by the map
(:func:`release`) before its chunk runs again, as a chunk in error is.

This module owns that format. :mod:`pypoolparty.worker`, which must not
import pypoolparty, keeps its own copy of what it needs; the two must agree.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from typing import NamedTuple

DIRECTORY = "claims"
"""In the session directory."""
NEXT_HINT = "next"
RUNNING = "running"
DONE = "done"
WITHDRAWN = "withdrawn"


class Claim(NamedTuple):
    """One chunk's claim, as its link says."""

    state: str
    """:data:`RUNNING`, :data:`DONE` or :data:`WITHDRAWN`."""
    home: int | None
    """The claiming job's own chunk; None when withdrawn."""
    run: str
    """The claiming worker process (host, pid, a random token); for a
    withdrawn chunk, the call of the map that withdrew it."""
    submission: str
    """The claiming job's submission name."""

    @property
    def job_key(self) -> tuple[str, int] | None:
        """``(submission, home)``: which job of the map made the claim."""
        return None if self.home is None else (self.submission, self.home)


def directory(session_dir: str) -> str:
    """Where a session's claims are."""
    return os.path.join(session_dir, DIRECTORY)


def parse(text: str) -> Claim | None:
    """The claim a link's text says, or None if it says none.

    >>> parse("running:3:host.12.ab:pypoolparty-1a2b-1")
    Claim(state='running', home=3, run='host.12.ab', submission='pypoolparty-1a2b-1')
    >>> parse("withdrawn:4f2a").run
    '4f2a'
    """
    if text.startswith(f"{WITHDRAWN}:"):
        return Claim(WITHDRAWN, None, text.partition(":")[2], "")
    parts = text.split(":", 3)
    if len(parts) != 4 or parts[0] not in (RUNNING, DONE) or not parts[1].isdigit():
        return None
    return Claim(parts[0], int(parts[1]), parts[2], parts[3])


def read(session_dir: str, skip: Iterable[int] = ()) -> dict[int, Claim]:
    """The claims in ``session_dir``, by chunk, leaving out the chunks in ``skip``.

    One listing of ``claims/`` and one ``readlink`` per claim read. A link
    being replaced or taken back while this reads is left out (the next
    read sees it).
    """
    path = directory(session_dir)
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return {}
    skipped = set(skip)
    found = {}
    for name in names:
        if not name.isdigit() or int(name) in skipped:
            continue
        try:
            claim = parse(os.readlink(os.path.join(path, name)))
        except OSError:
            continue
        if claim is not None:
            found[int(name)] = claim
    return found


def release(session_dir: str, ichunks: Iterable[int]) -> None:
    """Take back the claims of ``ichunks``, so that another job may claim them.

    Call only once the claiming job is gone (or this map cancelled it): a
    job still running the chunk would run it beside the next one.
    """
    path = directory(session_dir)
    released = list(ichunks)
    for ichunk in released:
        with contextlib.suppress(FileNotFoundError):
            os.remove(os.path.join(path, str(ichunk)))
    if released:
        _lower_hint(path, min(released))


def _lower_hint(path: str, ichunk: int) -> None:
    """Make ``claims/next`` at most ``ichunk``, so that jobs look there again.

    A worker that writes a higher hint at the same moment only makes the
    chunk wait for a job of its own (the map submits one).
    """
    hint = os.path.join(path, NEXT_HINT)
    try:
        current = os.readlink(hint)
    except OSError:
        return  # no hint: jobs start from chunk 0
    if current.isdigit() and int(current) <= ichunk:
        return
    temporary = os.path.join(path, f".{NEXT_HINT}.map.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        os.remove(temporary)
    os.symlink(str(ichunk), temporary)
    os.replace(temporary, hint)


def withdraw(session_dir: str, ichunk: int, call: str) -> bool:
    """Claim ``ichunk`` for no job, so that none runs it; False if a job claimed it first.

    ``call`` names the call of the map that withdraws it: a claim it made
    before counts as made now.

    Raises
    ------
    OSError
        If the link cannot be made for another reason than an existing claim.
    """
    path = directory(session_dir)
    os.makedirs(path, mode=0o700, exist_ok=True)
    text = f"{WITHDRAWN}:{call}"
    link = os.path.join(path, str(ichunk))
    try:
        os.symlink(text, link)
    except FileExistsError:
        try:
            return os.readlink(link) == text
        except OSError:
            return False
    return True
