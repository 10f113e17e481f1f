"""The worker: runs a job's chunks of tasks on a compute node.

This file is copied into each map's session directory and started by the
job's launcher as ``python worker.py SESSION_DIR --ichunk N`` (or with
``--ichunk-from-env VAR [--chunk-list FILE]`` for array jobs), with
``--submission NAME``, the job's submission. It needs only
the standard library and cloudpickle, and it must never import pypoolparty:
the compute node may not have it.

Where the job sees the session directory (``claiming_chunks`` in
``worker_config.json``), the worker claims its chunk N and, once that is
done, further chunks that no job has claimed yet, the lowest first, until
none is left (:class:`Claims`; the format is owned by
``pypoolparty/claims.py``). A job whose chunk another job claimed first
runs others, or exits at once if there are none. Without a shared file
system it runs chunk N only.

With ``tasks_per_job`` N > 1 in ``worker_config.json`` (only where the job
claims), once chunk N is claimed and the function loaded, the worker forks
N - 1 more processes, each claiming and running chunks as the first one
does, so that N tasks run at once; each writes its own outcomes, records and
chunk outputs. They share the job's claims (the same ``<run>``: see
:class:`Claims`), and the first process waits for them before it exits.

It reads from the session directory: ``worker_config.json`` (starmap or map, the
submitter's Python and cloudpickle versions and ``sys.path``, the result size
limit, the file names of the pickled code, the submitting script),
``function.pickle`` and its chunk in ``tasks.zip``. Its environment is set
before it starts: the job's launcher (``launcher.sh``, see
pypoolparty/launcher.py) exports the submitter's variables and runs the setup
lines, then execs this script, so that ``LD_LIBRARY_PATH`` and ``PYTHONPATH``
act on the interpreter itself.

First of all it checks that its own Python version (major.minor) and
cloudpickle version are the submitter's (:func:`interpreter_versions`):
pickled code runs only there. If not, it unpickles nothing and writes an
outcome that says so (``interpreter_mismatch``), which the submitter raises
as ``pypoolparty.InterpreterMismatch``. So that an older Python can get that
far, this file keeps to the syntax of Python 3.6.

As a :mod:`multiprocessing` worker, it makes the submitting script's objects
available as ``__main__`` (and ``__mp_main__``) before the tasks run: see
:func:`install_main_module`. Code pickled by value gets the name of its file
back (cloudpickle writes ``<dynamic-code>``), so the tracebacks name the
user's file: see :class:`Loader`. It
writes one file, ``outcomes/<ichunk>.pickle``, atomically (write, then
rename), holding every task's result or exception with its traceback, the
host name, and start and end times.

So that a killed job loses at most the task it was running, each task's
entry is also appended, as soon as the task ends, to a records file of this
run (``partial/<ichunk>.<run>.records``, format owned by
``pypoolparty/task_records.py``); a later run of the chunk skips the tasks
recorded there, and its outcome holds them. Around each task it tells
``pypoolparty.checkpoint`` which task runs, and once the task is recorded it
removes the task's checkpoint. SIGTERM, SIGUSR1 and SIGUSR2 (what schedulers
send before a kill) stop the chunk: the running task is abandoned (its
checkpoint stays), and the outcome says ``interrupted``, so the map runs the
chunk again from its first unfinished task.

Exit codes: 0 when the outcome was written (even if tasks raised), 1 when it
could not be, or when another process of the job (``tasks_per_job``)
failed. Never 99 or 100, which Grid Engine reads as "reschedule" and
"error".
"""

import argparse
import ast
import contextlib
import faulthandler
import hashlib
import importlib.util
import io
import json
import multiprocessing.process
import os
import pickle
import runpy
import secrets
import shutil
import signal
import site
import socket
import struct
import sys
import time
import traceback
import types
import zipfile
import zlib

OUTCOME_FORMAT = 1
# The outcome's schema is documented in pypoolparty/outcome.py, which reads it.


def main(argv=None):
    args = parse_arguments(argv)
    os.umask(0o077)
    # A task that crashes the process (SIGSEGV in an extension module, say)
    # leaves no record: faulthandler writes where it crashed, every thread's
    # Python traceback, to the job's stderr (fd 2, also when a chunk's
    # output is redirected), for the session's error and the user.
    with contextlib.suppress(Exception):
        faulthandler.enable(all_threads=True)
    # Absolute: a task may change the working directory, and a job that got
    # its files by transfer is given "." (its scratch directory).
    session_dir = os.path.abspath(args.session_dir)
    home = resolve_ichunk(args)
    config = read_json(os.path.join(session_dir, "worker_config.json"))
    # Before anything is unpickled: pickled code runs only on equal versions.
    expected = config.get("interpreter")
    found = interpreter_versions(expected, config.get("sys_path", []))
    own_directory_last()
    if expected and not same_versions(expected, found):
        write_outcome(session_dir, home, mismatch_outcome(home, expected, found))
        return 0
    claims = Claims.of(session_dir, config, home, args.submission)
    ichunk = home if claims is None or claims.take(home) else claims.next()
    if ichunk is None:
        return 0  # other jobs took all the work while this one waited
    enter_working_directory(config.get("working_directory"))
    main_module = import_main_module(config.get("main") or {})
    job = load_job(session_dir, config, main_module)
    with WarningSignals() as signals:
        if claims is not None and job.setup_error is None:
            for _ in range(int(config.get("tasks_per_job") or 1) - 1):
                if signals.received is not None:
                    break  # told to stop: no further process starts work
                if signals.fork_sibling() == 0:
                    run_sibling(session_dir, home, config, job, signals, claims)
        try:
            code = run_chunks(session_dir, ichunk, home, config, job, signals, claims)
        finally:
            siblings_code = signals.wait_for_siblings()
        return max(code, siblings_code)


