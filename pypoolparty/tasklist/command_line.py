"""``pypoolparty run TASKLIST``: its options, its summary, and the task outputs.

:mod:`pypoolparty.cli` adds the ``run`` subcommand with :func:`add_command`
and asks :func:`task_output` first when ``pypoolparty stdout/stderr`` is
given the work_dir of a task-list run.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys

from .. import errors
from ..work_dir import DEFAULT_BASE_NAME
from . import parsing, runner, state
from .state import RunDir

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(ValueError):
    """An option of ``pypoolparty run`` that cannot be used; nothing ran."""


MAX_LISTED_FAILURES = 20

POOLS = {
    "local": "pypoolparty.local",
    "slurm.array": "pypoolparty.slurm.array",
    "slurm": "pypoolparty.slurm",
    "sge": "pypoolparty.sun_grid_engine",
    "htcondor": "pypoolparty.htcondor",
}
"""``--pool`` choices and the module whose ``Pool`` each one makes."""

DESCRIPTION = """\
Run each line of TASKLIST (a text file of bash commands; empty lines and lines
starting with # are skipped) as one task of a pool, with 'bash -c' in the
current directory (or --chdir). A task succeeds when its exit status is 0; a
failed task does not stop the others. At the end, a summary; the line numbers
of the finished and failed tasks are in WORK_DIR/tasklist/finished.lines and
failed.lines, the failed commands in failed.tasklist (a task list of its own).
'pypoolparty stdout WORK_DIR LINE' shows a task's own output.

The same command again continues the run: only tasks that have not finished
run (with --retry-failed, failed ones too). A changed TASKLIST is refused for
that WORK_DIR. Ctrl-C, SIGUSR1 or SIGTERM stop the run and keep unfinished
tasks for the next one.

Exit status: 0 every task succeeded; 1 a task failed or did not run;
2 a usage error (nothing ran); 130 interrupted."""

POOL_OPTION_HELP = """\
a keyword option of the chosen pool's constructor, repeatable: its resources
(slurm: partition=, time=, mem=, cpus_per_task=, gpus=, account=, qos=; sge:
queue=, ...; htcondor: request_cpus=, request_memory=, ...) and any common
option (python_path=, setup=, environment=, ...). VALUE is read as JSON when
it parses (600, 2.5, true, ["--exclusive"]), else taken as a string
(partition=debug, time=1:00:00)."""


def add_command(commands) -> argparse.ArgumentParser:
    """Add ``run`` to the subcommands of :mod:`pypoolparty.cli`."""
    command = commands.add_parser(
        "run",
        help="run each line of a task list as a shell command, in a pool",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    command.add_argument("tasklist", metavar="TASKLIST", help="the file of commands")
    command.add_argument("--pool", choices=list(POOLS), default="local", help="default: local")
    command.add_argument(
        "--work-dir",
        default=os.path.join(".", DEFAULT_BASE_NAME),
        metavar="DIR",
        help="where the run is recorded and the jobs exchange files; on a file system the "
        f"compute nodes reach (default: ./{DEFAULT_BASE_NAME})",
    )
    command.add_argument(
        "--chdir", metavar="DIR", help="run the commands there (default: the current directory)"
    )
    command.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="per task: kill the command's process group after this long; the task fails",
    )
    command.add_argument(
        "-j",
        "--jobs",
        type=int,
        metavar="N",
        help="at most N tasks at once (in N / --tasks-per-job jobs)",
    )
    command.add_argument("--chunksize", type=int, metavar="N", help="tasks per job")
    command.add_argument(
        "--tasks-per-job",
        type=int,
        metavar="N",
        help="each job runs N tasks at once, in N processes (PyTaskFarmer's --proc); "
        "request the cores with --pool-option (e.g. cpus_per_task=N); default: 1",
    )
    command.add_argument(
        "--max-resubmissions",
        type=int,
        metavar="N",
        help="resubmissions of a job that failed for the cluster's reasons (default: 5)",
    )
    command.add_argument(
        "--polling-interval", type=float, metavar="SECONDS", help="between looks at the jobs"
    )
    command.add_argument(
        "--pool-option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=POOL_OPTION_HELP,
    )
    command.add_argument("--verbose", action="store_true", help="show progress on stderr")
    command.add_argument(
        "--retry-failed", action="store_true", help="also run again the tasks that failed"
    )
    command.add_argument(
        "--new",
        action="store_true",
        help="forget the run recorded in WORK_DIR (its outcomes and outputs) and start afresh",
    )
    command.set_defaults(command=main, command_name="run")
    return command


def main(args: argparse.Namespace) -> int:
    """Run ``pypoolparty run`` with parsed ``args``; return the exit status."""
    try:
        options = _options(args)
        summary = runner.run(options, _say)
    except (
        parsing.TaskListError,
        state.RunMismatch,
        state.RunnerBusy,
        errors.BadInput,
        UsageError,
    ) as error:
        print(f"pypoolparty run: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        # Before or after the maps (which handle it themselves): nothing is lost.
        print("pypoolparty run: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except errors.PoolError as error:
        # The scheduler or the jobs broke down; what finished is recorded or
        # kept in the interrupted map, which the same command continues.
        print(f"pypoolparty run: the run stopped: {error}", file=sys.stderr)
        print(
            "pypoolparty run: finished tasks are kept; fix the cause and run the same "
            "command again to continue",
            file=sys.stderr,
        )
        return EXIT_FAILED
    _print_summary(summary, args.work_dir)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if not summary.failed and not summary.not_run else EXIT_FAILED


def _options(args: argparse.Namespace) -> runner.RunOptions:
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout must be a number of seconds > 0, not {args.timeout:g}")
    if args.chunksize is not None and args.chunksize < 1:
        raise UsageError(f"--chunksize must be a whole number >= 1, not {args.chunksize}")
    if args.tasks_per_job is not None and args.tasks_per_job < 1:
        raise UsageError(f"--tasks-per-job must be a whole number >= 1, not {args.tasks_per_job}")
    cwd = os.path.abspath(args.chdir or os.getcwd())
    if not os.path.isdir(cwd):
        raise UsageError(f"--chdir {args.chdir!r} is not a directory")
    work_dir = os.path.abspath(args.work_dir)
    keywords = dict(_pool_option(text) for text in args.pool_option)
    keywords.update(work_dir=work_dir, keep_work_dir=True, reuse_results=True)
    if args.verbose:
        keywords["verbose"] = True
    if args.max_resubmissions is not None:
        keywords["max_num_resubmissions"] = args.max_resubmissions
    if args.polling_interval is not None:
        keywords["polling_interval"] = args.polling_interval
    if args.tasks_per_job is not None:
        keywords["tasks_per_job"] = args.tasks_per_job
    return runner.RunOptions(
        tasklist=args.tasklist,
        work_dir=work_dir,
        cwd=cwd,
        make_pool=functools.partial(_make_pool, args.pool, args.jobs, keywords),
        timeout=args.timeout,
        chunksize=args.chunksize,
        retry_failed=args.retry_failed,
        new=args.new,
    )


def _pool_option(text: str) -> tuple[str, object]:
    name, equals, value = text.partition("=")
    if not equals or not name.isidentifier():
        raise UsageError(
            f"--pool-option {text!r} is not NAME=VALUE with NAME a keyword of the pool "
            "(e.g. --pool-option partition=debug)"
        )
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def _make_pool(kind: str, jobs: int | None, keywords: dict):
    import importlib

    module = importlib.import_module(POOLS[kind])
    try:
        return module.Pool(jobs, **keywords)
    except errors.BadInput:
        raise
    except (TypeError, ValueError) as error:
        # A value of the wrong kind for an option the pool does have.
        raise UsageError(f"--pool {kind}: {error}") from error


def _say(line: str) -> None:
    print(f"pypoolparty run: {line}", file=sys.stderr)


def _print_summary(summary: runner.Summary, work_dir: str) -> None:
    failed, not_run = summary.failed, summary.not_run
    total = len(summary.tasks)
    head = "interrupted; " if summary.interrupted else ""
    print(
        f"{head}{total} task(s): {len(summary.finished)} done, {len(failed)} failed, "
        f"{len(not_run)} not run ({summary.run_now} in this call)"
    )
    for task in failed[:MAX_LISTED_FAILURES]:
        outcome = summary.latest[task.line]
        print(f"  failed: line {task.line} ({_describe(outcome)}): {task.command}")
        if outcome.stderr_tail:
            print("\n".join("      " + line for line in outcome.stderr_tail.splitlines()))
    if len(failed) > MAX_LISTED_FAILURES:
        print(f"  ... and {len(failed) - MAX_LISTED_FAILURES} more failed")
    if not_run:
        lines = ", ".join(str(t.line) for t in not_run[:MAX_LISTED_FAILURES])
        more = ", ..." if len(not_run) > MAX_LISTED_FAILURES else ""
        print(f"  not run: lines {lines}{more}")
    run_dir = RunDir(work_dir)
    print(f"  finished lines: {run_dir.finished_path}")
    print(f"  failed lines:   {run_dir.failed_path} (commands: {run_dir.failed_tasklist_path})")
    print(f"  a task's output: pypoolparty stdout|stderr {work_dir} LINE")
    if summary.interrupted or not_run:
        print("  run the same command again to run what did not finish")
    elif failed:
        print("  --retry-failed runs the failed ones again")


def _describe(outcome: state.Outcome) -> str:
    from ..shell_commands import describe_returncode

    if outcome.timed_out:
        return f"timed out after {outcome.timeout:g} s"
    return describe_returncode(outcome.returncode)


def print_status(work_dir: str) -> bool:
    """Print how the task-list run in ``work_dir`` stands; False if it holds none."""
    run_dir = RunDir(work_dir)
    if not run_dir.exists():
        return False
    described = run_dir.description()
    latest = state.latest_outcomes(run_dir.outcomes())
    num_ok = sum(outcome.ok for outcome in latest.values())
    runner = run_dir.runner()
    current = run_dir.current_map()
    print(f"task list {described.get('tasklist')} (run started {described.get('created')}):")
    print(f"  runner:   {f'pid {runner.pid} on {runner.host}' if runner else 'not running'}")
    print(
        f"  tasks:    {described.get('num_tasks')}: {num_ok} done, {len(latest) - num_ok} "
        f"failed, {int(described.get('num_tasks', 0)) - len(latest)} not run (as recorded)"
    )
    if current is not None:
        state_of_map = (
            "running" if runner else "interrupted; the same 'pypoolparty run' continues it"
        )
        print(f"  map:      {len(current.lines)} task(s), {state_of_map}")
    return True


def run_dir_at(work_dir: str) -> RunDir | None:
    """The task-list run recorded in ``work_dir``; None if it holds none."""
    run_dir = RunDir(work_dir)
    return run_dir if run_dir.exists() else None


def task_output(work_dir: str, line: int, stream: str) -> int | None:
    """Write task ``line``'s ``stream`` if ``work_dir`` holds a task-list run.

    A task of the map in progress that runs shows what it has written so
    far (the end of its file, at most
    :data:`pypoolparty.inspection.job_outputs.MAX_SHOWN_BYTES`); one that
    finished in it, its output from the map's outcomes; else the task's
    latest recorded attempt.

    Returns
    -------
    int or None
        The exit status; None if ``work_dir`` holds no task-list run (the
        caller then reads it as a map's work_dir).
    """
    run_dir = RunDir(work_dir)
    if not run_dir.exists():
        return None
    current = run_dir.current_map()
    in_map = current is not None and line in current.lines
    if in_map:
        status = _output_in_map(run_dir, work_dir, current.lines.index(line), line, stream)
        if status is not None:
            return status
    found = run_dir.output(line, stream)
    if found is None:
        if in_map:
            why = "it waits in the map in progress, which has not started it yet"
        else:
            why = (
                "it is not a task (empty, a comment, or beyond the end), or the run has not "
                "reached it; 'pypoolparty status' shows how the run stands"
            )
        print(
            f"pypoolparty {stream}: line {line} of the task list in {work_dir} has not run "
            f"(yet): {why}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    outcome, data = found
    again = " (it waits to run again in the map in progress)" if in_map else ""
    print(
        f"pypoolparty: {stream} of line {line} (attempt {outcome.attempt}, "
        f"{'ok' if outcome.ok else _describe(outcome)}){again}:",
        file=sys.stderr,
    )
    _write(data)
    return EXIT_OK


def _output_in_map(run_dir: RunDir, work_dir: str, itask: int, line: int, stream: str):
    """The output of a task of the map in progress that runs or ran; None if it has not."""
    from .. import inspection, shell_commands
    from ..inspection.job_outputs import MAX_SHOWN_BYTES, read_tail
    from ..inspection.outcomes import finished_task

    session = inspection.current_map_session(run_dir, work_dir)
    if session is None:
        return None
    which = f"line {line} (task {itask} of {session.path})"
    path = shell_commands.running_output_path(session.path, itask, stream)
    try:
        data, skipped = read_tail(path, MAX_SHOWN_BYTES)
    except FileNotFoundError:
        entry = finished_task(session, itask)
        fields = shell_commands.result_fields((entry or {}).get("result") or b"")
        if fields is None:
            return None
        how = shell_commands.describe_returncode(fields.get("returncode", 0))
        if fields.get("timed_out"):
            how = "timed out"
        print(
            f"pypoolparty: {stream} of {which}, finished ({how}) in the map in progress; "
            "the run records it when the map ends:",
            file=sys.stderr,
        )
        _write(fields.get(stream) or b"")
        return EXIT_OK
    if run_dir.runner() is not None:
        state_of_task = f"{which} is still running; its {stream} so far"
    else:
        state_of_task = (
            f"{which} was running when the run stopped; its {stream} up to then (the same "
            "'pypoolparty run' runs it again)"
        )
    shown = f" (its last {len(data)} bytes; {skipped} bytes before them are in the file)"
    print(f"pypoolparty: {state_of_task}, from {path}{shown if skipped else ''}:", file=sys.stderr)
    _write(data)
    return EXIT_OK


def _write(data: bytes) -> None:
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.flush()
