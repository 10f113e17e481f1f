"""``pypoolparty``: look into a running or kept work_dir from the command line.

::

    pypoolparty status   WORK_DIR            chunks and tasks by state, jobs, time
    pypoolparty errors   WORK_DIR            failed tasks, jobs failed at the scheduler
    pypoolparty stdout   WORK_DIR TASK       the stdout of the job that ran task TASK
                                             (so far, if it runs)
    pypoolparty stderr   WORK_DIR TASK       ... its stderr
    pypoolparty timeline WORK_DIR -o FILE    tasks per host and process slot, for
                                             ui.perfetto.dev
    pypoolparty clean    WORK_DIR [--dry-run] [--unfinished]
                                             remove the directories of maps that are over
    pypoolparty run      TASKLIST [options]  run each line as a shell command in a pool
                                             (see :mod:`pypoolparty.tasklist`)

WORK_DIR is the work_dir given to the Pool (every map in it) or one map's
``map-...`` directory; without it, ``./.pypoolparty``, a Pool's default.
Nothing is written into it, but for ``clean`` (see :mod:`pypoolparty.cleaning`)
and ``run``. For the work_dir of a ``run``, ``stdout``/``stderr`` TASK is a line
number of the task list and shows that task's own output.
Exit codes: 0 done, 1 the output asked for is not in the work_dir (or a
directory could not be removed), 2 a usage error or not a work_dir.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from . import cleaning, inspection, pending, progress
from .tasklist import command_line as tasklist_command_line
from .version import __version__
from .work_dir import DEFAULT_BASE_NAME, is_session_dir_name

EXIT_OK = 0
EXIT_NOT_RECORDED = 1
"""What was asked for is not in the work_dir, or a file could not be read or written."""
EXIT_USAGE = 2

CHUNK_STATE_LABELS = {
    inspection.DONE: "done",
    inspection.RUNNING: "running",
    inspection.PENDING: "pending",
    inspection.HELD: "held",
    inspection.ERROR: "in error",
    inspection.JOB_FAILED: "failed at the scheduler",
    inspection.CANCELLED: "cancelled when the map stopped",
    inspection.QUEUED: "submitted, no state seen yet",
    inspection.ENDED: "ended, result not seen yet",
    inspection.GONE: "left the queue, result not seen yet",
    inspection.UNKNOWN: "in an unknown state",
    inspection.SUBMITTING: "being submitted",
    inspection.NOT_SUBMITTED: "not yet submitted",
}
ALWAYS_SHOWN_STATES = (
    inspection.DONE,
    inspection.RUNNING,
    inspection.PENDING,
    inspection.HELD,
    inspection.ERROR,
    inspection.NOT_SUBMITTED,
)
"""Shown even when zero, so a reader finds them in the same place every time."""

LOOK_UP_COMMANDS = {
    "slurm": "squeue -j ID, scontrol show job ID",
    "sge": "qstat -j JOB",
    "htcondor": "condor_q -better-analyze CLUSTER.PROC",
}
"""How a user looks a job id of each scheduler up."""

ENDING_LABELS = {
    "finished": "finished",
    "task_failed": "finished, a task failed",
    "stopped": "stopped by an error",
    "running": "running",
    "interrupted": "interrupted",
    "not_started": "not started",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``pypoolparty`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        The exit code: 0 done, 1 the output asked for is not in the work_dir,
        2 a usage error or a path that is not a work_dir.
    """
    args = _parser().parse_args(argv)
    try:
        return args.command(args)
    except (inspection.NotAWorkDir, inspection.TaskOutOfRange) as error:
        print(f"pypoolparty {args.command_name}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except inspection.NotRecorded as error:
        print(f"pypoolparty {args.command_name}: {error}", file=sys.stderr)
        return EXIT_NOT_RECORDED
    except BrokenPipeError:
        # The reader (``| head``) left; say nothing more into the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as error:
        # Unreadable files (permissions, a vanished mount) or an output
        # file that cannot be written: a message, not a traceback.
        print(f"pypoolparty {args.command_name}: {error}", file=sys.stderr)
        return EXIT_NOT_RECORDED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pypoolparty",
        description="Look into a pypoolparty work_dir, while its map runs or after; "
        "run a task list of shell commands.",
        epilog="WORK_DIR: the work_dir given to the Pool (by default ./.pypoolparty), "
        "or one of its map-... directories. Nothing is written into it, but for 'clean'.",
    )
    parser.add_argument("--version", action="version", version=f"pypoolparty {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    _add_command(commands, "status", _status, "chunks and tasks by state, jobs, elapsed time")
    _add_command(commands, "errors", _errors, "failed tasks and jobs failed at the scheduler")
    for stream in ("stdout", "stderr"):
        command = _add_command(
            commands, stream, _output, f"the {stream} of the job that ran a task"
        )
        command.add_argument(
            "task",
            type=int,
            metavar="TASK",
            help="the task's index in the map; for the work_dir of 'pypoolparty run', "
            "the task's line number in the task list",
        )
        command.add_argument(
            "--attempt",
            type=int,
            metavar="N",
            help=f"the {stream} of the job of failed attempt N of the task's chunk, "
            "as numbered by 'pypoolparty errors'",
        )
        command.set_defaults(stream=stream)
    timeline = _add_command(
        commands,
        "timeline",
        _timeline,
        "every task on its host and process slot, as a Chrome trace (ui.perfetto.dev)",
    )
    timeline.add_argument(
        "-o", "--output", required=True, metavar="FILE", help="where to write it; - for stdout"
    )
    clean = _add_command(
        commands,
        "clean",
        _clean,
        "remove the directories of finished maps (and, if asked, of unfinished ones)",
        description=CLEAN_DESCRIPTION,
    )
    clean.add_argument(
        "-n",
        "--dry-run",
        action="store_true",
        help="only list what would be removed and how much space it takes",
    )
    clean.add_argument(
        "--unfinished",
        action="store_true",
        help="also remove maps that did not finish (interrupted, stopped by an error, a task "
        "raised) and that no live process holds; calling such a map again would have "
        "continued it",
    )
    tasklist_command_line.add_command(commands)
    return parser


CLEAN_DESCRIPTION = (
    "Remove the session directories of maps that are over. By default, those of finished "
    "maps: kept with keep_work_dir=True, or caches made with reuse_results=True. With "
    "--unfinished, also those of maps that did not finish and that no live process holds "
    "(abandoned: interrupted, stopped by an error, or a task raised); calling such a map "
    "again would have continued it. A directory a live process holds is never removed, nor "
    "one whose lock a process on another host holds. --dry-run lists what would go."
)


def _add_command(
    commands, name: str, function, summary: str, description: str | None = None
) -> argparse.ArgumentParser:
    command = commands.add_parser(name, help=summary, description=description or summary)
    command.add_argument(
        "work_dir",
        metavar="WORK_DIR",
        nargs="?",
        default=os.path.join(".", DEFAULT_BASE_NAME),
        help="a work_dir given to a Pool, or one of its map-... directories "
        f"(default: ./{DEFAULT_BASE_NAME}, a Pool's default)",
    )
    command.set_defaults(command=function, command_name=name)
    return command


# -- status -----------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    if tasklist_command_line.print_status(args.work_dir):
        # A task-list run shows its map, if one is in progress, below it.
        try:
            sessions = inspection.find_sessions(args.work_dir)
        except inspection.NotAWorkDir:
            return EXIT_OK
        print()
    else:
        sessions = inspection.find_sessions(args.work_dir)
    for number, session in enumerate(sessions):
        if number:
            print()
        _print_status(inspection.session_status(session))
    return EXIT_OK


def _print_status(status: inspection.SessionStatus) -> None:
    session = status.session
    print(f"{session.name}: {_describe_map(session)}")
    print(f"  map:      {_describe_process(status.process)}")
    print(f"  time:     {_describe_time(status)}")
    print(f"  chunks:   {_describe_counts(status.chunks_by_state)} (as last logged)")
    tasks = _describe_counts(status.tasks_by_state)
    print(f"  tasks:    {tasks}; {status.num_failed_tasks} failed")
    print(f"  left:     {status.num_chunks_left} chunks, {status.num_tasks_left} tasks")
    print(
        f"  jobs:     {status.num_jobs_submitted} submitted, "
        f"{status.num_scheduler_failures} failed at the scheduler, "
        f"{status.num_resubmissions} resubmissions"
    )
    for stuck in status.stuck[: inspection.MAX_LISTED_STUCK_CHUNKS]:
        why = ", ".join(p for p in (stuck.scheduler_state, stuck.reason) if p)
        print(
            f"  {CHUNK_STATE_LABELS[stuck.state]}: chunk {stuck.ichunk}, job {stuck.jobid} ({why})"
        )
    hidden = len(status.stuck) - inspection.MAX_LISTED_STUCK_CHUNKS
    if hidden > 0:
        print(f"  ... and {hidden} more held, in error or in an unknown state")
    _print_jobs(status)


def _print_jobs(status: inspection.SessionStatus) -> None:
    """Why pending jobs wait, and the ids of the jobs in the queue, as last logged."""
    for waiting in status.pending_reasons[: pending.MAX_LISTED_REASONS]:
        reason = waiting.reason or "no reason given yet"
        if waiting.blocked:
            reason += " (does not clear by itself)"
        ids = pending.compact_job_ids(waiting.jobids)
        print(f"  waiting:  {len(waiting.jobids)} job(s) for {reason}: {ids}")
    hidden = status.pending_reasons[pending.MAX_LISTED_REASONS :]
    if hidden:
        count = sum(len(waiting.jobids) for waiting in hidden)
        print(f"  waiting:  ... and {count} job(s) for {len(hidden)} other reason(s)")
    _print_running(status)
    listed = [
        f"{CHUNK_STATE_LABELS[state]} {pending.compact_job_ids(jobids)}"
        for state, jobids in status.jobids_by_state.items()
    ]
    if listed:
        print(f"  job ids:  {'; '.join(listed)}")
        look_up = LOOK_UP_COMMANDS.get(status.session.scheduler)
        if look_up:
            print(f"  look up:  {look_up}")


MAX_LISTED_RUNNING = 8


def _print_running(status: inspection.SessionStatus) -> None:
    """Which job runs which chunk: jobs claim chunks, so a job is not its chunk."""
    running = status.running_chunks
    for jobid, ichunk in running[:MAX_LISTED_RUNNING]:
        tasks = status.session.tasks_of(ichunk)
        print(f"  running:  job {jobid}: chunk {ichunk} (tasks {tasks.start}..{tasks.stop - 1})")
    if len(running) > MAX_LISTED_RUNNING:
        print(f"  running:  ... and {len(running) - MAX_LISTED_RUNNING} more chunk(s)")


def _describe_map(session: inspection.SessionInfo) -> str:
    pieces = sum(1 for ichunk, source, _, _ in session.pieces if ichunk != source)
    split = f", {pieces} of them pieces of chunks a time limit stopped" if pieces else ""
    return (
        f"{session.function}, {session.kind} of {session.num_tasks} tasks in "
        f"{session.num_chunks} chunks of {_chunk_sizes(session)}{split} "
        f"(scheduler {session.scheduler}, submitted from {session.submit_host})"
    )


def _chunk_sizes(session: inspection.SessionInfo) -> str:
    if not session.chunk_starts:
        return str(session.chunksize)
    last = len(session.tasks_of(len(session.chunk_starts) - 1))
    return f"{session.chunksize} down to {last}"


def _describe_process(process: inspection.ProcessState) -> str:
    label = ENDING_LABELS.get(process.ending, process.ending)
    if not process.detail:
        return label
    first_line = process.detail.strip().splitlines()[0] if process.detail.strip() else ""
    # "KeyboardInterrupt: " (Ctrl-C has no message) reads "KeyboardInterrupt".
    return f"{label} ({first_line.removesuffix(':')})"


def _describe_time(status: inspection.SessionStatus) -> str:
    if status.first_event_time is None or status.last_event_time is None:
        return "nothing logged yet"
    calls = f"{status.num_calls} call" + ("" if status.num_calls == 1 else "s")
    elapsed = progress.format_duration(status.elapsed())
    return (
        f"elapsed {elapsed}, started {_clock(status.first_event_time)}, "
        f"last event {_clock(status.last_event_time)} ({status.last_event}), {calls}"
    )


def _describe_counts(by_state: dict[str, int]) -> str:
    shown = [s for s in inspection.CHUNK_STATES if s in ALWAYS_SHOWN_STATES or by_state[s]]
    return ", ".join(f"{by_state[s]} {CHUNK_STATE_LABELS[s]}" for s in shown)


def _clock(stamp: float | None) -> str:
    if stamp is None:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


# -- errors -----------------------------------------------------------------


def _errors(args: argparse.Namespace) -> int:
    sessions = inspection.find_sessions(args.work_dir)
    for number, session in enumerate(sessions):
        if number:
            print()
        print(f"{session.name}: {_describe_map(session)}")
        _print_task_failures(session)
        _print_scheduler_trouble(inspection.scheduler_trouble(session))
    return EXIT_OK


def _print_task_failures(session: inspection.SessionInfo) -> None:
    count = 0
    for failure in inspection.task_failures(session):
        count += 1
        print(
            f"  task {failure.itask} (chunk {failure.ichunk}) on host {failure.host}: "
            f"{failure.type}: {_first_line(failure.message)}"
        )
        if failure.traceback:
            print(_indent(failure.traceback, 6))
    print(f"  {count} failed task(s)")


def _print_scheduler_trouble(trouble: inspection.SchedulerTrouble) -> None:
    for failure in trouble.job_failures:
        after = f"; resubmitted as job {failure.resubmitted_as}" if failure.resubmitted_as else ""
        print(
            f"  job {failure.jobid} (chunk {failure.ichunk}, attempt {failure.attempt}) "
            f"failed at {_clock(failure.time)}: {failure.reason or 'no reason logged'}{after}"
        )
        if failure.stderr_tail:
            print("      stderr (last lines):")
            print(_indent(failure.stderr_tail, 8))
    resubmitted = sum(1 for f in trouble.job_failures if f.resubmitted_as)
    print(
        f"  {len(trouble.job_failures)} job(s) failed at the scheduler, {resubmitted} resubmitted"
    )
    for stop in trouble.map_stops:
        print(f"  the map stopped at {_clock(stop.time)}:")
        print(_indent(stop.error, 6))


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] + (" ..." if len(lines) > 1 else "") if lines else ""