def run_chunks(session_dir, ichunk, home, config, job, signals, claims):
    """Run ``ichunk``, then, where the job claims work, the chunks it claims next.

    Returns
    -------
    int
        0: every outcome was written (an exception leaves the process).
    """
    while ichunk is not None:
        # A job that runs several chunks keeps the output of each apart.
        with chunk_output(session_dir, ichunk) if claims is not None else contextlib.nullcontext():
            outcome = run_chunk(session_dir, ichunk, config, job, signals)
        outcome["home_chunk"] = home
        if outcome.get("interrupted"):
            # The records (and the claim) stay for the run that continues the chunk.
            write_outcome(session_dir, ichunk, outcome, replace=False)
            break
        write_outcome(session_dir, ichunk, outcome)
        remove_task_records(session_dir, ichunk)
        if claims is None or outcome.get("setup_error") or signals.received is not None:
            # A job that cannot load the function must not take others'
            # work, nor one that was told to stop.
            break
        claims.mark_done(ichunk)
        ichunk = claims.next()
    return 0


def run_sibling(session_dir, home, config, job, signals, claims):
    """A forked process of the job (``tasks_per_job``): claims and runs chunks
    as the first process does, then ends; it never returns into main."""
    code = 1
    try:
        first = claims.next() if signals.received is None else None
        code = run_chunks(session_dir, first, home, config, job, signals, claims)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description="Run one chunk of a pypoolparty map.")
    parser.add_argument("session_dir")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ichunk", type=int)
    source.add_argument("--ichunk-from-env", metavar="VARIABLE")
    parser.add_argument("--chunk-list", metavar="FILE")
    parser.add_argument("--submission", default="", help="the job's submission name")
    return parser.parse_args(argv)


def resolve_ichunk(args):
    """The chunk this job runs: given directly, or via an array task id."""
    if args.ichunk is not None:
        return args.ichunk
    value = os.environ.get(args.ichunk_from_env)
    if value is None or not value.strip().isdigit():
        raise SystemExit(
            f"pypoolparty worker: environment variable {args.ichunk_from_env} "
            f"is {value!r}, not an array task id"
        )
    task_id = int(value)
    if args.chunk_list is None:
        return task_id
    with open(args.chunk_list) as file:
        chunk_list = [int(line) for line in file if line.strip()]
    # Array task ids that are ranges (SGE) start at 1: line 1 is task 1.
    return chunk_list[task_id - 1]


def read_json(path):
    with open(path) as file:
        return json.load(file)


# -- the interpreter check ------------------------------------------------------
# This part runs before anything version-specific: the whole file keeps to the
# syntax of Python 3.6, so that an older Python on a node can still say so.

VERSION_KEYS = ("python", "cloudpickle")
"""What must be equal on both sides; the submitter records them in worker_config.json
(``interpreter``) and checks ``python_path`` with :func:`interpreter_versions` too."""


def interpreter_versions(expected, submitter_sys_path):
    """This interpreter's Python version (major.minor) and the cloudpickle it would use.

    The submitter's ``sys.path`` is appended first (:func:`extend_sys_path`),
    but only when the Python versions match (``expected`` is None: they are
    taken to): the site-packages of another version must not be mixed in.
    cloudpickle is looked for without importing it, then imported, so that
    one built for another Python shows as an error rather than a crash.

    Returns
    -------
    dict
        ``python`` ("3.11"), ``cloudpickle`` (its version, or None where
        there is none or it cannot be imported), ``cloudpickle_error`` (why
        it cannot be imported, if so) and ``executable`` (``sys.executable``).
    """
    found = {
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "cloudpickle": None,
        "executable": sys.executable,
    }
    if not expected or found["python"] == expected.get("python"):
        extend_sys_path(submitter_sys_path)
    try:
        spec = importlib.util.find_spec("cloudpickle")
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return found
    try:
        import cloudpickle
    except Exception as error:
        found["cloudpickle_error"] = f"{type(error).__name__}: {error}"
        return found
    found["cloudpickle"] = str(getattr(cloudpickle, "__version__", "unknown"))
    return found


def same_versions(expected, found):
    return all(expected.get(key) == found.get(key) for key in VERSION_KEYS)


def mismatch_outcome(ichunk, expected, found):
    """The outcome of a chunk whose job cannot run its tasks here: no task ran."""
    now = time.time()
    return {
        "format": OUTCOME_FORMAT,
        "ichunk": ichunk,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start": now,
        "end": now,
        "setup_error": None,
        "tasks": [],
        "interpreter_mismatch": {"expected": expected, "found": found},
    }


