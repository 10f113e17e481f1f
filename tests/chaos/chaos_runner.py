"""Run one chaos scenario and judge what a user would see.

The map runs in a process of its own (``chaos_driver.py``) with a time
limit, so a hang is caught and reported, never waited out. A scenario with an
interruption first runs the map until it is killed (by a crash point or from
outside at a drawn moment), then runs the same map again to resume it.

A scenario whose jobs have a time limit may end with TimeLimitTooShort (a
job stopped at its limit before it finished a task); the map is then called
again without the limit, as the error advises, and continues.

Verdict: the final outcome equals the local map's (its results, or the
first refusing task's exception), or -- unless the scenario is strict -- is
one of pypoolparty's clear errors naming the work_dir, which is kept. Each
task's notes of its runs are whole lines, every task of a map that returned
ran, and none ran again once its session had recorded it as finished
(:func:`chaos_tasks.compute_noting_runs`). A map that gave up on
resubmissions had a chunk fail more often than ``max_num_resubmissions``
allows, not counting its jobs' stops. Then nothing of the map may be left: no
job in the dummy queue, no process working in the scenario's directories.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import chaos_tasks
from chaos_scenario import Scenario

import dummy_queues
from pypoolparty import crash_points

HERE = os.path.dirname(os.path.abspath(__file__))
DRIVER = os.path.join(HERE, "chaos_driver.py")
WRAPPER = os.path.join(HERE, "chaos_wrapper.py")
MAP_TIME_LIMIT = 120.0
"""Seconds one run of a map may take before it counts as hanging."""
LEFTOVER_TIME_LIMIT = 10.0
"""Seconds after a map for its jobs and processes to be gone (plus late deliveries)."""
CLEAR_ERRORS = ("ResubmissionsExhausted", "SchedulerUnavailable", "WorkDirError")
INTERRUPTED_TOO_OFTEN = re.compile(r"stopped by the cluster more than \d+ times")
"""ResubmissionsExhausted's words for stops that got nothing done, many times over."""


class ScenarioFailed(AssertionError):
    pass


class Layout:
    """Where a scenario keeps things: the dummy queue apart from the map's own files."""

    def __init__(self, root: str) -> None:
        self.queue_dir = os.path.join(root, "queue")
        self.run_dir = os.path.join(root, "run")
        self.work_dir = os.path.join(self.run_dir, "work")
        self.wrapper_dir = os.path.join(self.run_dir, "wrapper")
        self.spec_path = os.path.join(self.run_dir, "spec.json")
        self.side_effects_dir = os.path.join(self.run_dir, "side_effects")
        for path in (self.queue_dir, self.wrapper_dir, self.side_effects_dir):
            os.makedirs(path, exist_ok=True)


def run_scenario(scenario: Scenario, root: str) -> dict:
    """Run ``scenario`` in directory ``root``; raise :class:`ScenarioFailed` with
    the seed if the outcome is wrong, hangs or leaves something behind."""
    layout = Layout(root)
    try:
        outcome = _run(scenario, layout)
        _judge(scenario, layout, outcome)
        _check_runs(scenario, layout, outcome)
        _check_resubmissions(scenario, layout, outcome)
        _check_nothing_left(scenario, layout)
        return outcome
    except ScenarioFailed as failure:
        raise ScenarioFailed(
            f"{failure}\nReplay with {scenario.replay}: "
            f"{scenario.describe()}\nWrapper actions:\n{_wrapper_actions(layout).rstrip()}"
            f"\nLog of the map (end):\n{_driver_log(layout)}"
        ) from None
    finally:
        _clean_up(scenario, layout)


def _run(scenario: Scenario, layout: Layout) -> dict:
    dummy = dummy_queues.dummy_of(scenario.kind, layout.queue_dir)
    if dummy is not None:
        dummy.set_faults(**scenario.dummy_faults)
    _write_spec(scenario, layout)
    env = dict(os.environ, **{dummy_queues.QUEUE_DIR_VARIABLE: layout.queue_dir})
    env.pop(crash_points.VARIABLE, None)
    if scenario.interruption is not None:
        how, when = scenario.interruption
        if how == "crash":
            first = _run_driver(layout, dict(env, **{crash_points.VARIABLE: when}))
        else:
            first = _run_driver(layout, env, kill_after=when)
        if first is not None:  # the map ended before it could be interrupted
            return _continue_without_time_limit(scenario, layout, env, first)
    final = _run_driver(layout, env)
    if final is None:
        raise ScenarioFailed("the map died although nothing killed it")
    return _continue_without_time_limit(scenario, layout, env, final)


