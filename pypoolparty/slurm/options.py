"""The sbatch options of the SLURM pools: checked at once, turned into sbatch arguments.

Checking here catches typos before anything is submitted; whatever passes is
still judged by sbatch, whose own message then ends the map
(:class:`~pypoolparty.scheduler.SubmissionRejected`).
"""

from __future__ import annotations

import dataclasses
import re
import signal
from collections.abc import Sequence
from typing import Any

from .. import checks

TIME_PATTERN = re.compile(r"^(\d+-\d+(:\d+){0,2}|\d+(:\d+){0,2}|UNLIMITED|INFINITE)$", re.I)
MEMORY_PATTERN = re.compile(r"^\d+[KMGT]?$", re.I)
GPUS_PATTERN = re.compile(r"^([A-Za-z0-9_.-]+:)?[1-9]\d*$")
WARNING_SIGNAL = "USR1"
"""What the pools ask SLURM to send before the time limit (``--signal=B:USR1@N``):
SLURM sends SIGUSR1 for nothing else, so the worker's stop on it means the limit."""
DEFAULT_TIME_LIMIT_WARNING = 60
"""Seconds before the time limit, unless ``time`` is shorter than twice that."""
MAX_TIME_LIMIT_WARNING = 65535
"""sbatch's largest ``sig_time``."""
SIGNAL_OPTION = re.compile(r"^(?:[RB]+:)?(?:SIG)?(?P<signal>[A-Z0-9]+)(?:@\d+)?$", re.I)


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
    time_limit_warning: int = 0
    """Seconds before the time limit at which SLURM sends SIGUSR1 to the job's
    batch shell, which is the worker (``--signal=B:USR1@N``); 0 for none."""

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
        if self.time_limit_warning and users_signal(self.sbatch_arguments) is None:
            options.append(f"--signal=B:{WARNING_SIGNAL}@{self.time_limit_warning}")
        return options + list(self.sbatch_arguments)

    def warning_signal(self) -> str | None:
        """The signal SLURM sends before the time limit (``"SIGUSR1"``), if any.

        A ``--signal`` of the user's own in ``sbatch_arguments`` replaces ours.
        """
        users = users_signal(self.sbatch_arguments)
        if users is not None:
            return users
        return f"SIG{WARNING_SIGNAL}" if self.time_limit_warning else None

    def time_limit_words(self) -> str:
        """The jobs' time limit and the option that sets it, for messages."""
        if self.time is None:
            return (
                "the partition's default time limit (SLURM TIMEOUT; the pool's 'time' "
                "option was not given)"
            )
        return f"time={self.time!r} (SLURM TIMEOUT; the pool's 'time' option, sbatch --time)"


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
    time_limit_warning: Any = None,
) -> SbatchOptions:
    """Check the sbatch options of a SLURM pool and return them as :class:`SbatchOptions`.

    ``time`` is minutes (an int) or a SLURM time such as ``"2:00:00"`` or
    ``"1-12"``; ``mem`` is megabytes (an int) or a size such as ``"4G"``;
    ``gpus`` is a count or ``"type:count"``. ``time_limit_warning`` is
    seconds (see :func:`warning_seconds`). Raises ``ValueError`` or
    ``TypeError`` naming the option.
    """
    if isinstance(time, int) and not isinstance(time, bool):
        time = str(checks.whole_number("time", time, 1))
    if isinstance(mem, int) and not isinstance(mem, bool):
        mem = str(checks.whole_number("mem", mem, 1))
    if isinstance(gpus, int) and not isinstance(gpus, bool):
        gpus = str(checks.whole_number("gpus", gpus, 1))
    time = _matching("time", time, TIME_PATTERN, "minutes or e.g. '2:00:00', '1-12:00:00'")
    return SbatchOptions(
        partition=_word("partition", partition),
        time=time,
        mem=_matching("mem", mem, MEMORY_PATTERN, "megabytes or e.g. '500M', '4G'"),
        cpus_per_task=checks.optional_whole_number("cpus_per_task", cpus_per_task, 1),
        gpus=_matching("gpus", gpus, GPUS_PATTERN, "a count or 'type:count'"),
        account=_word("account", account),
        qos=_word("qos", qos),
        constraint=_text("constraint", constraint),
        sbatch_arguments=_arguments(sbatch_arguments),
        time_limit_warning=warning_seconds(time_limit_warning, time),
    )