SITE_DIRECTORY_NAMES = ("site-packages", "dist-packages")


def extend_sys_path(submitter_sys_path):
    """Let the worker import what the submitting process could import.

    Appended, never ahead of this interpreter's own entries (nor of its
    ``PYTHONPATH``): what the job's environment provides comes first.
    Entries that are files (a ``.zip`` or an ``.egg`` on ``PYTHONPATH``) are
    importable too, so they are kept as well as directories. A
    ``site-packages`` (or Debian's ``dist-packages``) directory is added as
    :mod:`site` adds one, with its ``.pth`` files: an editable install
    (``pip install -e``) is only a ``.pth`` file there, and without it the
    package would be missing in another environment of the same Python.
    A ``.pth`` file may put its entries first (the ``easy-install.pth`` of
    ``setup.py develop`` does): this interpreter's own entries are put back
    ahead of them.
    """
    own = list(sys.path)
    for entry in submitter_sys_path:
        if entry and entry not in sys.path and os.path.exists(entry):
            if os.path.basename(entry.rstrip(os.sep)) in SITE_DIRECTORY_NAMES:
                site.addsitedir(entry)
            else:
                sys.path.append(entry)
    if sys.path[: len(own)] != own:
        sys.path[:] = own + [entry for entry in sys.path if entry not in own]


def own_directory_last():
    """Move this script's directory from the head of ``sys.path`` to its end.

    Python puts a script's directory first. Here that is the session
    directory, whose ``worker.py`` would then shadow a module of the user's
    named ``worker``: a function of it, pickled by reference, would not be
    found. A :mod:`multiprocessing` worker does not have that directory on
    its path at all; it stays, last, for a job that got its files by
    transfer, whose scratch directory holds them.
    """
    own = os.path.dirname(os.path.abspath(__file__))
    if sys.path and sys.path[0] and os.path.abspath(sys.path[0]) == own:
        del sys.path[0]
        sys.path.append(own)


def enter_working_directory(path):
    """Start tasks where the map was called, as multiprocessing's workers do,
    if the compute node sees that directory; else stay where the job started."""
    if path and os.path.isdir(path):
        os.chdir(path)


# -- the submitting script as __main__ -----------------------------------------


def import_main_module(main):
    """The submitting script, run as ``__mp_main__`` as multiprocessing's spawn does.

    ``main`` holds the script's ``path`` (or the ``name`` of a module run as
    ``python -m NAME``), as the submitter recorded it. Only a script with an
    ``if __name__ == "__main__":`` block is run: that block is skipped, as in
    spawn, and the rest was written to be imported. A script without one is
    its program from top to bottom, and running it on every job would run the
    program again (submit its maps, overwrite its files), so it is not run;
    nor is anything in an interactive session, a notebook or ``python -c``.

    While it runs, multiprocessing's flag for "a child imports its main
    module" is set, so that starting a process or a pypoolparty map at its
    top level fails as under spawn. If running it fails (it reads a file this
    node does not have, say), a line on stderr says so and the tasks run
    without it.

    Returns
    -------
    types.ModuleType
        The module named ``__mp_main__``: the script's namespace, or empty.
    """
    module = types.ModuleType("__mp_main__")
    if main.get("argv"):
        # The tasks and the script see the submitter's arguments, as under spawn.
        sys.argv[:] = main["argv"]
    path = main.get("path")
    name = main.get("name")
    if name:
        spec = _find_spec(name)
        path = spec.origin if spec is not None else None
    if not (path and os.path.isfile(path) and has_main_guard(path)):
        return module
    process = multiprocessing.process.current_process()
    inheriting = getattr(process, "_inheriting", False)
    process._inheriting = True
    try:
        if name:
            namespace = runpy.run_module(name, run_name="__mp_main__", alter_sys=True)
        else:
            namespace = runpy.run_path(path, run_name="__mp_main__")
    except (Exception, SystemExit) as error:
        print(
            f"pypoolparty worker: the submitting script {path} could not be imported as "
            f"__mp_main__ ({type(error).__name__}: {error}); the tasks run without it, so "
            "__main__ holds only the objects of the script that they use.",
            file=sys.stderr,
        )
        return module
    finally:
        process._inheriting = inheriting
    module.__dict__.update(namespace)
    return module


def _find_spec(name):
    try:
        return importlib.util.find_spec(name)
    except Exception:
        return None


def has_main_guard(path):
    """Whether the script at ``path`` has an ``if __name__ == "__main__":`` at its top level."""
    try:
        with open(path, "rb") as file:
            tree = ast.parse(file.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return False
    return any(isinstance(node, ast.If) and _is_main_test(node.test) for node in tree.body)


def _is_main_test(test):
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1):
        return False
    if not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s.id for s in sides if isinstance(s, ast.Name)]
    constants = [s.value for s in sides if isinstance(s, ast.Constant)]
    return names == ["__name__"] and constants == ["__main__"]


