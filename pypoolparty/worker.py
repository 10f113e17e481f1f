"""The worker: runs one chunk of tasks on a compute node.

This file is copied into each map's session directory and started by the
scheduler as ``python worker.py SESSION_DIR --ichunk N`` (or with
``--ichunk-from-env VAR [--chunk-list FILE]`` for array jobs). It needs only
the standard library and cloudpickle, and it must never import pypoolparty:
the compute node may not have it.

It reads from the session directory: ``worker_config.json`` (starmap or map, the
submitter's ``sys.path``, the result size limit), ``environment.json`` (the
variables to set), ``function.pickle`` and its chunk in ``tasks.zip``. It
writes one file, ``outcomes/<ichunk>.pickle``, atomically (write, then
rename), holding every task's result or exception with its traceback, the
host name, and start and end times.

Exit codes: 0 when the outcome was written (even if tasks raised), 1 when it
could not be. Never 99 or 100, which Grid Engine reads as "reschedule" and
"error".
"""

import argparse
import fnmatch
import json
import os
import pickle
import socket
import sys
import time
import traceback
import zipfile

OUTCOME_FORMAT = 1
# The outcome's schema is documented in pypoolparty/outcome.py, which reads it.


def main(argv=None):
    args = parse_arguments(argv)
    os.umask(0o077)
    session_dir = args.session_dir
    ichunk = resolve_ichunk(args)
    config = read_json(os.path.join(session_dir, "worker_config.json"))
    apply_environment(read_json(os.path.join(session_dir, "environment.json")))
    extend_sys_path(config.get("sys_path", []))
    enter_working_directory(config.get("working_directory"))
    outcome = run_chunk(session_dir, ichunk, config)
    write_outcome(session_dir, ichunk, outcome)
    return 0


def parse_arguments(argv):
    parser = argparse.ArgumentParser(description="Run one chunk of a pypoolparty map.")
    parser.add_argument("session_dir")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--ichunk", type=int)
    source.add_argument("--ichunk-from-env", metavar="VARIABLE")
    parser.add_argument("--chunk-list", metavar="FILE")
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


def apply_environment(exported):
    """Set the exported variables, but never those of this host or job."""
    protected = exported.get("never_overwrite", [])
    for name, value in exported.get("variables", {}).items():
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in protected):
            continue
        os.environ[name] = value


def extend_sys_path(submitter_sys_path):
    """Let the worker import what the submitting process could import."""
    for entry in submitter_sys_path:
        if entry and entry not in sys.path and os.path.isdir(entry):
            sys.path.append(entry)


def enter_working_directory(path):
    """Start tasks where the map was called, as multiprocessing's workers do,
    if the compute node sees that directory; else stay where the job started."""
    if path and os.path.isdir(path):
        os.chdir(path)


def run_chunk(session_dir, ichunk, config):
    outcome = {
        "format": OUTCOME_FORMAT,
        "ichunk": ichunk,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start": time.time(),
        "setup_error": None,
        "tasks": [],
    }
    try:
        import cloudpickle

        with open(os.path.join(session_dir, "function.pickle"), "rb") as file:
            func = cloudpickle.load(file)
        with zipfile.ZipFile(os.path.join(session_dir, "tasks.zip")) as archive:
            first_itask, tasks = pickle.loads(archive.read(f"{ichunk}.pickle"))
    except Exception as error:
        outcome["setup_error"] = describe_exception(error)
        outcome["end"] = time.time()
        return outcome
    star = bool(config.get("star"))
    max_result_size = config.get("max_result_size")
    for offset, task in enumerate(tasks):
        outcome["tasks"].append(
            run_task(func, task, first_itask + offset, star, max_result_size, cloudpickle)
        )
    outcome["end"] = time.time()
    return outcome


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


def write_outcome(session_dir, ichunk, outcome):
    """Write atomically: a reader sees the whole file or none."""
    directory = os.path.join(session_dir, "outcomes")
    final_path = os.path.join(directory, f"{ichunk}.pickle")
    temporary_path = os.path.join(
        directory, f".{ichunk}.{socket.gethostname()}.{os.getpid()}.incomplete"
    )
    with open(temporary_path, "wb") as file:
        pickle.dump(outcome, file, protocol=4)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary_path, final_path)


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