def warning_seconds(value: Any, time: str | None) -> int:
    """The lead time of the time limit's warning signal, in seconds.

    Parameters
    ----------
    value : int or None
        The pool's ``time_limit_warning``: seconds, 0 for no warning, ``None``
        for the default: :data:`DEFAULT_TIME_LIMIT_WARNING`, or half of
        ``time`` where that is shorter than twice the default (SLURM may send
        the signal up to a minute early, see sbatch(1) ``--signal``).
    time : str or None
        The checked ``time`` option.

    Raises
    ------
    BadInput
        ``value`` is not a whole number from 0 to 65535, or is not shorter
        than ``time``.
    """
    limit = seconds(time)
    if value is None:
        if limit is not None and limit < 2 * DEFAULT_TIME_LIMIT_WARNING:
            return limit // 2
        return DEFAULT_TIME_LIMIT_WARNING
    value = checks.whole_number("time_limit_warning", value, 0)
    if value > MAX_TIME_LIMIT_WARNING:
        raise checks.BadInput(
            f"time_limit_warning must be at most {MAX_TIME_LIMIT_WARNING} seconds (sbatch's "
            f"limit), not {value}"
        )
    if limit is not None and value and value >= limit:
        raise checks.BadInput(
            f"time_limit_warning={value} s is not shorter than the time limit time={time!r} "
            f"({limit} s): every job would be told to stop as it starts. Pass a shorter "
            "warning (or 0 for none), or a longer time."
        )
    return value


def seconds(time: str | None) -> int | None:
    """A SLURM time (``--time``) in seconds; ``None`` for none or ``UNLIMITED``.

    >>> seconds("90"), seconds("1:30"), seconds("2:00:00"), seconds("1-12"), seconds("1-0:0:5")
    (5400, 90, 7200, 129600, 86405)
    """
    if time is None or time.upper() in ("UNLIMITED", "INFINITE"):
        return None
    days, _, rest = time.rpartition("-")
    parts = [int(part) for part in rest.split(":")]
    if days:
        # days-hours[:minutes[:seconds]]
        parts += [0] * (3 - len(parts))
        hours, minutes, secs = parts
        return ((int(days) * 24 + hours) * 60 + minutes) * 60 + secs
    # minutes, minutes:seconds, hours:minutes:seconds
    if len(parts) == 1:
        return parts[0] * 60
    if len(parts) == 2:
        return parts[0] * 60 + parts[1]
    return (parts[0] * 60 + parts[1]) * 60 + parts[2]


def users_signal(arguments: Sequence[str]) -> str | None:
    """The signal of a ``--signal`` in ``arguments`` (``"SIGUSR2"``), if there is one.

    ``--signal=[{R|B}:]<sig_num>[@sig_time]`` or ``--signal`` followed by
    that; the last one wins, as in sbatch. ``"?"`` if it names no signal we know.

    >>> users_signal(["--signal=B:USR2@120"]), users_signal(["--signal", "10@30"])
    ('SIGUSR2', 'SIGUSR1')
    """
    found = None
    for i, argument in enumerate(arguments):
        if argument.startswith("--signal="):
            value = argument.split("=", 1)[1]
        elif argument == "--signal" and i + 1 < len(arguments):
            value = arguments[i + 1]
        else:
            continue
        found = _signal_name(value)
    return found


def _signal_name(value: str) -> str:
    match = SIGNAL_OPTION.match(value.strip())
    if match is None:
        return "?"
    name = match.group("signal").upper()
    try:
        return (
            signal.Signals(int(name)).name if name.isdigit() else signal.Signals[f"SIG{name}"].name
        )
    except (KeyError, ValueError):
        return "?"


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
