"""The options of an HTCondor pool, checked before anything is submitted.

:class:`ClusterOptions` holds what goes into every submit file;
:mod:`.submitfile` writes them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from .. import checks
from .submitfile import JOB_NAME_ATTRIBUTE

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

TRANSFER_DIRECTIVES = frozenset(
    (
        "should_transfer_files",
        "when_to_transfer_output",
        "transfer_executable",
        "transfer_input_files",
        "transfer_output_files",
        "transfer_output_remaps",
    )
)
"""Submit commands of HTCondor's file transfer, which the Pool writes itself
without a shared file system (see :mod:`pypoolparty.job_files`)."""


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
    shared_file_system: bool = True
    """``False``: each job gets its files by HTCondor's file transfer, through
    the schedd's spool (``condor_submit -spool``, ``condor_transfer_data``)."""


def checked_options(
    universe: Any = "vanilla",
    request_cpus: Any = 1,
    request_memory: Any = None,
    request_disk: Any = None,
    request_gpus: Any = None,
    batch_name: Any = None,
    submit_directives: Any = None,
    shared_file_system: Any = True,
) -> ClusterOptions:
    """Check the options of an HTCondor pool and return them as :class:`ClusterOptions`.

    See :class:`pypoolparty.htcondor.Pool` for their meaning.

    Raises
    ------
    ValueError
        An option condor_submit cannot take, or would take and then idle on
        forever (e.g. ``request_memory="lots"``); the message names it.
    """
    if not isinstance(shared_file_system, bool):
        raise ValueError(f"shared_file_system must be True or False, not {shared_file_system!r}")
    directives = validate_directives(submit_directives)
    if not shared_file_system:
        refused = sorted(name for name in directives if name.lower() in TRANSFER_DIRECTIVES)
        if refused:
            raise ValueError(
                f"submit_directives cannot set {', '.join(refused)} with "
                "shared_file_system=False: the Pool transfers each job's files itself "
                "(see docs/no_shared_file_system.rst)"
            )
    return ClusterOptions(
        shared_file_system=shared_file_system,
        universe=validate_universe(universe),
        request_cpus=checks.whole_number("request_cpus", request_cpus, 1),
        request_memory=validate_memory("request_memory", request_memory),
        request_disk=validate_memory("request_disk", request_disk),
        request_gpus=checks.optional_whole_number("request_gpus", request_gpus, 0),
        batch_name=validate_batch_name(batch_name),
        submit_directives=directives,
    )


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


def validate_batch_name(name: str | None) -> str | None:
    """``JobBatchName``: one line without double quotes (it is a ClassAd string)."""
    if name is None:
        return None
    if not isinstance(name, str) or not name.strip() or "\n" in name or '"' in name:
        raise ValueError(f"batch_name must be one line without double quotes, not {name!r}")
    return name
