"""Write the submit description of one cluster whose procs are chunks.

The submit language has its own quoting rules (:func:`quote_arguments`,
:func:`classad_string`) and file layout (where the event log and the procs'
output go), which is why it has a module of its own beside :mod:`.options`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .. import job_files
from ..scheduler import Submission, SubmissionRejected

if TYPE_CHECKING:
    from .options import ClusterOptions

CHUNK_MACRO = "ichunk"
JOB_NAME_ATTRIBUTE = "PypoolpartyJobName"
"""A job ad attribute of our own holding ``Submission.job_name``, so that a
cluster can be found again even when the user sets the same batch name on
many pools."""

EVENT_LOG_NAME = "events.log"
SUBMIT_FILE_NAME = "cluster.sub"
INPUTS_DIR_NAME = "inputs"


def event_log_path(directory: str) -> str:
    """Where the cluster submitted from ``directory`` writes its event log."""
    return os.path.join(directory, EVENT_LOG_NAME)


def job_output_paths(directory: str, ichunk: int | str) -> tuple[str, str]:
    """The stdout and stderr paths of the proc running chunk ``ichunk``."""
    return (
        os.path.join(directory, f"chunk-{ichunk}.stdout"),
        os.path.join(directory, f"chunk-{ichunk}.stderr"),
    )


def quote_arguments(arguments: Sequence[str]) -> str:
    """Quote ``arguments`` in the submit language's new syntax.

    The whole value is in double quotes; each argument is in single quotes,
    where a single quote is written twice, and a double quote is written twice.
    """
    quoted = []
    for argument in arguments:
        if "\n" in argument:
            raise ValueError(f"an argument for HTCondor cannot hold a newline: {argument!r}")
        quoted.append("'" + argument.replace("'", "''").replace('"', '""') + "'")
    return '"' + " ".join(quoted) + '"'


def literal(value: str) -> str:
    """``value`` as the literal right-hand side of a submit command.

    condor_submit expands macros (``$(name)``, ``$$(name)``) in every value;
    the predefined ``$(DOLLAR)`` is a ``$`` (condor_submit(1)), so writing
    each ``$`` as that keeps a path such as ``/data/$(run)`` as it is. A
    line break would end the command.

    Raises
    ------
    SubmissionRejected
        ``value`` holds a line break. Nothing was submitted.
    """
    if "\n" in value or "\r" in value:
        raise SubmissionRejected(
            f"HTCondor cannot take a path with a line break in a submit file: {value!r}. "
            "Nothing was submitted; pass a work_dir (and python_path) without one."
        )
    return value.replace("$", "$(DOLLAR)")


def classad_string(text: str) -> str:
    if "\n" in text:
        raise ValueError(f"a ClassAd string cannot hold a newline: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def chunk_inputs_dir(directory: str, ichunk: int | str) -> str:
    """Where a submission without a shared file system stages chunk ``ichunk``'s own
    files (:func:`pypoolparty.job_files.stage_chunks`)."""
    return os.path.join(directory, INPUTS_DIR_NAME, str(ichunk))


def render(submission: Submission, options: ClusterOptions) -> str:
    """The submit description of one cluster, one proc per chunk, in order."""
    if not options.shared_file_system:
        lines = _transfer_lines(submission, options)
    else:
        lines = _shared_lines(submission, options)
    lines.append(f"request_cpus = {options.request_cpus}")
    if options.request_memory is not None:
        lines.append(f"request_memory = {options.request_memory}")
    if options.request_disk is not None:
        lines.append(f"request_disk = {options.request_disk}")
    if options.request_gpus is not None:
        lines.append(f"request_gpus = {options.request_gpus}")
    batch_name = options.batch_name or submission.job_name
    lines.append(f"+JobBatchName = {classad_string(batch_name)}")
    lines.append(f"+{JOB_NAME_ATTRIBUTE} = {classad_string(submission.job_name)}")
    if submission.num_simultaneously_running is not None:
        # Late materialization: at most this many procs exist in the queue
        # at once, so at most this many run; the rest wait in the factory.
        lines.append(f"max_materialize = {submission.num_simultaneously_running}")
    for name, value in options.submit_directives.items():
        lines.append(f"{name} = {value}")
    chunks = " ".join(str(int(ichunk)) for ichunk in submission.chunks)
    lines.append(f"queue {CHUNK_MACRO} in ({chunks})")
    return "\n".join(lines) + "\n"


def _shared_lines(submission: Submission, options: ClusterOptions) -> list[str]:
    directory = submission.directory
    chunk = f"$({CHUNK_MACRO})"
    stdout_path, stderr_path = job_output_paths(literal(directory), chunk)
    # Every argument is a literal but the chunk macro (paths are absolute).
    arguments = submission.worker.arguments(ichunk=chunk)
    arguments = [a if a == chunk else literal(a) for a in arguments]
    return [
        f"universe = {options.universe}",
        f"executable = {arguments[0]}",
        f"arguments = {quote_arguments(arguments[1:])}",
        # The job's launcher exports the environment from a private file: secrets
        # must not travel through the schedd's job ads.
        "getenv = False",
        f"initialdir = {literal(directory)}",
        f"log = {literal(event_log_path(directory))}",
        f"output = {stdout_path}",
        f"error = {stderr_path}",
        # The work_dir is on a shared file system; nothing to transfer.
        "should_transfer_files = NO",
    ]


def _transfer_lines(submission: Submission, options: ClusterOptions) -> list[str]:
    """Without a shared file system: the job's files travel with it.

    The initial directory is the session directory, so that every path here
    is relative to it; the job runs in its scratch directory, with relative
    paths only (:func:`pypoolparty.job_files.worker_call_in_scratch`).
    condor_submit ``-spool`` sends the inputs through the schedd, so the
    shadow never opens the submit host's files; no event log is kept, as
    with spooling each proc's would come back over the others'.
    """
    session_dir = submission.worker.session_dir
    relative = os.path.relpath(submission.directory, session_dir)
    chunk = f"$({CHUNK_MACRO})"
    stdout_path, stderr_path = job_output_paths(literal(relative), chunk)
    worker = job_files.worker_call_in_scratch(submission.worker)
    arguments = worker.arguments(ichunk=chunk)
    arguments = [a if a == chunk else literal(a) for a in arguments]
    inputs = [*job_files.SHARED_INPUTS, chunk_inputs_dir(literal(relative), chunk) + "/"]
    return [
        f"universe = {options.universe}",
        # The launcher's shell (or the interpreter) is the execute node's own.
        f"executable = {arguments[0]}",
        "transfer_executable = False",
        f"arguments = {quote_arguments(arguments[1:])}",
        # The environment travels in the private environment.sh, not in the job ad.
        "getenv = False",
        f"initialdir = {literal(session_dir)}",
        f"output = {stdout_path}",
        f"error = {stderr_path}",
        "should_transfer_files = YES",
        # A job vacated or evicted sends its outputs to the schedd's spool, and
        # HTCondor gives them back to the job when it starts again: its task
        # records there, the worker skips the tasks it finished before.
        "when_to_transfer_output = ON_EXIT_OR_EVICT",
        # A directory with a trailing slash: its contents, into the scratch directory.
        f"transfer_input_files = {', '.join(inputs)}",
        f"transfer_output_files = {', '.join(job_files.OUTPUTS)}",
    ]