def _indent(text: str, width: int) -> str:
    return "\n".join(" " * width + line for line in text.rstrip().splitlines())


# -- stdout and stderr -------------------------------------------------------


def _output(args: argparse.Namespace) -> int:
    if args.attempt is None:
        status = tasklist_command_line.task_output(args.work_dir, args.task, args.stream)
        if status is not None:
            return status
    session = inspection.only_session(args.work_dir)
    output = inspection.job_output(session, args.task, args.stream, attempt=args.attempt)
    if output.path is None:
        job = f", job {output.jobid}" if output.jobid else ""
        print(
            f"pypoolparty: {args.stream} of task {output.itask} (chunk {output.ichunk}{job}, "
            f"{output.source}):",
            file=sys.stderr,
        )
    else:
        print(_describe_live_output(output, args.stream), file=sys.stderr)
    sys.stdout.flush()
    sys.stdout.buffer.write(output.data)
    sys.stdout.flush()
    return EXIT_OK


LIVE_TASK_STATES = {
    inspection.RUNNING_TASK: "is still running",
    inspection.FINISHED_TASK: "has finished, and its job still runs the rest of its chunk "
    "(or the map has not collected it yet)",
    inspection.WAITING_TASK: "has not started yet: its job runs the tasks of its chunk in "
    "order, and an earlier one still runs",
}


