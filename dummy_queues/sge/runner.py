"""The dummy Grid Engine's runner: dispatches queued tasks and reaps finished ones.

Started detached by qsub (``python3 runner.py``), it polls the
state every 0.1 s, runs at most ``slots`` slots' worth of tasks at once
(faults.json ``slots``, default 2) and at most ``-tc`` tasks of one array job,
and exits after one idle second. When it dispatches a task, faults.json may
turn it into an error state, make it vanish without output, or show it in
an unknown state for a second first.

Like Grid Engine with ``shell_start_mode posix_compliant``, a job script is
run by its ``-S`` shell (``#!`` is ignored), in a fresh environment (only the
job's variables, ``-v`` and ``-V``), with ``-o``/``-e`` appended to. Exit
code 99 requeues a task (``Rq``), exit code 100 puts it in ``Eqw``.
"""

import os
import signal
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.realpath(__file__))))
import common  # noqa: E402
import jobs  # noqa: E402
import state  # noqa: E402

TICK = 0.1
IDLE_EXIT = 1.0
UNKNOWN_STATE = "P"
UNKNOWN_SECONDS = 1.0
ACTIVE = ("r", "t", "dr", "qw", "Rq", UNKNOWN_STATE)


def main():
    directory = state.queue_dir()
    processes = {}

    def step(current):
        reap(current, processes)
        enforce_time_limits(directory, current)
        reschedule_due(current)
        dispatch(directory, current, processes)
        return any(
            task["state"] in ACTIVE
            for job in current["jobs"].values()
            for task in job["tasks"].values()
        )

    common.serve(lambda: state.locked(directory), step, TICK, IDLE_EXIT)


def reap(current, processes):
    for key, process in list(processes.items()):
        code = process.poll()
        if code is None:
            continue
        del processes[key]
        number, task_id = key
        job = current["jobs"].get(number)
        if job is None or task_id not in job["tasks"]:
            continue
        task = job["tasks"][task_id]
        if task.get("rescheduled"):
            # qmod -rj killed it: it waits to run again.
            task.update(state="Rq", pid=None, rescheduled=False)
            task["restarts"] = task.get("restarts", 0) + 1
        elif code == 99 and task["state"] != "dr":
            task.update(state="Rq", pid=None)
        elif code == 100 and task["state"] != "dr":
            task.update(state="Eqw", pid=None, reason=reason_text("exit_status of job start = 100"))
        else:
            del job["tasks"][task_id]
    for number in [n for n, job in current["jobs"].items() if not job["tasks"]]:
        del current["jobs"][number]


def enforce_time_limits(directory, current):
    """Kill the running tasks that reached their ``h_rt``; warn them first with ``-notify``."""
    now = time.time()
    notify_seconds = float(state.faults(directory).get("notify_seconds", 60))
    for job in current["jobs"].values():
        limit = jobs.time_seconds(job["resources"].get("h_rt"))
        if limit is None:
            continue
        for task in job["tasks"].values():
            if task["state"] != "r" or not task.get("pid") or task.get("rescheduled"):
                continue
            ran = now - task.get("started_at", now)
            if ran < limit:
                continue
            if job.get("notify") and ran < limit + notify_seconds:
                if not task.get("notified"):
                    task["notified"] = True
                    signal_group(task["pid"], signal.SIGUSR2)
                continue
            common.kill_process_group(task["pid"])


def reschedule_due(current):
    """Reschedule the running tasks that faults.json's reschedule_probability picked."""
    now = time.time()
    for job in current["jobs"].values():
        for task in job["tasks"].values():
            due = task.get("reschedule_at")
            if task["state"] == "r" and due is not None and now >= due:
                jobs.reschedule(task)


def signal_group(pgid, signum):
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def dispatch(directory, current, processes):
    settings = state.faults(directory)
    free = int(settings["slots"]) - sum(
        job["slots"]
        for job in current["jobs"].values()
        for task in job["tasks"].values()
        if task["state"] in ("r", "t", "dr")
    )
    for number in sorted(current["jobs"], key=int):
        job = current["jobs"][number]
        for task_id in sorted(job["tasks"], key=int):
            task = job["tasks"][task_id]
            if task["state"] == UNKNOWN_STATE and time.time() >= task["unknown_until"]:
                task["state"] = "qw"
            if task["state"] not in ("qw", "Rq") or job["slots"] > free:
                continue
            if (number, task_id) in processes:
                continue  # its killed run is not reaped yet
            running = sum(1 for t in job["tasks"].values() if t["state"] in ("r", "t", "dr"))
            if job["max_running"] is not None and running >= job["max_running"]:
                break
            attempt = task.setdefault("attempt", 0) + 1
            task["attempt"] = attempt
            about = (number, task_id, attempt)
            if not task.get("was_unknown") and state.chance(
                settings, "unknown_state_probability", *about
            ):
                task.update(state=UNKNOWN_STATE, unknown_until=time.time() + UNKNOWN_SECONDS)
                task["was_unknown"] = True
            elif state.chance(settings, "error_probability", *about):
                common.count_job_fault(current, "error")
                error_state = state.choose(settings, settings["error_states"], *about)
                path = output_path(job, number, task_id, "stdout", "o")
                task.update(state=error_state, reason=reason_text(injected_error(path)))
            elif state.chance(settings, "vanish_probability", *about):
                common.count_job_fault(current, "vanish")
                del job["tasks"][task_id]
            else:
                start(job, number, task_id, task, processes)
                if task["state"] == "r":
                    free -= job["slots"]
                    if state.chance(settings, "reschedule_probability", *about):
                        # As an admin's qmod -rj or a host gone: while it runs.
                        delay = common.draw(settings["seed"], "reschedule_delay", *about)
                        task["reschedule_at"] = time.time() + 0.05 + 0.5 * delay


