"""Pickling the function and the tasks, with errors that say what to do.

The function is pickled once per map. Tasks are pickled one chunk at a time
straight into ``tasks.zip``, so the submitting process never holds pickled
copies of all tasks. While writing, a fingerprint of the function and the
tasks is computed: it names the session directory, so calling the same map
again finds, and continues, the earlier session.

cloudpickle writes ``<dynamic-code>`` as the file name of every code object
it pickles by value (so that the bytes, and with them the fingerprint, do not
depend on where a script or a notebook cell lives). While pickling, the real
file names are recorded in a :class:`CodeFiles` instead; the worker gives
each code object its file name back as it unpickles it (see
:mod:`pypoolparty.worker`), so that tracebacks, warnings and ``inspect`` in
the task name the user's file.
"""

from __future__ import annotations

import collections
import hashlib
import io
import os
import pickle
import types
import zipfile
from collections.abc import Mapping

import cloudpickle

from . import input_files
from .errors import Unpicklable, also_of_type


class CodeFiles:
    """The file names of the code objects pickled by value, by :func:`code_key`."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self._ambiguous: set[str] = set()

    def record(self, code: types.CodeType) -> None:
        key = code_key(code)
        if key in self._ambiguous or self.files.get(key, code.co_filename) != code.co_filename:
            # The same code in two files: naming either could mislead.
            self._ambiguous.add(key)
            self.files.pop(key, None)
        else:
            self.files[key] = code.co_filename


def code_key(code: types.CodeType) -> str:
    """What identifies a code object on both sides of a pickle, its file name apart.

    The worker repeats this function (it cannot import pypoolparty).
    """
    name = getattr(code, "co_qualname", code.co_name)
    digest = hashlib.sha256(code.co_code).hexdigest()[:16]
    return f"{name}:{code.co_firstlineno}:{digest}"


class _Pickler(cloudpickle.Pickler):
    """cloudpickle's pickler, recording the file names it replaces by ``<dynamic-code>``.

    The bytes are cloudpickle's own, so fingerprints do not change.
    """

    def __init__(self, file, code_files: CodeFiles) -> None:
        def reduce_code(code):
            code_files.record(code)
            return _CLOUDPICKLE_CODE_REDUCE(code)

        # The C pickler reads dispatch_table when it is initialised.
        self.dispatch_table = collections.ChainMap(
            {types.CodeType: reduce_code}, cloudpickle.Pickler.dispatch_table
        )
        super().__init__(file, protocol=cloudpickle.DEFAULT_PROTOCOL)


_CLOUDPICKLE_CODE_REDUCE = cloudpickle.Pickler.dispatch_table[types.CodeType]


def dumps(obj, code_files: CodeFiles | None = None) -> bytes:
    """``cloudpickle.dumps(obj)``, recording file names of code in ``code_files``."""
    buffer = io.BytesIO()
    _Pickler(buffer, code_files if code_files is not None else CodeFiles()).dump(obj)
    return buffer.getvalue()


def pickle_function(func, code_files: CodeFiles | None = None) -> bytes:
    """``func`` pickled for the jobs.

    Raises
    ------
    pypoolparty.Unpicklable
        ``func`` cannot be pickled (or unpickled). Also an instance of the
        type of the exception pickling raised, as in :mod:`multiprocessing`.
    """
    try:
        data = dumps(func, code_files)
        pickle.loads(data)
    except Exception as error:
        raise also_of_type(
            Unpicklable,
            error,
            f"the function {_name(func)} cannot be pickled, so it cannot be sent to the "
            f"jobs: {type(error).__name__}: {error}. Make it a module-level function, or "
            "avoid capturing objects such as open files, locks or connections.",
        ) from error
    return data


def write_tasks(
    path: str,
    tasks: list,
    bounds: list[tuple[int, int]],
    function_bytes: bytes,
    identity: str,
    code_files: CodeFiles | None = None,
) -> str:
    """Write one zip member per chunk to ``path``; return the map's fingerprint.

    ``identity`` names whatever else makes two maps different although their
    function and tasks are equal (map or starmap, the interpreter, which
    environment variables are exported). The file names of code in the
    tasks are recorded in ``code_files``.

    Raises
    ------
    pypoolparty.Unpicklable
        A task cannot be pickled; also an instance of the type of the
        exception pickling raised, as in :mod:`multiprocessing`.
    """
    digest = hashlib.sha256()
    digest.update(identity.encode())
    digest.update(function_bytes)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED) as archive:
            for ichunk, (start, stop) in enumerate(bounds):
                with input_files.pickling_chunk(ichunk):
                    data = _pickle_chunk(tasks, start, stop, code_files)
                digest.update(f"|{start}:{stop}|".encode())
                digest.update(data)
                archive.writestr(f"{ichunk}.pickle", data)
        file.flush()
        os.fsync(file.fileno())
    return digest.hexdigest()


def _pickle_chunk(tasks: list, start: int, stop: int, code_files: CodeFiles | None) -> bytes:
    try:
        return dumps((start, tasks[start:stop]), code_files)
    except Exception:
        for itask in range(start, stop):
            try:
                cloudpickle.dumps(tasks[itask])
            except Exception as error:
                raise also_of_type(
                    Unpicklable,
                    error,
                    f"task {itask} ({type(tasks[itask]).__name__}) cannot be pickled, so it "
                    f"cannot be sent to a job: {type(error).__name__}: {error}. Nothing was "
                    "submitted.",
                ) from error
        raise


def _name(func) -> str:
    return getattr(func, "__qualname__", None) or repr(func)


def copy_chunk_tasks(tasks_path: str, destinations: Mapping[int, str]) -> None:
    """Write, for each chunk, a ``tasks.zip`` at its destination holding only its member.

    For jobs that get their files by transfer (HTCondor without a shared file
    system): a job needs its own chunk, not the tasks of the whole map. The
    member keeps its name, so the worker reads it as from the map's archive.
    The map's archive is opened once, whatever the number of chunks.
    """
    with zipfile.ZipFile(tasks_path) as archive:
        for ichunk, destination in destinations.items():
            member = f"{ichunk}.pickle"
            data = archive.read(member)
            descriptor = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED) as chunk:
                    chunk.writestr(member, data)