def install_main_module(module, loader):
    """Make ``module`` ``__main__`` and ``__mp_main__``, holding the objects the tasks use.

    The function and the tasks carry the script's functions and classes by
    value (cloudpickle). Pickling them by reference, as a
    ``multiprocessing.Pool`` started inside a task does, looks them up in
    ``__main__`` and wants the very same objects: so those are put there,
    over whatever running the script defined. A child the task starts with
    spawn finds the script through ``__file__``, as in multiprocessing.
    """
    module.__dict__.update(loader.main_objects())
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module


class Loader:
    """Unpickles the function and the tasks as cloudpickle does, with two additions.

    Code objects get their file names back, from ``code_files`` (recorded by
    the submitter, keyed by :func:`code_key`): cloudpickle writes
    ``<dynamic-code>`` so that its bytes do not depend on where the script
    lives, and tracebacks would name no file. Setting the name when the code
    object is made, rather than rewriting traceback text, also serves the
    task's own logging, warnings and ``inspect``, and lets tracebacks show
    the source line where the node sees the file.

    And the functions and classes of ``__main__`` it makes are remembered,
    for :func:`install_main_module`.
    """

    def __init__(self, code_files):
        self.code_files = code_files
        self._functions = []
        self._classes = []

    def loads(self, data):
        return _Unpickler(io.BytesIO(data), self).load()

    def make_code(self, *args):
        code = types.CodeType(*args)
        filename = self.code_files.get(code_key(code))
        return code.replace(co_filename=filename) if filename else code

    def made_function(self, function):
        self._functions.append(function)
        return function

    def made_class(self, cls):
        self._classes.append(cls)
        return cls

    def main_objects(self):
        """Name -> object of ``__main__``, as the first pickle that held it made it."""
        found = {}
        for function in self._functions:
            if function.__globals__.get("__name__") == "__main__":
                for name, value in function.__globals__.items():
                    if not name.startswith("__"):
                        found.setdefault(name, value)
        for obj in self._functions + self._classes:
            name = getattr(obj, "__qualname__", "")
            if getattr(obj, "__module__", None) == "__main__" and name.isidentifier():
                found.setdefault(name, obj)
        return found


def code_key(code):
    """What identifies a code object on both sides of a pickle, its file name apart.

    A copy of ``pypoolparty.serialization.code_key``: the two must agree.
    """
    name = getattr(code, "co_qualname", code.co_name)
    digest = hashlib.sha256(code.co_code).hexdigest()[:16]
    return f"{name}:{code.co_firstlineno}:{digest}"


class _Unpickler(pickle.Unpickler):
    _CLOUDPICKLE = "cloudpickle.cloudpickle"

    def __init__(self, file, loader):
        super().__init__(file)
        self.loader = loader

    def find_class(self, module, name):
        found = super().find_class(module, name)
        if module != self._CLOUDPICKLE:
            return found
        if name == "_builtin_type":
            return lambda type_name: (
                self.loader.make_code if type_name == "CodeType" else found(type_name)
            )
        if name == "_make_function":
            return lambda *args: self.loader.made_function(found(*args))
        if name in ("_make_skeleton_class", "_make_skeleton_enum"):
            return lambda *args: self.loader.made_class(found(*args))
        return found


# -- running the tasks --------------------------------------------------------


class LoadedJob:
    """What every chunk of a job needs, loaded once: the function, or why it cannot be."""

    def __init__(self, func=None, loader=None, setup_error=None):
        self.func = func
        self.loader = loader
        self.setup_error = setup_error


def load_job(session_dir, config, main_module=None):
    try:
        loader = Loader(config.get("code_files") or {})
        with open(os.path.join(session_dir, "function.pickle"), "rb") as file:
            func = loader.loads(file.read())
        install_main_module(
            main_module if main_module is not None else types.ModuleType("__mp_main__"), loader
        )
    except Exception as error:
        return LoadedJob(setup_error=describe_exception(error))
    return LoadedJob(func, loader)


def run_chunk(session_dir, ichunk, config, job, signals):
    outcome = {
        "format": OUTCOME_FORMAT,
        "ichunk": ichunk,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start": time.time(),
        "setup_error": job.setup_error,
        "tasks": [],
        "reused_tasks": 0,
        "interrupted": None,
    }
    if job.setup_error is None:
        try:
            import cloudpickle

            first_itask, tasks = read_tasks(session_dir, ichunk, job.loader)
        except Exception as error:
            outcome["setup_error"] = describe_exception(error)
    if outcome["setup_error"] is not None:
        outcome["end"] = time.time()
        return outcome
    star = bool(config.get("star"))
    max_result_size = config.get("max_result_size")
    recorded = read_task_records(session_dir, ichunk)
    writer = TaskRecordWriter(session_dir, ichunk)
    running = install_running_task(session_dir)
    # The loop runs once per task, a million times in a big map: what a
    # task did not ask for (a checkpoint, an output directory) costs no
    # system call here; tidy_finished_tasks looks for the rest once per chunk.
    for offset, task in enumerate(tasks):
        itask = first_itask + offset
        if itask in recorded:
            outcome["tasks"].append(recorded[itask])
            outcome["reused_tasks"] += 1
            continue
        if signals.received is not None:
            break
        running.itask = itask
        try:
            record = signals.run_interruptibly(
                run_task, job.func, task, itask, star, max_result_size, cloudpickle
            )
        except Interrupted:
            break
        finally:
            running.itask = None
        if running.made_output_dir:
            settle_task_outputs(session_dir, itask, failed="error" in record)
        writer.append(record)
        if running.saved_checkpoint:
            remove_checkpoint(session_dir, itask)
        running.made_output_dir = running.saved_checkpoint = False
        outcome["tasks"].append(record)
    if signals.received is not None and len(outcome["tasks"]) < len(tasks):
        outcome["interrupted"] = {
            "signal": signal.Signals(signals.received).name,
            "unfinished_tasks": len(tasks) - len(outcome["tasks"]),
        }
    tidy_finished_tasks(session_dir, outcome["tasks"])
    writer.close()
    outcome["end"] = time.time()
    return outcome


