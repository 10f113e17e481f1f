"""Files a task reads: ``pypoolparty.InputFile(path)`` in its arguments.

Wrap a path in :class:`InputFile` wherever it is in a task (or in what the
function captures), and the task gets a path it can open on the node, as a
``str``::

    tasks = [pypoolparty.InputFile(f"run-{i}.h5") for i in range(100)]
    pool.map(analyse, tasks)  # analyse gets the path of its file on the node

On a shared file system that is the file's absolute path on the submit host.
Without one (``pypoolparty.htcondor.Pool(shared_file_system=False)``), the
file travels with the job of the task's chunk, into
``input_files/<digest of the path>/<name>`` of the job's scratch directory,
and the task gets that path. A file that does not exist is an error before
anything is submitted.

How: the wrapped path is replaced while the tasks are pickled
(:meth:`InputFile.__reduce__`), so the task gets a plain ``str`` and the
node needs no pypoolparty. Which chunk needs which file is recorded then,
in ``input_files.json`` of the session directory (this module owns it);
:mod:`pypoolparty.job_files` stages the files of each job's chunk.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from collections.abc import Iterator, Sequence

from . import work_dir
from .errors import BadInput

MANIFEST_NAME = "input_files.json"
"""In the session directory: chunk -> the input files its job gets."""

DIRECTORY = "input_files"
"""In a job's scratch directory."""

ALL_CHUNKS = "all"
"""The manifest's key for files the function captures: every job gets them."""

_state = threading.local()


class InputFile(os.PathLike):
    """A file a task reads, which travels with its job where there is no shared file system.

    Parameters
    ----------
    path : str or os.PathLike
        The file on the submit host; a relative path is taken from the
        current directory.

    The task gets a ``str``: the file's path where it runs (see the module's
    docstring). Outside a map, an ``InputFile`` is the path-like of its
    absolute path.
    """

    __slots__ = ("path",)

    def __init__(self, path: str | os.PathLike) -> None:
        path = os.fspath(path)
        if not isinstance(path, str) or not path:
            raise BadInput(f"InputFile takes the path of a file, not {path!r}")
        self.path = os.path.abspath(path)

    def __fspath__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return f"pypoolparty.InputFile({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, InputFile) and other.path == self.path

    def __hash__(self) -> int:
        return hash((InputFile, self.path))

    def __reduce__(self):
        collector = getattr(_state, "collector", None)
        if collector is None:
            return (InputFile, (self.path,))
        return collector.reduce(self)


def local_path(path: str) -> str:
    """Where the file at ``path`` (absolute) is in a job's scratch directory, relative to it."""
    digest = hashlib.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return f"{DIRECTORY}/{digest}/{os.path.basename(path)}"


class Collector:
    """Records the input files pickled for each chunk, and replaces them by paths."""

    def __init__(self, shared_file_system: bool) -> None:
        self.shared_file_system = shared_file_system
        self.chunk: int | str = ALL_CHUNKS
        self.files: dict[int | str, set[str]] = {}

    def reduce(self, file: InputFile):
        self.files.setdefault(self.chunk, set()).add(file.path)
        if self.shared_file_system:
            return (str, (file.path,))
        # Made absolute when the worker unpickles its chunk, in its scratch directory.
        return (os.path.abspath, (local_path(file.path),))

    @contextlib.contextmanager
    def pickling_chunk(self, ichunk: int) -> Iterator[None]:
        self.chunk = ichunk
        try:
            yield
        finally:
            self.chunk = ALL_CHUNKS

    def check(self, bounds: Sequence[tuple[int, int]]) -> None:
        """Raise :class:`pypoolparty.BadInput` for the first file that is no readable file."""
        for chunk, paths in sorted(self.files.items(), key=lambda item: str(item[0])):
            for path in sorted(paths):
                if os.path.isfile(path) and os.access(path, os.R_OK):
                    continue
                if chunk == ALL_CHUNKS:
                    where = "the function"
                else:
                    start, stop = bounds[chunk]
                    where = f"a task of chunk {chunk} (tasks {start}..{stop - 1})"
                problem = (
                    "is a directory" if os.path.isdir(path) else "is no file this process can read"
                )
                raise BadInput(
                    f"the InputFile {path!r} of {where} {problem}. Pass InputFile the path "
                    "of an existing, readable file. Nothing was submitted."
                )

    def write_manifest(self, session_dir: work_dir.SessionDir) -> None:
        """Write ``input_files.json`` if any file was pickled (without a shared file system)."""
        if self.shared_file_system or not self.files:
            return
        manifest = {str(chunk): sorted(paths) for chunk, paths in self.files.items()}
        work_dir.write_json(session_dir.join(MANIFEST_NAME), manifest)


@contextlib.contextmanager
def collecting(shared_file_system: bool) -> Iterator[Collector]:
    """Replace and record the :class:`InputFile` objects pickled in this thread meanwhile."""
    collector = Collector(shared_file_system)
    previous = getattr(_state, "collector", None)
    _state.collector = collector
    try:
        yield collector
    finally:
        _state.collector = previous


@contextlib.contextmanager
def pickling_chunk(ichunk: int) -> Iterator[None]:
    """Files pickled meanwhile belong to chunk ``ichunk`` (a no-op when nothing collects)."""
    collector = getattr(_state, "collector", None)
    if collector is None:
        yield
        return
    with collector.pickling_chunk(ichunk):
        yield


def files_of_chunks(session_dir: str, chunks: Sequence[int]) -> dict[int, list[str]]:
    """The input files (absolute paths) the job of each of ``chunks`` gets, from the manifest."""
    path = os.path.join(session_dir, MANIFEST_NAME)
    try:
        manifest = work_dir.read_json(path)
    except FileNotFoundError:
        return {ichunk: [] for ichunk in chunks}
    shared = manifest.get(ALL_CHUNKS, [])
    return {ichunk: sorted({*shared, *manifest.get(str(ichunk), [])}) for ichunk in chunks}


__all__ = ["InputFile", "collecting", "files_of_chunks", "local_path", "pickling_chunk"]
