"""Write the submit description of one cluster whose procs are chunks."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping, Sequence

from ..scheduler import Submission

CHUNK_MACRO = "ichunk"
JOB_NAME_ATTRIBUTE = "PypoolpartyJobName"
"""A job ad attribute of our own holding ``Submission.job_name``, so that a
cluster can be found again even when the user sets the same batch name on
many pools."""

EVENT_LOG_NAME = "events.log"
SUBMIT_FILE_NAME = "cluster.sub"

MEMORY_PATTERN = re.compile(r"^\d+(\.\d+)?\s*([KMGT]B?)?$", re.IGNORECASE)
DIRECTIVE_NAME_PATTERN = re.compile(r"^(\+|My\.)?[A-Za-z_][A-Za-z0-9_.]*$")
UNIVERSES = ("vanilla", "container", "docker", "local", "scheduler", "parallel", "java", "vm")
RESERVED_DIRECTIVES = frozenset(
    name.lower()
    for name in (
        "executable",
        "arguments",
        "args",
        "initialdir",
        "iwd",
        "log",
        "output",
        "error",
        "queue",
        "getenv",
        "environment",
        "env",
        "universe",
        "request_cpus",
        "request_memory",
        "request_disk",
        "request_gpus",
        "max_materialize",
        "batch_name",
        "+JobBatchName",
        "My.JobBatchName",
        "+" + JOB_NAME_ATTRIBUTE,
        "My." + JOB_NAME_ATTRIBUTE,
    )
)


@dataclasses.dataclass(frozen=True)
class ClusterOptions:
    """What a Pool's options put into every submit file."""

    universe: str = "vanilla"
    request_cpus: int = 1
    request_memory: str | None = None
    request_disk: str | None = None
    request_gpus: int | None = None
    batch_name: str | None = None
    submit_directives: Mapping[str, str] = dataclasses.field(default_factory=dict)


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


def classad_string(text: str) -> str:
    if "\n" in text:
        raise ValueError(f"a ClassAd string cannot hold a newline: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(submission: Submission, options: ClusterOptions) -> str:
    """The submit description of one cluster, one proc per chunk, in order."""
    directory = submission.directory
    stdout_path, stderr_path = job_output_paths(directory, f"$({CHUNK_MACRO})")
    arguments = submission.worker.arguments(ichunk=f"$({CHUNK_MACRO})")
    lines = [
        f"universe = {options.universe}",
        f"executable = {arguments[0]}",
        f"arguments = {quote_arguments(arguments[1:])}",
        # The worker sets its environment itself, from a private file: secrets
        # must not travel through the schedd's job ads.
        "getenv = False",
        f"initialdir = {directory}",
        f"log = {event_log_path(directory)}",
        f"output = {stdout_path}",
        f"error = {stderr_path}",
        # The work_dir is on a shared file system; nothing to transfer.
        "should_transfer_files = NO",
        f"request_cpus = {options.request_cpus}",
    ]
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


def validate_memory(name: str, value: int | str | None) -> str | None:
    """``request_memory``/``request_disk``: a number with an optional unit.

    condor_submit accepts any expression here, so ``lots`` is submitted and
    then idles forever; we refuse it before submitting.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{name} must be a number or a string such as '2GB', not {value!r}")
    text = str(value).strip()
    if not MEMORY_PATTERN.match(text) or (isinstance(value, int) and value < 1):
        raise ValueError(
            f"{name} must be a positive amount with an optional unit K, M, G or T "
            f"(e.g. 512, '512MB', '2 GB'), not {value!r}"
        )
    return text


def validate_universe(universe: str) -> str:
    if universe not in UNIVERSES:
        raise ValueError(f"universe must be one of {', '.join(UNIVERSES)}, not {universe!r}")
    return universe


def validate_directives(directives: Mapping[str, object] | None) -> dict[str, str]:
    """Free-form submit commands: names must be names, values single lines."""
    if directives is None:
        return {}
    if not isinstance(directives, Mapping):
        raise ValueError(f"submit_directives must be a dict, not {type(directives).__name__}")
    valid = {}
    for name, value in directives.items():
        if not isinstance(name, str) or not DIRECTIVE_NAME_PATTERN.match(name):
            raise ValueError(f"not a submit command name: {name!r}")
        if name.lower() in RESERVED_DIRECTIVES:
            raise ValueError(
                f"submit_directives cannot set {name!r}: the Pool sets it "
                "(use the Pool's own option where there is one)"
            )
        text = str(value)
        if "\n" in text or not text.strip():
            raise ValueError(f"the value of {name!r} must be one non-empty line, not {value!r}")
        valid[name] = text
    return valid
