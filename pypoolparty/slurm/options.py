"""The sbatch options of the SLURM pools: checked at once, turned into sbatch arguments.

Checking here catches typos before anything is submitted; whatever passes is
still judged by sbatch, whose own message then ends the map
(:class:`~pypoolparty.scheduler.SubmissionRejected`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from .. import checks

TIME_PATTERN = re.compile(r"^(\d+-\d+(:\d+){0,2}|\d+(:\d+){0,2}|UNLIMITED|INFINITE)$", re.I)
MEMORY_PATTERN = re.compile(r"^\d+[KMGT]?$", re.I)
GPUS_PATTERN = re.compile(r"^([A-Za-z0-9_.-]+:)?[1-9]\d*$")


@dataclasses.dataclass(frozen=True)
class SbatchOptions:
    """What each job asks SLURM for. ``None`` leaves it to the site's defaults."""

    partition: str | None = None
    time: str | None = None
    mem: str | None = None
    cpus_per_task: int | None = None
    gpus: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    sbatch_arguments: tuple[str, ...] = ()

    def partitions(self) -> tuple[str, ...]:
        return tuple(self.partition.split(",")) if self.partition else ()

    def arguments(self) -> list[str]:
        """The options for sbatch, free-form ones last so that they win."""
        named = [
            ("--partition", self.partition),
            ("--time", self.time),
            ("--mem", self.mem),
            ("--cpus-per-task", self.cpus_per_task),
            ("--gpus", self.gpus),
            ("--account", self.account),
            ("--qos", self.qos),
            ("--constraint", self.constraint),
        ]
        options = [f"{flag}={value}" for flag, value in named if value is not None]
        return options + list(self.sbatch_arguments)


def checked_options(
    partition: Any = None,
    time: Any = None,
    mem: Any = None,
    cpus_per_task: Any = None,
    gpus: Any = None,
    account: Any = None,
    qos: Any = None,
    constraint: Any = None,
    sbatch_arguments: Any = (),
) -> SbatchOptions:
    """Check the sbatch options of a SLURM pool and return them as :class:`SbatchOptions`.

    ``time`` is minutes (an int) or a SLURM time such as ``"2:00:00"`` or
    ``"1-12"``; ``mem`` is megabytes (an int) or a size such as ``"4G"``;
    ``gpus`` is a count or ``"type:count"``. Raises ``ValueError`` or
    ``TypeError`` naming the option.
    """
    if isinstance(time, int) and not isinstance(time, bool):
        time = str(checks.whole_number("time", time, 1))
    if isinstance(mem, int) and not isinstance(mem, bool):
        mem = str(checks.whole_number("mem", mem, 1))
    if isinstance(gpus, int) and not isinstance(gpus, bool):
        gpus = str(checks.whole_number("gpus", gpus, 1))
    return SbatchOptions(
        partition=_word("partition", partition),
        time=_matching("time", time, TIME_PATTERN, "minutes or e.g. '2:00:00', '1-12:00:00'"),
        mem=_matching("mem", mem, MEMORY_PATTERN, "megabytes or e.g. '500M', '4G'"),
        cpus_per_task=checks.optional_whole_number("cpus_per_task", cpus_per_task, 1),
        gpus=_matching("gpus", gpus, GPUS_PATTERN, "a count or 'type:count'"),
        account=_word("account", account),
        qos=_word("qos", qos),
        constraint=_text("constraint", constraint),
        sbatch_arguments=_arguments(sbatch_arguments),
    )


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, not {type(value).__name__}")
    if not value.strip() or any(c in value for c in "\n\r\0"):
        raise ValueError(f"{name} must be a non-empty single line, not {value!r}")
    return value


def _word(name: str, value: Any) -> str | None:
    value = _text(name, value)
    if value is not None and any(c.isspace() for c in value):
        raise ValueError(f"{name} must not contain spaces, not {value!r}")
    return value


def _matching(name: str, value: Any, pattern: re.Pattern, expected: str) -> str | None:
    value = _word(name, value)
    if value is not None and not pattern.match(value):
        raise ValueError(f"{name} must be {expected}, not {value!r}")
    return value


def _arguments(value: Any) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise TypeError(
            "sbatch_arguments must be a list of strings, one argument each, "
            f"e.g. ['--nice=10', '--licenses=matlab'], not {value!r}"
        )
    for argument in value:
        if not isinstance(argument, str) or not argument or "\n" in argument:
            raise ValueError(
                f"each of sbatch_arguments must be a one-line string, not {argument!r}"
            )
    return tuple(value)