def read_tasks(session_dir, ichunk, loader):
    """``(first itask, tasks)`` of ``ichunk``: its member of ``tasks.zip``, or,
    for a piece of a chunk that a time limit stopped, its slice of the
    member of the chunk it came from (:func:`piece_of`)."""
    source, start, stop = piece_of(session_dir, ichunk)
    with zipfile.ZipFile(os.path.join(session_dir, "tasks.zip")) as archive:
        first_itask, tasks = loader.loads(archive.read(f"{source}.pickle"))
    if start is None:
        return first_itask, tasks
    return start, tasks[start - first_itask : stop - first_itask]


def piece_of(session_dir, ichunk):
    """``(source chunk, start, stop)`` of ``ichunk`` as ``pieces`` in
    ``session.json`` says (its format is owned by pypoolparty/work_dir.py,
    ``SessionMetadata.pieces``), or ``(ichunk, None, None)`` for a chunk that
    runs its own member whole. A job whose files were transferred has no
    ``session.json``: its chunk was never split."""
    try:
        pieces = read_json(os.path.join(session_dir, "session.json")).get("pieces") or ()
    except (OSError, ValueError):
        pieces = ()
    for piece, source, start, stop in pieces:
        if piece == ichunk:
            return source, start, stop
    return ichunk, None, None


def run_task(func, task, itask, star, max_result_size, cloudpickle):
    record = {"itask": itask, "start": time.time()}
    try:
        value = func(*task) if star else func(task)
    except (Exception, SystemExit, KeyboardInterrupt) as error:
        # SystemExit and KeyboardInterrupt raised by the task are its own
        # exceptions, re-raised on the submit host; the scheduler stops a job
        # with SIGTERM or SIGKILL, never as a KeyboardInterrupt.
        record["error"] = describe_exception(error)
        record["end"] = time.time()
        return record
    record["end"] = time.time()
    try:
        if type(value) in PLAIN_RESULT_TYPES:
            result = pickle.dumps(value, protocol=cloudpickle.DEFAULT_PROTOCOL)
        else:
            result = cloudpickle.dumps(value)
    except Exception as error:
        record["error"] = describe_exception(
            error, kind="unpicklable_result", message=f"the result cannot be pickled: {error}"
        )
        return record
    if max_result_size is not None and len(result) > max_result_size:
        record["error"] = {
            "kind": "result_too_large",
            "type": "ResultTooLarge",
            "message": (
                f"the pickled result has {len(result)} bytes, more than the limit of "
                f"{max_result_size} bytes (max_result_size)"
            ),
            "traceback": "",
            "exception": None,
        }
        return record
    record["result"] = result
    return record


PLAIN_RESULT_TYPES = frozenset((int, float, complex, bool, str, bytes, type(None)))
"""Results that pickle pickles exactly as cloudpickle does, without the cost
of a cloudpickle Pickler per task (several times that of the task itself in
a map of tiny tasks)."""


def describe_exception(error, kind="raised", message=None):
    """Everything the submitting side needs to re-raise or report ``error``."""
    try:
        import cloudpickle

        pickled = cloudpickle.dumps(error)
        pickle.loads(pickled)
    except Exception:
        pickled = None
    return {
        "kind": kind,
        "type": f"{type(error).__module__}.{type(error).__qualname__}",
        "message": message if message is not None else str(error),
        "traceback": "".join(traceback.format_exception(type(error), error, error.__traceback__)),
        "exception": pickled,
    }


def write_outcome(session_dir, ichunk, outcome, replace=True):
    """Write atomically: a reader sees the whole file or none.

    With ``replace=False`` an outcome already there is left as it is: an
    interrupted run must not hide the outcome of a run of the same chunk
    that finished.
    """
    directory = os.path.join(session_dir, "outcomes")
    final_path = os.path.join(directory, f"{ichunk}.pickle")
    temporary_path = os.path.join(
        directory, f".{ichunk}.{socket.gethostname()}.{os.getpid()}.incomplete"
    )
    with open(temporary_path, "wb") as file:
        pickle.dump(outcome, file, protocol=4)
        file.flush()
        os.fsync(file.fileno())
    if replace:
        os.replace(temporary_path, final_path)
        return
    try:
        os.link(temporary_path, final_path)
    except FileExistsError:
        pass
    finally:
        os.remove(temporary_path)