def start(job, number, task_id, task, processes):
    """Start the task, or put it in Eqw for the reasons Grid Engine would."""
    stdout_path = output_path(job, number, task_id, "stdout", "o")
    stderr_path = stdout_path if job["join"] else output_path(job, number, task_id, "stderr", "e")
    problem = None
    if not os.path.isdir(job["cwd"]):
        problem = f"error: can't chdir to {job['cwd']}: No such file or directory"
    elif not os.path.isfile(job["shell"]):
        problem = f'unable to find shell "{job["shell"]}"'
    else:
        for path in (stdout_path, stderr_path):
            if not os.path.isdir(os.path.dirname(path)):
                problem = f'error: can\'t open output file "{path}": No such file or directory'
    if problem is not None:
        task.update(state="Eqw", reason=reason_text(problem))
        return
    environment = job_environment(job, number, task_id, stdout_path, stderr_path)
    process = common.start_job(
        [job["shell"], job["script"], *job["arguments"]]
        if not job["binary"]
        else [job["shell"], "-c", " ".join([job["script"], *job["arguments"]])],
        job["cwd"],
        environment,
        stdout_path,
        stderr_path,
    )
    processes[(number, task_id)] = process
    task.update(
        state="r",
        pid=process.pid,
        started=time.strftime("%Y-%m-%dT%H:%M:%S"),
        started_at=time.time(),
        notified=False,
    )


def output_path(job, number, task_id, which, letter):
    """Where a task's -o/-e goes: pseudo variables expanded, a directory gets a file name."""
    template = job[which]
    suffix = f".{task_id}" if job["array"] else ""
    default_name = f"{job['name']}.{letter}{number}{suffix}"
    if not template:
        return os.path.join(os.path.expanduser("~"), default_name)
    for variable, value in [
        ("$JOB_ID", str(number)),
        ("$TASK_ID", task_id if job["array"] else "undefined"),
        ("$JOB_NAME", job["name"]),
        ("$USER", job["owner"]),
        ("$HOSTNAME", socket.gethostname()),
        ("$HOME", os.path.expanduser("~")),
    ]:
        template = template.replace(variable, value)
    path = os.path.join(job["cwd"], template)
    return os.path.join(path, default_name) if os.path.isdir(path) else path


def job_environment(job, number, task_id, stdout_path, stderr_path):
    environment = {
        "PATH": "/usr/local/bin:/bin:/usr/bin",
        "HOME": os.path.expanduser("~"),
        "USER": job["owner"],
        "LOGNAME": job["owner"],
        "SHELL": job["shell"],
        "JOB_ID": str(number),
        "JOB_NAME": job["name"],
        "NSLOTS": str(job["slots"]),
        "QUEUE": job["queue"],
        "SGE_O_WORKDIR": job["cwd"],
        "SGE_STDOUT_PATH": stdout_path,
        "SGE_STDERR_PATH": stderr_path,
    }
    first, last, step = job["task_range"].replace(":", "-").split("-")
    if job["array"]:
        environment.update(
            SGE_TASK_ID=task_id, SGE_TASK_FIRST=first, SGE_TASK_LAST=last, SGE_TASK_STEPSIZE=step
        )
    else:
        for name in ("SGE_TASK_ID", "SGE_TASK_FIRST", "SGE_TASK_LAST", "SGE_TASK_STEPSIZE"):
            environment[name] = "undefined"
    environment["RESTARTED"] = "1" if task_restarted(job, task_id) else "0"
    environment.update(job["variables"])
    return environment


def task_restarted(job, task_id):
    return job["tasks"].get(task_id, {}).get("restarts", 0) > 0


def injected_error(path):
    return f'error: can\'t open output file "{path}": Stale file handle'


def reason_text(message):
    stamp = time.strftime("%m/%d/%Y %H:%M:%S")
    return f"{stamp} [{os.getuid()}:{os.getpid()}]: {message}"


if __name__ == "__main__":
    main()
