"""The Grid Engine options of a pool, checked before anything is submitted."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence

from .. import checks

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# A queue may be given as cluster queue, queue instance (all.q@node) or a
# list or pattern of those (all.q,long.q / *@node).
QUEUE = re.compile(r"^[A-Za-z0-9_.*@,-]+$")
RESOURCE_VALUE = re.compile(r"^[^\s,=]+$")

# qsub options the adapter sets itself, or that would break the pool:
# -V would copy the submitter's whole environment (secrets included) into the
# scheduler's spool; the job's launcher exports it from a private file.
RESERVED_QSUB_OPTIONS = frozenset(
    ["-t", "-tc", "-N", "-o", "-e", "-j", "-S", "-b", "-terse", "-sync", "-V", "-cwd", "-wd"]
)


@dataclasses.dataclass(frozen=True)
class QsubOptions:
    """What a pool adds to each ``qsub``, in Grid Engine's own terms."""

    queue_name: str | None = None
    parallel_environment: str | None = None
    slots: int = 1
    resources: Mapping[str, str] = dataclasses.field(default_factory=dict)
    qsub_arguments: Sequence[str] = ()

    def arguments(self) -> list[str]:
        """The qsub arguments for these options."""
        args: list[str] = []
        if self.queue_name is not None:
            args += ["-q", self.queue_name]
        if self.parallel_environment is not None:
            args += ["-pe", self.parallel_environment, str(self.slots)]
        if self.resources:
            args += ["-l", ",".join(f"{key}={value}" for key, value in self.resources.items())]
        return args + list(self.qsub_arguments)


def checked_options(
    queue_name: str | None = None,
    parallel_environment: str | None = None,
    slots: int | None = None,
    resources: Mapping[str, object] | None = None,
    qsub_arguments: Sequence[str] | None = None,
) -> QsubOptions:
    """Return :class:`QsubOptions`, or raise ``ValueError`` for values qsub cannot take."""
    if queue_name is not None and not (isinstance(queue_name, str) and QUEUE.match(queue_name)):
        raise ValueError(
            f"queue_name must be a Grid Engine queue such as 'all.q', not {queue_name!r}"
        )
    if parallel_environment is not None and not (
        isinstance(parallel_environment, str) and NAME.match(parallel_environment)
    ):
        raise ValueError(
            "parallel_environment must be the name of a parallel environment such as "
            f"'smp', not {parallel_environment!r}"
        )
    if slots is not None:
        checks.whole_number("slots", slots, 1)
        if parallel_environment is None:
            raise ValueError("slots needs a parallel_environment (Grid Engine's -pe NAME SLOTS)")
    return QsubOptions(
        queue_name=queue_name,
        parallel_environment=parallel_environment,
        slots=1 if slots is None else slots,
        resources=_checked_resources(resources or {}),
        qsub_arguments=_checked_qsub_arguments(qsub_arguments or []),
    )


def _checked_resources(resources: Mapping[str, object]) -> dict[str, str]:
    if not isinstance(resources, Mapping):
        raise ValueError(
            "resources must be a dict such as {'h_vmem': '2G', 'h_rt': '1:00:00'}, "
            f"not {resources!r}"
        )
    checked = {}
    for key, value in resources.items():
        if not isinstance(key, str) or not NAME.match(key):
            raise ValueError(f"resources: {key!r} is not a Grid Engine resource name")
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise ValueError(f"resources: the value of {key!r} must be a string or number")
        text = str(value)
        if not RESOURCE_VALUE.match(text):
            raise ValueError(
                f"resources: the value of {key!r} must not be empty nor hold spaces, "
                f"',' or '=': {text!r}"
            )
        checked[key] = text
    return checked


def _checked_qsub_arguments(arguments: Sequence[str]) -> tuple[str, ...]:
    if isinstance(arguments, str) or not all(isinstance(a, str) for a in arguments):
        raise ValueError(
            f"qsub_arguments must be a list of strings such as ['-P', 'myproject'], "
            f"not {arguments!r}"
        )
    reserved = sorted(RESERVED_QSUB_OPTIONS.intersection(arguments))
    if reserved:
        raise ValueError(
            f"qsub_arguments must not hold {', '.join(reserved)}: the pool sets these itself"
        )
    return tuple(arguments)