# -- what survives a killed job -------------------------------------------------
# The records format is owned by pypoolparty/task_records.py, the checkpoint
# files and the running-task module by pypoolparty/checkpoint.py: these are
# copies of what the worker needs, and must agree with them.

RECORDS_DIRECTORY = "partial"
RECORD_MAGIC = b"PPTR"
RECORD_HEADER = struct.Struct(">4sQII")
RECORD_FSYNC_INTERVAL = 1.0
"""Seconds between forcing the records to disk. Each record is written with
one ``write`` call at once, so a killed process loses none; only a crash of
the node loses at most this much, and the checksum shows where."""
CHECKPOINTS_DIRECTORY = "checkpoints"
RUNNING_TASK_MODULE = "_pypoolparty_running_task"
WARNING_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")


def encode_task_record(itask, payload):
    numbers = struct.pack(">QI", itask, len(payload))
    checksum = zlib.crc32(payload, zlib.crc32(numbers))  # of numbers + payload
    return b"".join((RECORD_MAGIC, numbers, struct.pack(">I", checksum), payload))


def decode_task_records(data):
    offset = 0
    while offset + RECORD_HEADER.size <= len(data):
        magic, itask, length, checksum = RECORD_HEADER.unpack_from(data, offset)
        start = offset + RECORD_HEADER.size
        payload = data[start : start + length]
        if magic != RECORD_MAGIC or len(payload) != length:
            return
        if zlib.crc32(struct.pack(">QI", itask, length) + payload) != checksum:
            return
        yield itask, payload
        offset = start + length


def task_records_files(session_dir, ichunk):
    directory = os.path.join(session_dir, RECORDS_DIRECTORY)
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    prefix = f"{ichunk}."
    return [
        os.path.join(directory, name)
        for name in names
        if name.startswith(prefix) and name.endswith(".records")
    ]


def read_task_records(session_dir, ichunk):
    """itask -> entry, of the tasks earlier runs of the chunk recorded."""
    found = {}
    for path in task_records_files(session_dir, ichunk):
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            continue
        for itask, payload in decode_task_records(data):
            if itask not in found:
                try:
                    found[itask] = pickle.loads(payload)
                except Exception:
                    continue  # the task runs again
    return found


def remove_task_records(session_dir, ichunk):
    for path in task_records_files(session_dir, ichunk):
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


class TaskRecordWriter:
    """Appends this run's records to a file no other run writes."""

    def __init__(self, session_dir, ichunk):
        self.session_dir = session_dir
        self.ichunk = ichunk
        self.descriptor = None
        self.last_sync = 0.0

    def append(self, record):
        if self.descriptor is None:
            self.descriptor = self._open()
        payload = pickle.dumps(record, protocol=4)
        os.write(self.descriptor, encode_task_record(record["itask"], payload))
        if time.monotonic() - self.last_sync >= RECORD_FSYNC_INTERVAL:
            os.fsync(self.descriptor)
            self.last_sync = time.monotonic()

    def close(self):
        if self.descriptor is not None:
            os.fsync(self.descriptor)
            os.close(self.descriptor)
            self.descriptor = None

    def _open(self):
        directory = os.path.join(self.session_dir, RECORDS_DIRECTORY)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        host = socket.gethostname().replace(os.sep, "_") or "host"
        name = f"{self.ichunk}.{host}.{os.getpid()}.{secrets.token_hex(4)}.records"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
        return os.open(os.path.join(directory, name), flags, 0o600)


# -- claiming more work ----------------------------------------------------------
# The claims' format is owned by pypoolparty/claims.py: this is the worker's
# copy of what it needs, and must agree with it.

CLAIMS_DIRECTORY = "claims"
CLAIMS_NEXT_HINT = "next"