def _continue_without_time_limit(
    scenario: Scenario, layout: Layout, env: dict, outcome: dict
) -> dict:
    """After TimeLimitTooShort, what the error advises: the same map without the limit.

    The first call must have named its work_dir; the second continues it.
    """
    if outcome.get("error") != "TimeLimitTooShort" or not scenario.time_limit:
        return outcome
    if layout.work_dir not in outcome["message"]:
        raise ScenarioFailed(f"the error does not name the work_dir: {outcome}")
    _write_spec(scenario, layout, with_time_limit=False)
    final = _run_driver(layout, env)
    if final is None:
        raise ScenarioFailed("the map died although nothing killed it")
    return final


def _write_spec(scenario: Scenario, layout: Layout, with_time_limit: bool = True) -> None:
    options = dict(
        dummy_queues.pool_paths(scenario.kind),
        **scenario.pool_options,
        work_dir=layout.work_dir,
        verbose=True,
    )
    if not with_time_limit:
        for name in scenario.time_limit:
            del options[name]
    if scenario.wrapper_faults:
        options["python_path"] = _install_wrapper(scenario, layout)
    spec = {
        "pool_module": dummy_queues.POOLS[scenario.kind][0],
        "pool_options": options,
        "tasks": scenario.tasks,
        "chunksize": scenario.chunksize,
        "side_effects": layout.side_effects_dir,
    }
    with open(layout.spec_path, "w") as file:
        json.dump(spec, file)


def _install_wrapper(scenario: Scenario, layout: Layout) -> str:
    """Write the shell script that stands in for the nodes' Python, and its config."""
    config_path = os.path.join(layout.wrapper_dir, "config.json")
    with open(config_path, "w") as file:
        json.dump(
            {
                "seed": scenario.seed,
                "state_dir": layout.wrapper_dir,
                "python": sys.executable,
                "probabilities": scenario.wrapper_faults,
                "late_delay_max": scenario.late_delay_max,
            },
            file,
        )
    script_path = os.path.join(layout.wrapper_dir, "python")
    with open(script_path, "w") as file:
        file.write(f'#!/bin/sh\nexec "{sys.executable}" "{WRAPPER}" "{config_path}" "$@"\n')
    os.chmod(script_path, 0o755)
    return script_path


def _run_driver(layout: Layout, env: dict, kill_after: float | None = None) -> dict | None:
    """Run the map once; its outcome, or None if it was killed."""
    process = subprocess.Popen(
        [sys.executable, DRIVER, layout.spec_path],
        cwd=layout.run_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=kill_after or MAP_TIME_LIMIT)
    except subprocess.TimeoutExpired:
        if kill_after is None:
            _kill_group(process.pid)
            _, stderr = process.communicate()
            raise ScenarioFailed(
                f"the map hung: no outcome after {MAP_TIME_LIMIT:.0f} s\n"
                f"stderr (end):\n{stderr[-3000:]}"
            ) from None
        process.kill()  # the submitting process only, as kill -9 would
        process.communicate()
        return None
    if process.returncode == -signal.SIGKILL:
        return None
    with open(os.path.join(layout.run_dir, "driver.log"), "a") as log:
        log.write(stderr)
    lines = stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        raise ScenarioFailed(
            f"the map ended (exit code {process.returncode}) without an outcome\n"
            f"stdout: {stdout[-2000:]}\nstderr (end):\n{stderr[-3000:]}"
        ) from None


def _judge(scenario: Scenario, layout: Layout, outcome: dict) -> None:
    expected = chaos_tasks.expected_outcome([tuple(task) for task in scenario.tasks])
    if "results" in outcome:
        if outcome != expected:
            raise ScenarioFailed(f"wrong results: {outcome} instead of {expected}")
        return
    message = outcome["message"]
    if layout.work_dir not in message:
        raise ScenarioFailed(f"the error does not name the work_dir: {outcome}")
    if not _session_dirs(layout):
        raise ScenarioFailed(f"the map failed and did not keep its work_dir: {outcome}")
    if outcome["error"] == expected.get("error"):
        if not message.startswith(expected["message"]):
            raise ScenarioFailed(f"not the first failed task's exception: {outcome}")
        return
    if scenario.strict or outcome["error"] not in CLEAR_ERRORS or not outcome["clear"]:
        raise ScenarioFailed(f"the map failed with {outcome}, expected {expected}")


def _check_runs(scenario: Scenario, layout: Layout, outcome: dict) -> None:
    """Every task's notes are whole lines; no task ran again once it was recorded
    as finished; each task of a map that returned ran."""
    runs = chaos_tasks.runs_of(layout.side_effects_dir, len(scenario.tasks))
    for x, text in runs.items():
        lines = text.splitlines()
        if (text and not text.endswith("\n")) or not all(
            chaos_tasks.RUN_LINE.match(line) for line in lines
        ):
            raise ScenarioFailed(f"task {x}'s side effect is corrupted: {text!r}")
        if any(line.endswith("again=yes") for line in lines):
            raise ScenarioFailed(
                f"task {x} ran again although its session had recorded it as finished "
                f"before that run's job started; its runs: {lines}"
            )
        if "results" in outcome and not lines:
            raise ScenarioFailed(f"task {x} has a result but never ran")