def _describe_live_output(output: inspection.JobOutput, stream: str) -> str:
    """What a job's live output is and where it is: a Python map's tasks share it."""
    tasks = output.chunk_tasks
    shared = (
        f"tasks {tasks.start}..{tasks.stop - 1} of chunk {output.ichunk} write to it"
        if len(tasks) > 1
        else f"chunk {output.ichunk} is this task alone"
    )
    shown = ""
    if output.skipped:
        shown = (
            f"; only its last {cleaning.format_size(len(output.data))} are shown, "
            f"{cleaning.format_size(output.skipped)} before them are in the file"
        )
    return (
        f"pypoolparty: task {output.itask} {LIVE_TASK_STATES[output.task_state]} "
        f"(chunk {output.ichunk}, job {output.jobid}). The {stream} of its job so far "
        f"follows, from {output.path}: a map's tasks write to their job's output, and "
        f"{shared}{shown}:"
    )


# -- timeline ---------------------------------------------------------------


def _timeline(args: argparse.Namespace) -> int:
    trace = _trace_of(args.work_dir)
    if args.output == "-":
        _write_trace(trace, sys.stdout)
    else:
        with open(args.output, "w", encoding="utf-8") as file:
            _write_trace(trace, file)
    where = "stdout" if args.output == "-" else args.output
    chunks = f" in {trace.num_runs} chunk run(s)" if trace.session is not None else ""
    print(
        f"pypoolparty: {trace.num_task_slices} task(s){chunks} on {len(trace.hosts)} host(s) "
        f"written to {where}; open it in https://ui.perfetto.dev",
        file=sys.stderr,
    )
    return EXIT_OK


