"""A fault-injecting stand-in for the compute nodes' Python (standard library only).

A chaos scenario sets the pool's ``python_path`` to a small shell script that
runs ``python chaos_wrapper.py CONFIG worker.py WORK_DIR --ichunk N ...``.
Jobs do not inherit the test's environment, so everything the wrapper needs
is in the JSON file ``CONFIG``. For each attempt of a chunk it draws, from the
scenario's seed, the chunk and the attempt number, one of:

``ok``            run the real worker (``exec``);
``die_early``     die (exit 1 or SIGKILL) before writing anything;
``half_written``  run the worker aside, leave half its outcome as the
                  worker's temporary ``.incomplete`` file, die by SIGKILL;
``truncated``     run the worker aside, write half its outcome as the final
                  file (a writer that was not atomic), end;
``late``          run the worker aside and let a detached process move the
                  outcome into place only after a delay (a slow NFS);
``duplicate``     run two real workers of the chunk at the same time.

"Aside" means in a shadow work_dir outside the real one, whose inputs are
symlinks to the real inputs, so the real work_dir sees only what the fault
shows. ``python chaos_wrapper.py --deliver SOURCE DESTINATION DELAY`` is the
detached mover of ``late``.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

ACTIONS = ("die_early", "half_written", "truncated", "late", "duplicate")
WORKER_INPUTS = ("worker_config.json", "function.pickle", "tasks.zip", "session.json")
"""What the worker reads of the work_dir (session.json: which tasks a piece runs)."""


def main(argv):
    if argv[0] == "--deliver":
        deliver(argv[1], argv[2], float(argv[3]))
        return 0
    config = read_json(argv[0])
    worker_arguments = argv[1:]
    if worker_arguments[0] == "-c":  # the submitter's interpreter check: no fault
        os.execv(config["python"], [config["python"], *worker_arguments])
    work_dir = worker_arguments[1]
    ichunk = chunk_of(worker_arguments[2:])
    attempt = count_attempt(config["state_dir"], ichunk)
    draw = random.Random(f"{config['seed']}:{ichunk}:{attempt}")
    action = choose(config["probabilities"], draw.random())
    log(config["state_dir"], ichunk, attempt, action)
    python = config["python"]
    if action == "ok":
        os.execv(python, [python, *worker_arguments])
    if action == "die_early":
        die(draw)
    if action == "duplicate":
        return run_twice(python, worker_arguments)
    raw = run_aside(python, worker_arguments, config["state_dir"], ichunk, attempt)
    if raw is None:
        return 1
    final_path = os.path.join(work_dir, "outcomes", f"{ichunk}.pickle")
    if action == "half_written":
        hidden = os.path.join(work_dir, "outcomes", f".{ichunk}.chaos.{os.getpid()}.incomplete")
        write_file(hidden, raw[: len(raw) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    if action == "truncated":
        write_file(final_path, raw[: len(raw) // 2])
        return 0 if draw.random() < 0.5 else 1
    # late
    parked = os.path.join(config["state_dir"], f"late-{ichunk}-{attempt}.pickle")
    write_file(parked, raw)
    delay = draw.uniform(0.0, config["late_delay_max"])
    subprocess.Popen(
        [python, os.path.abspath(__file__), "--deliver", parked, final_path, str(delay)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return 0


def chunk_of(arguments):
    """The chunk index, found as the worker finds it."""
    if "--ichunk" in arguments:
        return int(arguments[arguments.index("--ichunk") + 1])
    task_id = int(os.environ[arguments[arguments.index("--ichunk-from-env") + 1]])
    if "--chunk-list" not in arguments:
        return task_id
    with open(arguments[arguments.index("--chunk-list") + 1]) as file:
        return [int(line) for line in file if line.strip()][task_id - 1]


def count_attempt(state_dir, ichunk):
    """1 for the first run of ``ichunk``, then 2, 3, ... (across processes)."""
    directory = os.path.join(state_dir, "attempts")
    os.makedirs(directory, exist_ok=True)
    attempt = 1
    while True:
        try:
            marker = os.path.join(directory, f"{ichunk}.{attempt}")
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
            return attempt
        except FileExistsError:
            attempt += 1


def choose(probabilities, value):
    for action in ACTIONS:
        value -= probabilities.get(action, 0.0)
        if value < 0:
            return action
    return "ok"


def log(state_dir, ichunk, attempt, action):
    with open(os.path.join(state_dir, "actions.log"), "a") as file:
        file.write(f"chunk {ichunk} attempt {attempt}: {action}\n")


def die(draw):
    if draw.random() < 0.5:
        sys.exit(1)
    os.kill(os.getpid(), signal.SIGKILL)


def run_twice(python, worker_arguments):
    """The same chunk twice at once, both writing into the real work_dir."""
    first = subprocess.Popen([python, *worker_arguments])
    second = subprocess.Popen([python, *worker_arguments])
    return max(first.wait(), second.wait())


def run_aside(python, worker_arguments, state_dir, ichunk, attempt):
    """Run the worker on a shadow work_dir; return its outcome's bytes, or None."""
    work_dir = worker_arguments[1]
    shadow = os.path.join(state_dir, f"shadow-{ichunk}-{attempt}")
    os.makedirs(os.path.join(shadow, "outcomes"))
    for name in WORKER_INPUTS:
        os.symlink(os.path.join(work_dir, name), os.path.join(shadow, name))
    arguments = [worker_arguments[0], shadow, *worker_arguments[2:]]
    if subprocess.run([python, *arguments]).returncode != 0:
        return None
    with open(os.path.join(shadow, "outcomes", f"{ichunk}.pickle"), "rb") as file:
        raw = file.read()
    shutil.rmtree(shadow, ignore_errors=True)
    return raw


def write_file(path, data):
    with open(path, "wb") as file:
        file.write(data)


def deliver(source, destination, delay):
    """Move ``source`` to ``destination`` after ``delay`` s, if its directory is still there."""
    time.sleep(delay)
    try:
        os.replace(source, destination)
    except OSError:
        pass


def read_json(path):
    with open(path) as file:
        return json.load(file)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
