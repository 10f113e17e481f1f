"""Pickling the function and the tasks, with errors that say what to do.

The function is pickled once per map. Tasks are pickled one chunk at a time
straight into ``tasks.zip``, so the submitting process never holds pickled
copies of all tasks. While writing, a fingerprint of the function and the
tasks is computed: it names the session directory, so calling the same map
again finds, and continues, the earlier session.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import zipfile

import cloudpickle

from .errors import Unpicklable


def pickle_function(func) -> bytes:
    try:
        data = cloudpickle.dumps(func)
        pickle.loads(data)
    except Exception as error:
        raise Unpicklable(
            f"the function {_name(func)} cannot be pickled, so it cannot be sent to the "
            f"jobs: {type(error).__name__}: {error}. Make it a module-level function, or "
            "avoid capturing objects such as open files, locks or connections."
        ) from error
    return data


def write_tasks(
    path: str, tasks: list, bounds: list[tuple[int, int]], function_bytes: bytes, identity: str
) -> str:
    """Write one zip member per chunk to ``path``; return the map's fingerprint.

    ``identity`` names whatever else makes two maps different although their
    function and tasks are equal (map or starmap, the interpreter, which
    environment variables are exported).
    """
    digest = hashlib.sha256()
    digest.update(identity.encode())
    digest.update(function_bytes)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED) as archive:
            for ichunk, (start, stop) in enumerate(bounds):
                data = _pickle_chunk(tasks, start, stop)
                digest.update(f"|{start}:{stop}|".encode())
                digest.update(data)
                archive.writestr(f"{ichunk}.pickle", data)
        file.flush()
        os.fsync(file.fileno())
    return digest.hexdigest()


def _pickle_chunk(tasks: list, start: int, stop: int) -> bytes:
    try:
        return cloudpickle.dumps((start, tasks[start:stop]))
    except Exception:
        for itask in range(start, stop):
            try:
                cloudpickle.dumps(tasks[itask])
            except Exception as error:
                raise Unpicklable(
                    f"task {itask} ({type(tasks[itask]).__name__}) cannot be pickled, so it "
                    f"cannot be sent to a job: {type(error).__name__}: {error}. Nothing was "
                    "submitted."
                ) from error
        raise


def _name(func) -> str:
    return getattr(func, "__qualname__", None) or repr(func)
