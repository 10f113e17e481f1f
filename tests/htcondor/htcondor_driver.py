"""Run one map on the real HTCondor as the job user and print the outcome.

HTCondor never runs jobs as root, so the integration tests start this script
with ``runuser -u <user> --`` and an interpreter that user can execute, as a
real user would run their own script. Usage::

    htcondor_driver.py SCENARIO WORK_DIR [JSON_POOL_OPTIONS]

It prints one JSON line: ``{"results": [...]}`` or
``{"error": "<type>", "message": "..."}`` (then exits 1).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import time

import pypoolparty
import pypoolparty.htcondor


def square(x):
    return x * x


def power(base, exponent):
    return base**exponent


def killed_on_first_attempt(marker_dir, x):
    """Dies by SIGKILL the first time it runs for ``x``; HTCondor then holds
    the proc if the pool's submit directives say ``on_exit_hold`` on signals."""
    marker = os.path.join(marker_dir, f"attempted-{x}")
    if not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return x + 1000


def exits_3_on_first_attempt(marker_dir, x):
    """The worker exits with code 3, without a result, the first time it runs ``x``."""
    marker = os.path.join(marker_dir, f"attempted-{x}")
    if not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(3)
    return x + 1000


def always_killed(x):
    os.kill(os.getpid(), signal.SIGKILL)


def square_and_say_so(work_dir, x):
    print(f"stdout of task {x}")
    print(f"stderr of task {x}", file=sys.stderr)
    # While the job runs, every file of the work_dir is private, HTCondor's
    # output files of this very proc too (issue 17, item 15).
    shared = {}
    for root, _, names in os.walk(work_dir):
        for name in names:
            path = os.path.join(root, name)
            try:  # other processes of the map rename and remove theirs
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                continue
            if not stat.S_ISLNK(mode) and stat.S_IMODE(mode) & 0o077:
                shared[os.path.relpath(path, work_dir)] = oct(stat.S_IMODE(mode))
    return shared or x * x


def sleep_long(x):
    time.sleep(600)
    return x


def other_python_on_the_nodes(work_dir: str, options: dict) -> list:
    """The python_path passes the check on the submit host (skipped here), but
    the nodes' interpreter at that path is another Python version."""
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import interpreters

    interpreters.pypoolparty.interpreter.check = lambda python_path: None
    python = interpreters.other_version_python(os.path.dirname(work_dir))
    pool = pypoolparty.htcondor.Pool(work_dir=work_dir, python_path=python, **options)
    return pool.map(square, range(4), chunksize=1)


def where_am_i(x):
    """What a task sees of the test's Charliecloud image (charliecloud_image.MARKER)."""
    marker = "/etc/pypoolparty-test-image"
    text = open(marker).read() if os.path.exists(marker) else None
    return [x, text, os.environ.get("CH_RUNNING"), os.getcwd(), os.environ.get("USER")]


def run(scenario: str, work_dir: str, options: dict) -> list:
    if "container" in options:
        options["container"] = pypoolparty.Container(**options["container"])
    if scenario == "other_python_on_the_nodes":
        return other_python_on_the_nodes(work_dir, options)
    pool = pypoolparty.htcondor.Pool(work_dir=work_dir, **options)
    if scenario == "map_squares":
        return pool.map(square, range(1000))
    if scenario == "starmap_powers":
        return pool.starmap(power, [(i, 2) for i in range(1000)])
    if scenario == "killed_once":
        return pool.starmap(killed_on_first_attempt, [(work_dir, x) for x in range(4)])
    if scenario == "exits_once":
        return pool.starmap(exits_3_on_first_attempt, [(work_dir, x) for x in range(2)])
    if scenario == "always_killed":
        return pool.map(always_killed, range(2))
    if scenario == "sleep_long":
        print(json.dumps({"started": True}), flush=True)
        return pool.map(sleep_long, range(4))
    if scenario == "say_squares":
        return pool.starmap(square_and_say_so, [(work_dir, x) for x in range(3)], chunksize=1)
    if scenario == "inside_image":
        return pool.map(where_am_i, range(3), chunksize=1)
    if scenario == "one_task":
        return pool.map(square, [7])
    raise SystemExit(f"unknown scenario {scenario!r}")


def main() -> None:
    scenario, work_dir = sys.argv[1], sys.argv[2]
    options = json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}
    try:
        results = run(scenario, work_dir, options)
    except BaseException as error:
        print(json.dumps({"error": type(error).__name__, "message": str(error)}), flush=True)
        sys.exit(1)
    print(json.dumps({"results": results}), flush=True)


if __name__ == "__main__":
    main()