class Claims:
    """This job's claims on chunks: its own first, then any that no job claimed yet."""

    def __init__(self, session_dir, num_chunks, home, submission):
        self.directory = os.path.join(session_dir, CLAIMS_DIRECTORY)
        self.num_chunks = num_chunks
        self.home = home
        self.submission = submission
        host = socket.gethostname().replace(":", "_").replace(os.sep, "_") or "host"
        # Made once, before the job forks its other processes
        # (tasks_per_job): they share it, so that none takes a claim that
        # another is running for its own (see take()).
        self.run = f"{host}.{os.getpid()}.{secrets.token_hex(4)}"
        self.candidate = None

    @classmethod
    def of(cls, session_dir, config, home, submission):
        """None when the map's jobs do not claim (no shared file system)."""
        num_chunks = config.get("claiming_chunks")
        if not num_chunks:
            return None
        os.makedirs(os.path.join(session_dir, CLAIMS_DIRECTORY), mode=0o700, exist_ok=True)
        return cls(session_dir, num_chunks, home, submission)

    def text(self, state):
        return f"{state}:{self.home}:{self.run}:{self.submission}"

    def take(self, ichunk):
        """Claim ``ichunk``; True if this job may run it."""
        path = os.path.join(self.directory, str(ichunk))
        try:
            os.symlink(self.text("running"), path)
            return True
        except FileExistsError:
            pass
        except OSError:
            # The map ended and removed its directory (or cannot be reached):
            # nothing is left to claim.
            self.candidate = self.num_chunks
            return False
        try:
            parts = os.readlink(path).split(":", 3)
        except OSError:
            return False  # taken back just now: the map runs it in a job of its own
        # A claim this very job made in an earlier run (the scheduler
        # requeued it) and did not finish is still its own; one that another
        # process of this run holds is not.
        return (
            len(parts) == 4
            and parts[0] == "running"
            and parts[1] == str(self.home)
            and parts[2] != self.run
            and parts[3] == self.submission
        )

    def next(self):
        """The next chunk claimed, the lowest first; None once every chunk is claimed."""
        if self.candidate is None:
            self.candidate = self._hint()
        while self.candidate < self.num_chunks:
            ichunk = self.candidate
            self.candidate += 1
            if ichunk != self.home and self.take(ichunk):
                self._set_hint(self.candidate)
                return ichunk
        return None

    def mark_done(self, ichunk):
        """Say the chunk's outcome is written: a requeued run of this job skips it."""
        path = os.path.join(self.directory, str(ichunk))
        temporary = os.path.join(self.directory, f".{ichunk}.{self.run}")
        try:
            os.symlink(self.text("done"), temporary)
            os.replace(temporary, path)
        except OSError:
            pass  # only a hint for a requeued run: the outcome is what counts

    def _hint(self):
        try:
            value = os.readlink(os.path.join(self.directory, CLAIMS_NEXT_HINT))
        except OSError:
            return 0
        return int(value) if value.isdigit() else 0

    def _set_hint(self, value):
        # The processes of one job (tasks_per_job) share ``run``: each its own name.
        temporary = os.path.join(self.directory, f".{CLAIMS_NEXT_HINT}.{self.run}.{os.getpid()}")
        try:
            os.symlink(str(value), temporary)
            os.replace(temporary, os.path.join(self.directory, CLAIMS_NEXT_HINT))
        except OSError:
            pass  # a hint: without it the next job tries more chunks


PR_SET_PDEATHSIG = 1


