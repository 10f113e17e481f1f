"""Jobs of the dummy Grid Engine: checking a submission.

A job is a dict in the state file. Its tasks (``"1"``, ``"2"``, ...; a plain
job has the one task ``"1"``) each have a ``state`` word as qstat shows it,
a ``reason`` for error states and, while running, the ``pid`` of the task's
process group.
"""

import getpass
import os
import re
import time

import common
import state

TIME_RESOURCES = {"h_rt", "s_rt", "h_cpu", "s_cpu"}
MEMORY_RESOURCES = {"h_vmem", "s_vmem", "mem_free", "h_data", "s_data", "h_stack", "virtual_free"}
OTHER_RESOURCES = {"arch", "hostname", "num_proc", "slots", "h_fsize", "s_fsize"}
TIME_VALUE = re.compile(r"^(\d+|\d*:\d*:\d+|\d*:\d+)$")
MEMORY_VALUE = re.compile(r"^\d+(\.\d+)?[kKmMgGtT]?$")


class Rejected(Exception):
    def __init__(self, message, exit_code=1):
        super().__init__(message)
        self.exit_code = exit_code


def unable(reason):
    return Rejected(f"Unable to run job: {reason}\nExiting.")


def output_path(path_list):
    """The path of ``-o``/``-e``, a list ``[host:]path,...`` as qsub reads it.

    A path without ``host:`` is for every host, so two of them are refused;
    the dummy, being one host, takes the first path.
    """
    if path_list is None:
        return None
    paths = path_list.split(",")
    if sum(":" not in path for path in paths) > 1:
        raise Rejected("ERROR! two files are specified for the same host", 1)
    return paths[0].split(":", 1)[-1]


def new_job(options, script, script_arguments):
    """The job for a qsub call, or raise :class:`Rejected` with qsub's message."""
    name = options.get("-N") or os.path.basename(script)
    if "/" in name:
        raise Rejected("qsub: argument to -N option must not contain /", 2)
    if name[:1].isdigit():
        raise Rejected(f'denied: "{name}" is not a valid object name (cannot start with a digit)')
    binary = options.get("-b", "n").lower().startswith("y")
    if not binary and not os.path.isfile(script):
        raise Rejected(
            "Unable to read script file because of error: error opening "
            f"{script}: No such file or directory",
            14,
        )
    queue = options.get("-q")
    if queue is not None and queue.split("@")[0] != state.QUEUE:
        raise unable(f'Job was rejected because job requests unknown queue "{queue}"')
    parallel_environment, slots = options.get("-pe", (None, "1"))
    if parallel_environment is not None and parallel_environment not in state.PARALLEL_ENVIRONMENTS:
        raise unable(
            f'job rejected: the requested parallel environment "{parallel_environment}" '
            "does not exist"
        )
    if not slots.isdigit() or int(slots) < 1:
        raise unable('"job" rejected: pe range must be greater than zero')
    first, last, step = task_range(options.get("-t"))
    cwd = os.getcwd() if options.get("-cwd") else options.get("-wd", os.path.expanduser("~"))
    return {
        "name": name,
        "owner": getpass.getuser(),
        "submitted": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "binary": binary,
        "arguments": script_arguments,
        "shell": options.get("-S", "/bin/sh"),
        "cwd": cwd,
        "stdout": output_path(options.get("-o")),
        "stderr": output_path(options.get("-e")),
        "join": options.get("-j", "n").lower().startswith("y"),
        "queue": state.QUEUE,
        "parallel_environment": parallel_environment,
        "slots": int(slots),
        "resources": resources(options["-l"]),
        "variables": variables(options["-v"], options.get("-V")),
        "max_running": int(options["-tc"]) if options.get("-tc") else None,
        "notify": bool(options.get("-notify")),
        "array": options.get("-t") is not None,
        "task_range": f"{first}-{last}:{step}",
        "tasks": {
            str(t): {"state": "hqw" if options.get("-h") else "qw", "reason": "", "pid": None}
            for t in range(first, last + 1, step)
        },
    }


def time_seconds(text):
    """Seconds of a time value (``5``, ``1:30``, ``0:0:5``); None if there is none."""
    if not text or not TIME_VALUE.match(text):
        return None
    seconds = 0
    for part in text.split(":"):
        seconds = seconds * 60 + int(part or 0)
    return seconds


def task_range(text):
    if text is None:
        return 1, 1, 1
    match = re.fullmatch(r"(\d+)(?:-(\d+)(?::(\d+))?)?", text)
    if match is None or int(match.group(1)) < 1:
        raise Rejected(f'qsub: ERROR! -t option has an invalid task range "{text}"', 7)
    first = int(match.group(1))
    last = int(match.group(2) or first)
    step = int(match.group(3) or 1)
    if last < first or step < 1:
        raise Rejected(f'qsub: ERROR! -t option has an invalid task range "{text}"', 7)
    return first, last, step


def resources(requests):
    wanted = {}
    for request in requests:
        for item in request.split(","):
            key, _, value = item.partition("=")
            known = TIME_RESOURCES | MEMORY_RESOURCES | OTHER_RESOURCES
            if key not in known:
                raise unable(f'unknown resource "{key}"')
            if key in TIME_RESOURCES and not TIME_VALUE.match(value):
                raise unable(f'attribute "{key}" is not a time value')
            if key in MEMORY_RESOURCES and not MEMORY_VALUE.match(value):
                raise unable(f'attribute "{key}" is not a memory value')
            wanted[key] = value
    return wanted


def variables(requests, export_all):
    values = dict(os.environ) if export_all else {}
    for request in requests:
        for item in request.split(","):
            key, equals, value = item.partition("=")
            values[key] = value if equals else os.environ.get(key, "")
    return values


def reschedule(task):
    """Stop a running task to run it again (``qmod -rj``): killed, then ``Rq`` once reaped."""
    common.kill_process_group(task["pid"])
    task.update(state="Rq", rescheduled=True, reschedule_at=None)