def _trace_of(path: str) -> inspection.ChromeTrace:
    """The trace of a task-list run (recorded and in progress), or of the one map at ``path``."""
    run_dir = tasklist_command_line.run_dir_at(path)
    if run_dir is not None:
        session = inspection.current_map_session(run_dir, path)
        return inspection.tasklist_trace(run_dir, session)
    session = inspection.only_session(path)
    return inspection.chrome_trace(session, inspection.chunk_runs(session))


def _write_trace(trace: inspection.ChromeTrace, file: TextIO) -> None:
    """Write the trace event by event: 100,000 tasks need not be one string."""
    file.write('{"displayTimeUnit": "ms", "otherData": ')
    file.write(json.dumps(trace.other_data))
    file.write(', "traceEvents": [\n')
    for number, event in enumerate(trace.events()):
        file.write((",\n" if number else "") + json.dumps(event))
    file.write("\n]}\n")


# -- clean ------------------------------------------------------------------

CLEAN_KIND_LABELS = {
    cleaning.FINISHED: "finished",
    cleaning.UNFINISHED: "unfinished",
    cleaning.RUNNING: "running",
}


def _clean(args: argparse.Namespace) -> int:
    sessions = _sessions_to_clean(args.work_dir)
    if not sessions:
        print(f"pypoolparty clean: no maps in {args.work_dir}", file=sys.stderr)
        return EXIT_OK
    freed = removed = 0
    failed = False
    for verdict in cleaning.survey(sessions, unfinished=args.unfinished):
        if not verdict.removable:
            print(f"kept          {_describe_verdict(verdict)}{_why_kept(verdict)}")
            continue
        if args.dry_run:
            print(f"would remove  {_describe_verdict(verdict)}")
        else:
            try:
                if not cleaning.remove(verdict):
                    print(f"kept          {_describe_verdict(verdict)}: it changed meanwhile")
                    continue
            except OSError as error:
                print(f"pypoolparty clean: cannot remove {verdict.session.path}: {error}")
                failed = True
                continue
            print(f"removed       {_describe_verdict(verdict)}")
        removed += 1
        freed += verdict.size
    verb = "would remove" if args.dry_run else "removed"
    print(
        f"{verb} {removed} map director{'y' if removed == 1 else 'ies'}, "
        f"{cleaning.format_size(freed)}"
    )
    return EXIT_NOT_RECORDED if failed else EXIT_OK


def _sessions_to_clean(path: str) -> list[inspection.SessionInfo]:
    """The maps at ``path``; none if it does not exist or holds no map directories."""
    if not os.path.exists(path):
        return []
    try:
        return inspection.find_sessions(path)
    except inspection.NotAWorkDir:
        if os.path.isdir(path) and not any(map(is_session_dir_name, os.listdir(path))):
            return []
        raise


def _describe_verdict(verdict: cleaning.Verdict) -> str:
    session = verdict.session
    detail = f": {verdict.detail}" if verdict.detail else ""
    return (
        f"{session.path} ({CLEAN_KIND_LABELS[verdict.kind]}{detail}; "
        f"{cleaning.format_size(verdict.size)}): {session.function}, {session.kind} of "
        f"{session.num_tasks} tasks on {session.scheduler}"
    )


def _why_kept(verdict: cleaning.Verdict) -> str:
    if verdict.kind == cleaning.UNFINISHED:
        return "; --unfinished removes it (calling the map again would continue it)"
    return ""