def stop_when_parent_ends(parent):
    """Get SIGTERM once the process ``parent`` ends, as the scheduler stops a
    job's processes when its job ends: a process of the job must not run on
    after the job (the map runs its claimed chunk again). Linux only, where
    the local pool's jobs need it; a cluster's scheduler ends them anyway."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)  # it ended before the line above


@contextlib.contextmanager
def chunk_output(session_dir, ichunk):
    """Send standard output and error (file descriptors 1 and 2, so also those
    of the tasks' subprocesses and C libraries) to ``outcomes/<ichunk>.stdout``
    and ``.stderr`` while the chunk runs; the map folds them with its outcome
    (paths owned by pypoolparty/work_dir.py)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        for descriptor, stream in ((1, "stdout"), (2, "stderr")):
            path = os.path.join(session_dir, "outcomes", f"{ichunk}.{stream}")
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(target, descriptor)
            os.close(target)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for descriptor in saved:
            os.close(descriptor)


OUTPUTS_DIRECTORY = "outputs"
# The layout of the tasks' output files is owned by pypoolparty/task_outputs.py.


def settle_task_outputs(session_dir, itask, failed):
    """Move a task's ``outputs/running/<itask>`` to ``outputs/done`` or ``outputs/failed``."""
    outputs = os.path.join(session_dir, OUTPUTS_DIRECTORY)
    running = os.path.join(outputs, "running", str(itask))
    if not os.path.isdir(running):
        return
    settled = os.path.join(outputs, "failed" if failed else "done")
    os.makedirs(settled, mode=0o700, exist_ok=True)
    target = os.path.join(settled, str(itask))
    if os.path.exists(target):
        shutil.rmtree(target)  # an earlier run's
    os.replace(running, target)


def remove_checkpoint(session_dir, itask):
    try:
        os.remove(os.path.join(session_dir, CHECKPOINTS_DIRECTORY, f"{itask}.pickle"))
    except FileNotFoundError:
        pass


def install_running_task(session_dir):
    """Register the module that tells ``pypoolparty.checkpoint`` (and the
    other modules a task may call) which task runs, without importing them.

    Its attributes, a contract owned by pypoolparty/checkpoint.py:
    ``session_dir``; ``itask`` (None between tasks); and the flags
    ``saved_checkpoint`` and ``made_output_dir``, which those modules set so
    that the worker tidies up after a task only when it left something.
    """
    module = types.ModuleType(RUNNING_TASK_MODULE)
    module.session_dir = session_dir
    module.itask = None
    module.saved_checkpoint = False
    module.made_output_dir = False
    sys.modules[RUNNING_TASK_MODULE] = module
    return module


def tidy_finished_tasks(session_dir, records):
    """Settle the output directories and remove the checkpoints of the
    finished tasks in ``records`` that are still there: those of an earlier,
    killed run of the chunk, or made by a process the task forked (whose
    flags the worker never sees). One listing of each directory."""
    finished = {record["itask"]: "error" in record for record in records}
    for itask in _task_numbers(os.path.join(session_dir, CHECKPOINTS_DIRECTORY), ".pickle"):
        if itask in finished:
            remove_checkpoint(session_dir, itask)
    running = os.path.join(session_dir, OUTPUTS_DIRECTORY, "running")
    for itask in _task_numbers(running, ""):
        if itask in finished:
            settle_task_outputs(session_dir, itask, failed=finished[itask])


def _task_numbers(directory, suffix):
    """The itask of each entry ``<itask><suffix>`` of ``directory``."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    stems = (name[: len(name) - len(suffix)] for name in names if name.endswith(suffix))
    return [int(stem) for stem in stems if stem.isdigit()]


class Interrupted(BaseException):
    """Raised inside the running task by a warning signal; never a task's own error."""


class WarningSignals:
    """SIGTERM, SIGUSR1 and SIGUSR2 stop the chunk, instead of killing the process.

    Schedulers send them before a kill (a time limit, preemption, an
    eviction, ``scancel``). Inside a task, the signal abandons it at once
    (:class:`Interrupted`); between tasks, no further task starts. The
    handlers stay after the tasks: a second signal while the outcome is
    written must not kill the worker halfway (the scheduler's SIGKILL ends
    it anyway).
    """

    def __init__(self):
        self.received = None
        self.in_task = False
        self.pid = os.getpid()
        self.siblings = []
        """The processes this one forked to run chunks beside it (``tasks_per_job``)."""
        self.parent = None
        """In such a process, the one that forked it."""
        self._forking_sibling = False

    def __enter__(self):
        for name in WARNING_SIGNALS:
            signal.signal(getattr(signal, name), self._handle)
        register_at_fork = getattr(os, "register_at_fork", None)  # Python 3.7+
        if register_at_fork is not None:
            register_at_fork(
                before=self._block,
                after_in_parent=self._unblock,
                after_in_child=self._default_in_child,
            )
        return self

    # A forked child (a task's multiprocessing.Pool) must die of these
    # signals as it would without us. Our Python handler cannot promise that:
    # a signal that lands just before the child blocks in C (a SemLock's
    # sem_wait), or before Python in the child is ready to run handlers, only
    # sets a flag, and the task's Pool.terminate() waits for that child
    # forever (seen on real SGE). So the signals are blocked across the
    # fork, and the child unblocks them only once they have their defaults
    # again: one sent meanwhile waits, then kills.

    def _signal_numbers(self):
        return [getattr(signal, name) for name in WARNING_SIGNALS]

    def _block(self):
        signal.pthread_sigmask(signal.SIG_BLOCK, self._signal_numbers())

    def _unblock(self):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self._signal_numbers())

    def _default_in_child(self):
        if self._forking_sibling:
            self._become_sibling()
            return
        for signum in self._signal_numbers():
            if signal.getsignal(signum) == self._handle:
                signal.signal(signum, signal.SIG_DFL)
        self._unblock()

    def __exit__(self, *exc):
        return False

    # -- the job's other processes (tasks_per_job) --------------------------
    # Unlike a task's children, they keep these handlers: a signal stops the
    # chunk each runs, as in the first process. The scheduler may send it to
    # the whole process group or to the first process only, so that one
    # forwards it; a process that gets it twice acts once.

    def fork_sibling(self):
        """Fork a process that runs chunks beside this one; 0 in that process.

        The signals stay blocked across the fork, so none is lost or kills
        the new process before it has the handlers.
        """
        self._forking_sibling = True
        self.parent = os.getpid()
        try:
            pid = os.fork()
        finally:
            self._forking_sibling = False
        if pid == 0:
            self._become_sibling()  # again, for Python 3.6 (no os.register_at_fork)
            stop_when_parent_ends(self.parent)
            return 0
        self.siblings.append(pid)
        if self.received is not None:
            # It came between the fork and the line above: forward it now.
            self._forward(self.received, [pid])
        return pid

    def _become_sibling(self):
        self.pid = os.getpid()
        self.siblings = []
        self._unblock()

    def _forward(self, signum, pids):
        for pid in pids:
            with contextlib.suppress(OSError):  # it ended already
                os.kill(pid, signum)

    def wait_for_siblings(self):
        """Wait until the forked processes end; 0 if each exited with 0, else 1.

        One that failed (or died) leaves its claimed chunk without an
        outcome: the job then fails, so that the map takes the claim back.
        """
        code = 0
        while self.siblings:
            pid = self.siblings[0]
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = 0
            self.siblings.remove(pid)
            if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                code = 1
        return code

    def _handle(self, signum, frame):
        if os.getpid() != self.pid:
            # A forked child on Python 3.6 (no os.register_at_fork) still
            # has the handler: the signal does there what it would have done.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        self._forward(signum, self.siblings)
        if self.received is None:
            self.received = signum
        if self.in_task:
            self.in_task = False
            raise Interrupted(signum)

    def run_interruptibly(self, function, *args):
        """``function(*args)``, which a warning signal abandons at once (:class:`Interrupted`)."""
        if self.received is not None:
            raise Interrupted(self.received)
        self.in_task = True
        try:
            return function(*args)
        finally:
            self.in_task = False


if __name__ == "__main__":
    try:
        code = main()
    except SystemExit:
        raise
    except BaseException:
        traceback.print_exc()
        sys.exit(1)
    # Exit at once: a thread a task left running must not keep the job (and
    # its allocation) alive after the outcome is written.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