def _check_resubmissions(scenario: Scenario, layout: Layout, outcome: dict) -> None:
    """A map that gave up on resubmissions had a chunk whose jobs failed (not
    stopped: a stop is no resubmission) more than ``max_num_resubmissions`` times
    in its last call."""
    if outcome.get("error") != "ResubmissionsExhausted":
        return
    if INTERRUPTED_TOO_OFTEN.search(outcome["message"]):
        return  # the bound of the stops themselves (session_stops.MAX_INTERRUPTIONS_PER_CHUNK)
    failures: dict[int, int] = {}
    stops: dict[int, int] = {}
    for event in _events_of_last_call(layout):
        if event["event"] == "job_failed":
            failures[event["ichunk"]] = failures.get(event["ichunk"], 0) + 1
        elif event["event"] == "job_interrupted":
            stops[event["ichunk"]] = stops.get(event["ichunk"], 0) + 1
    allowed = scenario.pool_options["max_num_resubmissions"]
    if max(failures.values(), default=0) <= allowed:
        raise ScenarioFailed(
            f"the map gave up on resubmissions, but no chunk's jobs failed more than "
            f"max_num_resubmissions={allowed} times (failures by chunk {failures}, "
            f"stops by chunk {stops}): stops were counted as resubmissions"
        )


def _events_of_last_call(layout: Layout) -> list[dict]:
    events: list[dict] = []
    for name in _session_dirs(layout):
        try:
            with open(os.path.join(layout.work_dir, name, "log.jsonl")) as file:
                lines = file.read().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line cut short by a killed map
            if event.get("event") == "session_started":
                events = []
            events.append(event)
    return events


def _session_dirs(layout: Layout) -> list[str]:
    if not os.path.isdir(layout.work_dir):
        return []
    return [name for name in os.listdir(layout.work_dir) if name.startswith("map-")]


def _check_nothing_left(scenario: Scenario, layout: Layout) -> None:
    deadline = time.monotonic() + LEFTOVER_TIME_LIMIT + scenario.late_delay_max
    while True:
        jobs = _queued_jobs(scenario, layout)
        processes = processes_mentioning(layout.run_dir)
        if scenario.interruption is not None:
            # A dummy command hanging on purpose when the submitting process
            # was killed outlives it: no process was left to end it.
            processes = [p for p in processes if dummy_queues.DUMMY_QUEUES_DIR not in p]
        if not jobs and not processes:
            return
        if time.monotonic() > deadline:
            raise ScenarioFailed(
                f"the map left jobs {jobs} in the queue and processes {processes} running"
            )
        time.sleep(0.1)


def _queued_jobs(scenario: Scenario, layout: Layout) -> list[str]:
    dummy = dummy_queues.dummy_of(scenario.kind, layout.queue_dir)
    return [] if dummy is None else dummy.queued_jobs()


def processes_mentioning(text: str) -> list[str]:
    """Command lines of processes (not this one) that name ``text``."""
    found = []
    for pid in _other_pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as file:
                command_line = file.read().decode(errors="replace").replace("\0", " ")
        except OSError:
            continue
        if text in command_line:
            found.append(f"{pid}: {command_line.strip()}")
    return found


def kill_processes_mentioning(text: str) -> None:
    """SIGKILL the processes (not this one) whose command line names ``text``."""
    for line in processes_mentioning(text):
        try:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
        except OSError:
            pass


def _clean_up(scenario: Scenario, layout: Layout) -> None:
    """Stop whatever of this scenario is still there (only our own processes)."""
    dummy = dummy_queues.dummy_of(scenario.kind, layout.queue_dir)
    if dummy is not None:
        dummy.cancel_everything()
    for pid in _other_pids():
        if _belongs_to(pid, layout):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def _belongs_to(pid: int, layout: Layout) -> bool:
    """Started for this scenario: names its directories, or is a dummy command
    (e.g. one hanging on purpose) working on its queue."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            command_line = file.read()
        with open(f"/proc/{pid}/environ", "rb") as file:
            environment = file.read()
    except OSError:
        return False
    run_dir = layout.run_dir.encode()
    queue_variable = f"{dummy_queues.QUEUE_DIR_VARIABLE}={layout.queue_dir}\0".encode()
    return run_dir in command_line or queue_variable in environment


def _other_pids() -> list[int]:
    me = os.getpid()
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and int(e) != me]


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _driver_log(layout: Layout) -> str:
    try:
        with open(os.path.join(layout.run_dir, "driver.log")) as file:
            return file.read()[-4000:]
    except FileNotFoundError:
        return "(none)"


def _wrapper_actions(layout: Layout) -> str:
    try:
        with open(os.path.join(layout.wrapper_dir, "actions.log")) as file:
            return file.read()[-3000:]
    except FileNotFoundError:
        return "(no wrapper)"
